import json

import numpy as np
import pandas as pd
import pytest

from cellshift.analysis import split_perturbations
from cellshift.datasets import papalexi2021
from cellshift.pipelines.finetune import finetune_on_screen
from cellshift.pipelines.split import degs_and_split
from cellshift.training import FinetuneSettings, PretrainSettings, pretrain

SCREEN = {"perturbation_key": "target_gene", "control": "non-targeting"}


@pytest.fixture(scope="module")
def small_screen():
    """Papalexi: 200 controls and 60 cells of three strong targets (IFNGR2, JAK2, STAT1) and one 0-DEG one (CUL3)."""
    adata = papalexi2021()
    rng = np.random.default_rng(0)
    keep = []
    for label, n in [("non-targeting", 200), ("IFNGR2", 60), ("JAK2", 60), ("STAT1", 60), ("CUL3", 60)]:
        keep.extend(rng.choice(np.flatnonzero(adata.obs["target_gene"] == label), size=n, replace=False))
    return adata[np.sort(keep)].copy()


def test_degs_and_split_computes_what_is_not_given(small_screen):
    found = degs_and_split(small_screen, **SCREEN, min_degs=5, seed=1)
    assert set(found.degs["perturbation"]) == {"IFNGR2", "JAK2", "STAT1", "CUL3"}
    assert set(found.degs_per_gene["perturbation"]) <= set(found.degs["perturbation"])
    direct = split_perturbations(small_screen, degs=found.degs, **SCREEN, min_degs=5, seed=1)
    assert found.split == direct

    given = degs_and_split(small_screen, **SCREEN, degs=found.degs, split=direct)
    assert given.degs is found.degs and given.split is direct and given.degs_per_gene is None


@pytest.mark.slow
def test_finetune_on_screen_trains_on_the_training_perturbations_only(tmp_path, small_screen, tiny_corpora):
    pretrain(
        tiny_corpora, tmp_path / "model", PretrainSettings(preset="tiny", max_steps=2, batch_size=8), progress=False
    )
    degs = pd.DataFrame(
        {"perturbation": ["IFNGR2", "JAK2", "STAT1", "CUL3"], "n_cells": 60, "n_degs": [40, 0, 35, 25], "knockdown": 1}
    )
    settings = FinetuneSettings(max_steps=2, batch_size=8, seed=3)
    result = finetune_on_screen(
        tmp_path / "model", small_screen, tmp_path / "tuned", **SCREEN, settings=settings, degs=degs, progress=False
    )
    assert result.degs is degs and result.split.zero_deg == ("JAK2",) and result.split.seed == 3
    assert set(result.split.train) | set(result.split.test) == {"IFNGR2", "STAT1", "CUL3"}
    assert result.training.steps == 2 and result.training.model_dir == tmp_path / "tuned"
    assert result.loss_curve == tmp_path / "tuned" / "training" / "loss.png" and result.loss_curve.is_file()
    cells = json.loads((tmp_path / "tuned" / "training" / "training_cells.json").read_text())
    assert set(cells["perturbations"]) == set(result.split.train)
    assert cells["control_cells"] == list(result.split.control_train)
    saved = json.loads((tmp_path / "tuned" / "training" / "split.json").read_text())
    assert saved["train"] == list(result.split.train) and saved["test"] == list(result.split.test)
