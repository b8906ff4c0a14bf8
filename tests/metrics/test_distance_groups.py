"""Screen-level E-distances (every group vs controls, every pair) against direct computation."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import cdist

from cellshift.metrics import (
    cosine_edistance,
    edistance,
    group_distance_sums,
    group_vs_reference_edistance,
    pairwise_group_edistance,
)

DIRECT = {"edistance": edistance, "cosine_edistance": cosine_edistance}
CDIST = {"edistance": "euclidean", "cosine_edistance": "cosine"}


def screen(seed=0):
    """Controls plus three perturbations of sizes 2, 9 and 25, cells in shuffled order."""
    rng = np.random.default_rng(seed)
    sizes = {"ctrl": 60, "KO_a": 2, "KO_b": 9, "KO_c": 25}
    shifts = {"ctrl": 0.0, "KO_a": 1.0, "KO_b": 0.3, "KO_c": 0.0}
    labels = np.concatenate([[name] * size for name, size in sizes.items()])
    Z = np.vstack([rng.normal(size=(size, 8)) + shifts[name] for name, size in sizes.items()])
    order = rng.permutation(len(labels))
    return Z[order], labels[order]


@pytest.mark.parametrize("metric", ["edistance", "cosine_edistance"])
@pytest.mark.parametrize("chunk_size", [1, 4, None])
def test_group_vs_reference_equals_direct_per_group(metric, chunk_size):
    Z, labels = screen()
    result = group_vs_reference_edistance(Z, labels, "ctrl", metric=metric, chunk_size=chunk_size)
    assert list(result.index) == ["KO_a", "KO_b", "KO_c"]
    assert result.name == metric
    for group, value in result.items():
        expected = DIRECT[metric](Z[labels == group], Z[labels == "ctrl"])
        assert value == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("metric", ["edistance", "cosine_edistance"])
def test_sums_equal_cdist_sums(metric):
    Z, labels = screen(1)
    sums = group_distance_sums(Z, labels, "ctrl", metric=metric, chunk_size=5)
    control = Z[labels == "ctrl"]
    assert sums.reference_label == "ctrl"
    assert sums.reference_size == 60
    assert sums.reference_within == pytest.approx(cdist(control, control, CDIST[metric]).sum())
    for k, group in enumerate(sums.groups):
        members = Z[labels == group]
        assert sums.sizes[k] == len(members)
        assert sums.within[k] == pytest.approx(cdist(members, members, CDIST[metric]).sum())
        assert sums.cross[k] == pytest.approx(cdist(members, control, CDIST[metric]).sum())


def test_integer_labels_and_torch_input():
    Z, labels = screen(2)
    codes = pd.factorize(labels, sort=True)[0]  # KO_a=0, KO_b=1, KO_c=2, ctrl=3
    from_numpy = group_vs_reference_edistance(Z, labels, "ctrl")
    from_torch = group_vs_reference_edistance(torch.from_numpy(Z), torch.from_numpy(codes), 3)
    assert list(from_torch.index) == [0, 1, 2]
    np.testing.assert_allclose(from_torch.to_numpy(), from_numpy.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("metric", ["edistance", "cosine_edistance"])
@pytest.mark.parametrize("chunk_size", [3, None])
def test_pairwise_groups_equal_direct_per_pair(metric, chunk_size):
    Z, labels = screen(3)
    table = pairwise_group_edistance(Z, labels, metric=metric, chunk_size=chunk_size)
    names = ["KO_a", "KO_b", "KO_c", "ctrl"]
    assert list(table.index) == names and list(table.columns) == names
    for g in names:
        for h in names:
            expected = 0.0 if g == h else DIRECT[metric](Z[labels == g], Z[labels == h])
            assert table.loc[g, h] == pytest.approx(expected, rel=1e-10, abs=1e-12)
    np.testing.assert_array_equal(table.to_numpy(), table.to_numpy().T)


def test_pairwise_groups_agree_with_group_vs_reference():
    Z, labels = screen(4)
    table = pairwise_group_edistance(Z, labels)
    versus_control = group_vs_reference_edistance(Z, labels, "ctrl")
    np.testing.assert_allclose(table.loc[versus_control.index, "ctrl"], versus_control, rtol=1e-10)


def test_errors_name_the_problem():
    Z, labels = screen(5)
    with pytest.raises(ValueError, match="reference label 'control' not found"):
        group_vs_reference_edistance(Z, labels, "control")
    single = labels.astype(object)
    single[np.flatnonzero(labels == "KO_b")[0]] = "KO_single"
    with pytest.raises(ValueError, match="at least 2 cells per group; groups with fewer: KO_single$"):
        group_vs_reference_edistance(Z, single, "ctrl")
    with pytest.raises(ValueError, match="at least 2 cells per group; groups with fewer: KO_single$"):
        pairwise_group_edistance(Z, single)
    with pytest.raises(ValueError, match="one label per row of Z"):
        group_vs_reference_edistance(Z, labels[:-1], "ctrl")
    with pytest.raises(ValueError, match="metric 'wasserstein' cannot be computed from distance sums"):
        group_vs_reference_edistance(Z, labels, "ctrl", metric="wasserstein")
    with pytest.raises(ValueError, match="unknown metric 'energy'"):
        pairwise_group_edistance(Z, labels, metric="energy")
    Z_bad = Z.copy()
    Z_bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Z contains NaN"):
        group_vs_reference_edistance(Z_bad, labels, "ctrl")
