"""Null E-distances of random control subsets: index arithmetic vs direct computation."""

import itertools

import numpy as np
import pytest
import torch

from cellshift.metrics import (
    ControlNull,
    control_null_edistance,
    cosine_edistance,
    draw_control_subsets,
    edistance,
)

DIRECT = {"edistance": edistance, "cosine_edistance": cosine_edistance}


def controls(seed=0, n=40, d=6):
    return np.random.default_rng(seed).normal(size=(n, d))


@pytest.mark.parametrize("metric", ["edistance", "cosine_edistance"])
@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_vs_rest_equals_direct_computation(metric, chunk_size):
    Z = controls(1)
    null = ControlNull(Z, metric=metric, chunk_size=chunk_size)
    for size in (2, 5, 38):
        subsets = draw_control_subsets(len(Z), size, 6, np.random.default_rng(size))
        values = null.vs_rest(subsets)
        for subset, value in zip(subsets, values, strict=True):
            rest = np.setdiff1d(np.arange(len(Z)), subset)
            assert value == pytest.approx(DIRECT[metric](Z[subset], Z[rest]), rel=1e-9)


@pytest.mark.parametrize("metric", ["edistance", "cosine_edistance"])
def test_vs_subset_equals_direct_computation(metric):
    Z = controls(2)
    null = ControlNull(Z, metric=metric, chunk_size=5)
    drawn = draw_control_subsets(len(Z), 14, 5, np.random.default_rng(3))
    first, second = drawn[:, :7], drawn[:, 7:]
    values = null.vs_subset(first, second)
    for a, b, value in zip(first, second, values, strict=True):
        assert value == pytest.approx(DIRECT[metric](Z[a], Z[b]), rel=1e-9)


@pytest.mark.parametrize("metric", ["edistance", "cosine_edistance"])
def test_mean_over_all_subsets_is_exactly_zero(metric):
    # Over all subsets S of a fixed set, every mean in the U-statistic has the same
    # expectation (the mean distance over distinct pairs), so the null mean is exactly 0.
    Z = controls(4, n=8, d=3)
    null = ControlNull(Z, metric=metric)
    all_pairs = np.array(list(itertools.combinations(range(8), 2)))
    assert null.vs_rest(all_pairs).mean() == pytest.approx(0.0, abs=1e-12)
    splits = [(a, b) for a in all_pairs for b in all_pairs if not set(a) & set(b)]
    first, second = (np.array(side) for side in zip(*splits, strict=True))
    assert null.vs_subset(first, second).mean() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("against", ["rest", "subset"])
def test_deterministic_given_the_seed_and_follows_documented_draws(against):
    Z = controls(5)
    values = control_null_edistance(Z, [3, 6], 10, 42, against=against)
    assert values.shape == (2, 10)
    np.testing.assert_array_equal(values, control_null_edistance(Z, [3, 6], 10, 42, against=against))
    assert not np.array_equal(values, control_null_edistance(Z, [3, 6], 10, 43, against=against))
    # documented procedure: sizes in order, one generator, draw_control_subsets per size
    generator = np.random.default_rng(42)
    null = ControlNull(Z)
    for row, size in zip(values, [3, 6], strict=True):
        if against == "rest":
            expected = null.vs_rest(draw_control_subsets(len(Z), size, 10, generator))
        else:
            drawn = draw_control_subsets(len(Z), 2 * size, 10, generator)
            expected = null.vs_subset(drawn[:, :size], drawn[:, size:])
        np.testing.assert_allclose(row, expected, rtol=1e-12)


def test_chunk_size_does_not_change_the_null():
    Z = torch.from_numpy(controls(6))
    small = control_null_edistance(Z, 4, 8, 0, chunk_size=3)
    default = control_null_edistance(Z, 4, 8, 0)
    np.testing.assert_allclose(small, default, rtol=1e-10)


def test_subsets_are_checked():
    null = ControlNull(controls(7, n=10))
    with pytest.raises(ValueError, match="same control cell twice"):
        null.vs_rest(np.array([[1, 2, 1]]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 10\)"):
        null.vs_rest(np.array([[1, 10]]))
    with pytest.raises(ValueError, match="between 2 and 8 cells for 10 control cells, got 9"):
        null.vs_rest(np.tile(np.arange(9), (2, 1)))
    with pytest.raises(ValueError, match="between 2 and 8 cells.*got 1"):
        null.vs_rest(np.array([[3]]))
    with pytest.raises(ValueError, match="same control cell twice"):
        null.vs_subset(np.array([[0, 1]]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="2-D integer array"):
        null.vs_rest(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="against must be 'rest' or 'subset'"):
        null.sample(3, 2, 0, against="others")
    with pytest.raises(ValueError, match="cannot draw 12 distinct cells from 10"):
        null.sample(6, 2, 0, against="subset")
    with pytest.raises(ValueError, match="Z_control needs at least 4 rows"):
        ControlNull(controls(8, n=3))
