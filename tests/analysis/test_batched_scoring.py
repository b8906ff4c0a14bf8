import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cellshift.analysis import score_perturbations
from cellshift.analysis.batched_scoring import batched_edistances
from cellshift.analysis.scoring import l2_normalize
from cellshift.analysis.screen_input import validate_screen
from cellshift.metrics import edistance

KEYS = {"embedding": "X_emb", "perturbation_key": "guide", "control": "ctrl"}


def confounded_screen(seed=0):
    """Controls mostly in batch b1, the group mostly in batch b2, and a batch shift but no perturbation effect."""
    rng = np.random.default_rng(seed)
    guide = ["ctrl"] * 60 + ["ctrl"] * 20 + ["g"] * 5 + ["g"] * 30
    batch = ["b1"] * 60 + ["b2"] * 20 + ["b1"] * 5 + ["b2"] * 30
    Z = rng.normal(size=(len(guide), 4)) + 2.0
    Z[np.array(batch) == "b2", 0] += 1.5
    obs = pd.DataFrame({"guide": guide, "batch": batch}, index=[f"c{i}" for i in range(len(guide))])
    adata = ad.AnnData(X=np.zeros((len(guide), 1)), obs=obs)
    adata.obsm["X_emb"] = Z
    return adata


def batch_edistance(Z, labels, batches, batch):
    return edistance(Z[(labels == "g") & (batches == batch)], Z[(labels == "ctrl") & (batches == batch)])


def test_a_batch_effect_is_not_a_perturbation_once_batches_are_compared_within():
    adata = confounded_screen()
    plain = score_perturbations(adata, **KEYS, metrics=("edistance",), n_null=50, min_cells=5)
    within = score_perturbations(adata, **KEYS, metrics=("edistance",), n_null=50, min_cells=5, batch_key="batch")
    assert plain["edistance_z"].iloc[0] > 4
    assert abs(within["edistance_z"].iloc[0]) < 2.5
    assert within["edistance_batches"].iloc[0] == 2
    assert within.attrs["controls_per_batch"] == {"b1": 60, "b2": 20}


def test_batched_value_is_the_weighted_mean_and_its_sd_matches_stratified_permutations():
    adata = confounded_screen(seed=1)
    Z = l2_normalize(adata.obsm["X_emb"])
    screen = validate_screen(adata, perturbation_key="guide", control="ctrl", min_cells=5)
    batches = adata.obs["batch"].to_numpy()
    result = batched_edistances(Z, screen, batches, "edistance")
    labels = adata.obs["guide"].to_numpy()
    per_batch = [
        edistance(Z[(labels == "g") & (batches == b)], Z[(labels == "ctrl") & (batches == b)]) for b in ("b1", "b2")
    ]
    assert result.values[0] == pytest.approx((5 * per_batch[0] + 30 * per_batch[1]) / 35, rel=1e-9)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(1500):
        shuffled = labels.copy()
        for b in ("b1", "b2"):
            rows = np.flatnonzero(batches == b)
            shuffled[rows] = rng.permutation(labels[rows])
        parts = [
            edistance(Z[(shuffled == "g") & (batches == b)], Z[(shuffled == "ctrl") & (batches == b)])
            for b in ("b1", "b2")
        ]
        draws.append((5 * parts[0] + 30 * parts[1]) / 35)
    sd = result.values[0] / result.zs[0]
    assert np.std(draws) == pytest.approx(sd, rel=0.08)
    assert abs(np.mean(draws)) < 0.1 * sd


def test_batch_key_is_checked_before_any_work():
    adata = confounded_screen()
    with pytest.raises(KeyError, match="batch key 'donor'"):
        score_perturbations(adata, **KEYS, metrics=("edistance",), min_cells=5, batch_key="donor")
    with pytest.raises(ValueError, match="drop \\['wasserstein'\\]"):
        score_perturbations(adata, **KEYS, metrics=("edistance", "wasserstein"), min_cells=5, batch_key="batch")
