"""Outputs hold one run, whole: small groups are reported, earlier runs replaced whole, failures leave nothing."""

import os

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from cellshift import datasets
from cellshift._io import remove_stale_partials
from cellshift.cli import main
from cellshift.pipelines import screen as screen_pipeline
from cellshift.pipelines.screen import run_screen
from cellshift.pipelines.screen_run import ScreenSettings
from cellshift.tokenize.corpus import CorpusWriter

SCREEN = ["--perturbation-key", "target_gene", "--control", "non-targeting"]


@pytest.fixture(scope="module")
def small_screen(tmp_path_factory):
    """60 Papalexi controls, STAT1, JAK2 and CAV1 with 25 cells each, and IRF1 with 3 (below --min-cells)."""
    adata = datasets.papalexi2021()
    rng = np.random.default_rng(0)
    keep = []
    for label, n in [("non-targeting", 60), ("STAT1", 25), ("JAK2", 25), ("CAV1", 25), ("IRF1", 3)]:
        keep.extend(rng.choice(np.flatnonzero(adata.obs["target_gene"] == label), n, replace=False))
    screen = adata[np.sort(keep)].copy()
    screen.X = sparse.csr_matrix(screen.X, dtype=np.float32)
    path = tmp_path_factory.mktemp("whole") / "screen.h5ad"
    screen.write_h5ad(path)
    return path


def test_groups_below_min_cells_are_listed_with_their_reason(small_screen, tmp_path, capsys):
    degs, scores = tmp_path / "degs.csv", tmp_path / "scores.csv"
    assert main(["degs", str(small_screen), *SCREEN, "--out", str(degs)]) == 0
    assert (
        main(["score", str(small_screen), *SCREEN, "--embedding", "pca", "--n-null", "20", "--out", str(scores)]) == 0
    )
    assert "scored 3 perturbations (1 with too few cells" in capsys.readouterr().out
    for table in (pd.read_csv(degs), pd.read_csv(scores)):
        small = table.set_index("perturbation").loc["IRF1"]
        assert small["n_cells"] == 3 and small["status"] == "too few cells (< 20, min_cells)"
        assert (table.set_index("perturbation").drop("IRF1")["status"] == "scored").all()
    assert np.isnan(pd.read_csv(scores).set_index("perturbation").loc["IRF1", "edistance_z"])
    split = tmp_path / "split.json"
    assert main(["split", str(degs), str(small_screen), *SCREEN, "--min-degs", "0", "--out", str(split)]) == 0
    assert "IRF1" not in split.read_text()  # never tested, so never trained or held out


def test_a_screen_run_replaces_the_earlier_one_whole(small_screen, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["screen", str(small_screen), *SCREEN, "--out", str(run), "--metrics", "edistance", "--n-null", "20"]
    args += ["--permutations", "50", "--top", "1", "--min-degs", "1", "--quiet"]
    assert main([*args, "--baselines", "pca,hvg"]) == 0
    assert (run / "scores" / "hvg.csv").exists()
    assert "too few cells" in (run / "report.html").read_text()  # IRF1 is listed in the report too
    assert main([*args, "--baselines", "pca", "--overwrite"]) == 0
    assert not (run / "scores" / "hvg.csv").exists()  # nothing of the earlier run is left beside the new one
    assert {path.name.split(".")[0] for path in (run / "scores").iterdir()} == {"pca"}
    assert [path.name for path in tmp_path.iterdir()] == ["run"]  # no temporary folder left
    capsys.readouterr()


def test_a_failed_screen_run_leaves_the_earlier_run_and_nothing_else(small_screen, tmp_path, monkeypatch):
    import anndata as ad

    adata = ad.read_h5ad(small_screen)
    settings = ScreenSettings(
        perturbation_key="target_gene",
        control="non-targeting",
        baselines=("pca",),
        metrics=("edistance",),
        n_null=20,
        permutations=50,
        top=(1,),
        min_degs=1,
    )
    run = run_screen(adata, tmp_path / "run", settings, progress=False)
    before = {path: path.read_bytes() for path in run.out.rglob("*") if path.is_file()}

    def fail(*args, **kwargs):
        raise RuntimeError("killed while drawing the figures")

    monkeypatch.setattr(screen_pipeline, "draw_figures", fail)
    with pytest.raises(RuntimeError):
        run_screen(adata, tmp_path / "run", settings, overwrite=True, progress=False)
    with pytest.raises(RuntimeError):
        run_screen(adata, tmp_path / "new", settings, progress=False)
    assert {path: path.read_bytes() for path in run.out.rglob("*") if path.is_file()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["run"]


def test_folders_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "corpus"
    dead = _dead_pid()
    killed = [tmp_path / f".corpus.partial-{dead}", tmp_path / f".corpus.old-{dead}"]
    running = tmp_path / f".corpus.partial-{os.getppid()}"  # a run still going on
    other = tmp_path / f".other.partial-{dead}"
    for folder in [*killed, running, other]:
        folder.mkdir()
    writer = CorpusWriter(out)
    assert writer.work_dir.exists() and not any(folder.exists() for folder in killed)
    assert running.exists() and other.exists()
    writer.abort()
    assert not writer.work_dir.exists()
    assert remove_stale_partials(tmp_path / "other") == [other]


def _dead_pid() -> int:
    """The ID of a process that has ended."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
