import json

import numpy as np
import pandas as pd
import pytest

from cellshift import datasets
from cellshift.analysis import PerturbationSplit
from cellshift.cli import main
from cellshift.models import CellshiftModel

SCREEN = ["--perturbation-key", "target_gene", "--control", "non-targeting"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, tiny_corpora):
    """`cellshift pretrain` of a tiny model on Kang PBMCs + mouse pancreas (136 of Papalexi's 299 genes)."""
    out = tmp_path_factory.mktemp("pretrained") / "model"
    args = ["pretrain", *map(str, tiny_corpora), "--out", str(out), "--preset", "tiny", "--max-steps", "2", "--quiet"]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def small_screen(tmp_path_factory):
    """Papalexi: 200 controls and 60 cells of three strong targets (IFNGR2, JAK2, STAT1) and one 0-DEG one (CUL3)."""
    adata = datasets.papalexi2021()
    rng = np.random.default_rng(0)
    keep = []
    for label, n in [("non-targeting", 200), ("IFNGR2", 60), ("JAK2", 60), ("STAT1", 60), ("CUL3", 60)]:
        keep.extend(rng.choice(np.flatnonzero(adata.obs["target_gene"] == label), size=n, replace=False))
    path = tmp_path_factory.mktemp("screen") / "screen.h5ad"
    adata[np.sort(keep)].copy().write_h5ad(path)
    return path


def finetune_args(pretrained, screen, out, *extra):
    return [
        "finetune",
        str(pretrained),
        str(screen),
        *SCREEN,
        "--out",
        str(out),
        "--batch-size",
        "8",
        "--log-every",
        "1",
        *extra,
    ]


def test_finetune_splits_trains_on_training_perturbations_only_and_resumes(tmp_path, pretrained, small_screen, capsys):
    out = tmp_path / "finetuned"
    assert main(finetune_args(pretrained, small_screen, out, "--min-degs", "5", "--max-steps", "4", "--quiet")) == 0
    printed = capsys.readouterr().out
    assert "split (>= 5 DEGs)" in printed and "fine-tuned 4 steps" in printed

    split = PerturbationSplit.load(out / "training" / "split.json")  # DEGs computed here, split saved with the run
    assert set(split.train) | set(split.test) == {"IFNGR2", "JAK2", "STAT1"} and len(split.test) == 1
    assert split.zero_deg == ("CUL3",) and split.min_degs == 5
    cells = json.loads((out / "training" / "training_cells.json").read_text())
    assert set(cells["perturbations"]) == set(split.train)  # the test perturbation and CUL3 are never trained on
    assert cells["control_cells"] == list(split.control_train)

    log = pd.read_csv(out / "training" / "loss.csv")
    assert log["step"].tolist() == [1, 2, 3, 4] and (log["learning_rate"] == 1e-5).all()
    assert log["dissimilar_loss"].notna().tolist() == [False, True, False, True]
    model = CellshiftModel.from_pretrained(out)
    assert model.gene_table is not None and model.config.num_hidden_layers == 2

    again = finetune_args(pretrained, small_screen, out, "--min-degs", "5", "--max-steps", "6", "--quiet")
    assert main(again) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*again, "--resume"]) == 0
    assert "fine-tuned 6 steps" in capsys.readouterr().out
    assert pd.read_csv(out / "training" / "loss.csv")["step"].tolist() == [1, 2, 3, 4, 5, 6]


def test_finetune_follows_a_degs_file_and_reports_errors(tmp_path, pretrained, small_screen, capsys):
    degs = tmp_path / "degs.csv"
    table = pd.DataFrame(
        {"perturbation": ["IFNGR2", "JAK2", "STAT1", "CUL3"], "n_cells": 60, "n_degs": [40, 0, 35, 25], "knockdown": 1}
    )
    table.to_csv(degs, index=False)
    out = tmp_path / "ft"
    args = finetune_args(pretrained, small_screen, out, "--degs", str(degs), "--max-steps", "2", "--quiet")
    assert main([*args, "--test-fraction", "0.34"]) == 0
    split = PerturbationSplit.load(out / "training" / "split.json")
    assert set(split.train) | set(split.test) == {"IFNGR2", "STAT1", "CUL3"} and split.zero_deg == ("JAK2",)
    cells = json.loads((out / "training" / "training_cells.json").read_text())
    assert set(cells["perturbations"]) == set(split.train) and "JAK2" not in cells["perturbations"]

    assert main([*args, "--min-degs", "50", "--overwrite"]) == 2
    assert "lower --min-degs" in capsys.readouterr().err
    assert main(finetune_args(pretrained, small_screen, tmp_path / "x", "--perturbation-key", "guide")) == 2
    assert "guide" in capsys.readouterr().err
    assert main(finetune_args(pretrained, small_screen, pretrained, "--degs", str(degs), "--quiet")) == 2
    assert "pre-trained model's directory" in capsys.readouterr().err
