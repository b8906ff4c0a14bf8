import json
import re

import numpy as np
import pandas as pd
import pytest

from cellshift.cli import main
from cellshift.datasets import papalexi2021
from cellshift.pipelines.screen import pick_cells, run_screen
from cellshift.pipelines.screen_run import ScreenSettings
from cellshift.training import PretrainSettings, pretrain

TARGETS = ["STAT1", "IFNGR2", "CAV1", "ATF2", "MYC", "IRF1", "JAK2", "non-targeting"]


@pytest.fixture(scope="module")
def screen_slice():
    adata = papalexi2021()
    adata = adata[adata.obs["target_gene"].isin(TARGETS)].copy()
    return pick_cells(adata, "target_gene", max_per_group=80, seed=0, always=["non-targeting"])


def test_pick_cells_caps_groups_and_keeps_controls_whole(screen_slice):
    counts = screen_slice.obs["target_gene"].value_counts()
    assert counts.drop("non-targeting").max() == 80
    full = papalexi2021().obs["target_gene"].value_counts()["non-targeting"]
    assert counts["non-targeting"] == full


def test_unknown_baselines_are_refused_before_any_work(tmp_path, screen_slice):
    settings = ScreenSettings(perturbation_key="target_gene", control="non-targeting", baselines=("pca", "umap"))
    with pytest.raises(ValueError, match="umap.*pca, hvg, scvi-linear, scvi-5l"):
        run_screen(screen_slice, tmp_path / "run", settings)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_screen_run_with_a_model_writes_every_output(tmp_path, screen_slice, tiny_corpora):
    pretrain(
        tiny_corpora, tmp_path / "model", PretrainSettings(preset="tiny", max_steps=2, batch_size=8), progress=False
    )
    settings = ScreenSettings(
        perturbation_key="target_gene",
        control="non-targeting",
        baselines=("pca",),
        metrics=("edistance",),
        n_null=20,
        min_degs=5,
        finetune_steps=2,
        finetune_lr=1e-4,
        permutations=200,
        top=(1, 2),
    )
    result = run_screen(screen_slice, tmp_path / "run", settings, model=tmp_path / "model", progress=False)
    assert set(result.scores) == {"pca", "pretrained", "finetuned"}
    assert result.embeddings == {
        "pca": "X_pca",
        "pretrained": "X_cellshift_pretrained",
        "finetuned": "X_cellshift_finetuned",
    }
    assert set(result.embeddings.values()) <= set(screen_slice.obsm)  # written into the caller's AnnData, as documented
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "run" / "medians.csv"), result.medians, check_dtype=False)
    assert result.finetuned_model == tmp_path / "run" / "finetuned_model" and set(result.figures) <= set(
        re.findall(r"<h2>([^<]*)</h2>", result.report.read_text())
    )
    for name, table in result.scores.items():
        assert sorted(table["perturbation"]) == sorted(t for t in TARGETS if t != "non-targeting")
        assert table["edistance_z"].notna().all()
        assert (tmp_path / "run" / "scores" / f"{name}.csv").exists()
        cells = pd.read_csv(tmp_path / "run" / "scores" / f"{name}.cells.csv")
        responders = cells[cells["response"] == "responder"].groupby("perturbation").size()
        assert (responders.reindex(table["perturbation"], fill_value=0).to_numpy() == table["n_responders"]).all()
    assert "Per-cell responders" in result.figures and "Per-cell calls (finetuned)" in result.report.read_text()
    assert (tmp_path / "run" / "responders_knockdown.csv").exists()
    stat1 = result.scores["pca"].set_index("perturbation")
    assert stat1["edistance_z"].idxmax() in ("STAT1", "IFNGR2", "JAK2")  # the IFN-gamma pathway knock-outs shift most
    assert (tmp_path / "run" / "finetuned_model" / "config.json").exists()
    html = result.report.read_text()
    for title in ("Summary", "Ranked perturbations", "UMAP of perturbed vs control cells"):
        assert title in html
    assert not re.search(r"(src|href)=\"http", html)
    degs = pd.read_csv(tmp_path / "run" / "degs.csv")
    assert np.array_equal(np.sort(degs["perturbation"]), np.sort(result.scores["pca"]["perturbation"]))
    with pytest.raises(FileExistsError):
        run_screen(screen_slice, tmp_path / "run", settings, progress=False)
    for name in result.scores:
        nulls = pd.read_csv(tmp_path / "run" / "scores" / f"{name}.nulls.csv")
        assert set(nulls["null_size"]) == set(result.scores[name]["edistance_null_size"])
        pairs = pd.read_csv(tmp_path / "run" / "scores" / f"{name}.pairs.csv")
        held_out = set(pairs["perturbation_1"]) | set(pairs["perturbation_2"])
        split = json.loads((tmp_path / "run" / "split.json").read_text())
        assert held_out == set(split["test"] + split["zero_deg"] + split["few_degs"])
        assert not held_out & set(split["train"])
    for title in (
        "between perturbations (pairs)",
        "Normalised distances between held-out perturbations",
        "Control null",
    ):
        assert title in html

    # A fine-tuned model is reused with its split; precomputed embeddings are scored as they are.
    reused = ScreenSettings(**{**vars(settings), "baselines": (), "embeddings": ("X_pca",)})
    tuned = tmp_path / "run" / "finetuned_model"
    again = run_screen(screen_slice, tmp_path / "again", reused, finetuned=tuned, progress=False)
    assert set(again.scores) == {"X_pca", "finetuned"}
    pd.testing.assert_frame_equal(again.scores["finetuned"], result.scores["finetuned"])
    assert json.loads((tmp_path / "again" / "split.json").read_text()) == split
    with pytest.raises(FileNotFoundError, match="split"):
        run_screen(screen_slice, tmp_path / "other", reused, finetuned=tmp_path / "model", progress=False)
    with pytest.raises(KeyError, match="X_missing"):
        run_screen(screen_slice, tmp_path / "other", ScreenSettings(**{**vars(reused), "embeddings": ("X_missing",)}))


def test_screen_command_without_a_model(tmp_path, screen_slice, capsys):
    path = tmp_path / "screen.h5ad"
    screen_slice.write_h5ad(path)
    args = ["screen", str(path), "--perturbation-key", "target_gene", "--control", "non-targeting"]
    args += ["--out", str(tmp_path / "run"), "--baselines", "pca", "--metrics", "edistance", "--n-null", "20"]
    args += ["--permutations", "200", "--top", "1,2", "--response", "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "pca: top by edistance_z" in printed and "report:" in printed
    assert "Response prediction of unseen knock-downs" in (tmp_path / "run" / "report.html").read_text()
    summary = pd.read_csv(tmp_path / "run" / "response" / "summary.csv")
    assert {"training_mean", "no_change", "pca", "grn"} <= set(summary["method"])
    assert main(args) == 2  # an existing run is not replaced without --overwrite
