"""Exact 1-Wasserstein distance: brute force, scipy in 1-D, and known values."""

import itertools

import numpy as np
import pytest
import scipy.optimize
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

import cellshift.metrics._wasserstein as wasserstein_module
from cellshift.metrics import wasserstein, wasserstein_from_cost


def brute_force_assignment(X, Y):
    cost = cdist(X, Y)
    return min(cost[np.arange(len(X)), list(p)].mean() for p in itertools.permutations(range(len(Y))))


@pytest.mark.parametrize("seed", range(4))
def test_equal_sizes_match_brute_force_over_permutations(seed):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)) + 0.5
    assert wasserstein(X, Y) == pytest.approx(brute_force_assignment(X, Y), rel=1e-12)


@pytest.mark.parametrize(("n", "m"), [(40, 40), (7, 11), (30, 45), (13, 5)])
def test_one_dimension_matches_scipy(n, m):
    rng = np.random.default_rng(n * 100 + m)
    x, y = rng.normal(size=n), rng.exponential(size=m)
    expected = wasserstein_distance(x, y)
    assert wasserstein(x[:, None], y[:, None]) == pytest.approx(expected, rel=1e-8, abs=1e-10)


def test_unequal_sizes_match_replicated_assignment():
    # Uniform masses 1/4 and 1/6 equal 3/12 and 2/12: replicating each x 3 times and each y
    # 2 times gives two samples of 12 with the same optimal transport cost (integral vertices).
    rng = np.random.default_rng(20)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    cost = cdist(np.repeat(X, 3, axis=0), np.repeat(Y, 2, axis=0))
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    assert wasserstein(X, Y) == pytest.approx(cost[rows, cols].mean(), rel=1e-9)


def test_zero_for_the_same_sample_in_any_order():
    rng = np.random.default_rng(21)
    X = rng.normal(size=(9, 4))
    assert wasserstein(X, X[rng.permutation(9)]) == 0.0
    # unequal sizes (linear programme): every point duplicated still has distance 0
    assert wasserstein(X, np.vstack([X, X])) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("m", [8, 12])
def test_translation_moves_by_the_shift_length(m):
    # W1(P, P + c) = |c|; with duplicated points the same holds for unequal sizes.
    rng = np.random.default_rng(22)
    X = rng.normal(size=(4, 3))
    shift = np.array([0.3, -1.2, 0.5])
    Y = np.repeat(X, m // 4, axis=0) + shift
    assert wasserstein(X, Y) == pytest.approx(np.linalg.norm(shift), rel=1e-9)


def test_symmetric():
    rng = np.random.default_rng(23)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(9, 2)) + 1
    assert wasserstein(X, Y) == pytest.approx(wasserstein(Y, X), rel=1e-9)


def test_large_unequal_problem_raises_instead_of_running_long():
    rng = np.random.default_rng(24)
    X, Y = rng.normal(size=(10, 2)), rng.normal(size=(11, 2))
    with pytest.raises(ValueError, match="unequal sizes 10 and 11.*110 variables.*max_pairs=100"):
        wasserstein(X, Y, max_pairs=100)


def test_solver_failure_raises(monkeypatch):
    failed = scipy.optimize.OptimizeResult(status=4, message="numerical difficulties", fun=0.0)
    monkeypatch.setattr(wasserstein_module, "linprog", lambda *args, **kwargs: failed)
    with pytest.raises(RuntimeError, match="linear programme failed: numerical difficulties"):
        wasserstein_from_cost(np.ones((2, 3)))


def test_cost_matrix_is_checked():
    with pytest.raises(ValueError, match="cost contains NaN"):
        wasserstein_from_cost(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="non-empty 2-D"):
        wasserstein_from_cost(np.ones(3))
