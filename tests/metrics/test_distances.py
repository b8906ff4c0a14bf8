"""Two-sample E-distances and the metric registry, checked against scipy's cdist."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from cellshift.metrics import (
    METRICS,
    CosineEDistance,
    EDistance,
    Wasserstein,
    cosine_edistance,
    edistance,
    edistance_from_sums,
    get_metric,
    wasserstein,
)


def cdist_edistance(X, Y, metric="euclidean"):
    """Reference: the U-statistic formula with plain numpy on scipy distance matrices."""
    n, m = len(X), len(Y)
    within_x = cdist(X, X, metric).sum() / (n * (n - 1))  # cdist diagonal is 0
    within_y = cdist(Y, Y, metric).sum() / (m * (m - 1))
    return 2 * cdist(X, Y, metric).mean() - within_x - within_y


def samples(seed, n=23, m=31, d=6, shift=0.4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + shift


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "m"), [(2, 2), (5, 17), (40, 9)])
def test_edistance_matches_cdist_reference(seed, n, m):
    X, Y = samples(seed, n, m)
    assert edistance(X, Y) == pytest.approx(cdist_edistance(X, Y), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("n", "m"), [(2, 3), (25, 14)])
def test_cosine_edistance_matches_cdist_reference(seed, n, m):
    X, Y = samples(seed, n, m)
    expected = cdist_edistance(X, Y, "cosine")
    assert cosine_edistance(X, Y) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_cosine_edistance_matches_linear_time_identity():
    # With unit rows u, v: sum_{i,j} (1 - u_i.v_j) = n m - (sum u).(sum v), and over ordered
    # distinct pairs sum_{i != i'} (1 - u_i.u_i') = n (n - 1) - (|sum u|^2 - n).
    X, Y = samples(3, 30, 20)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    V = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    n, m = len(U), len(V)
    su, sv = U.sum(0), V.sum(0)
    cross = n * m - su @ sv
    within_u = n * (n - 1) - (su @ su - n)
    within_v = m * (m - 1) - (sv @ sv - m)
    expected = 2 * cross / (n * m) - within_u / (n * (n - 1)) - within_v / (m * (m - 1))
    assert cosine_edistance(X, Y) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("distance", [edistance, cosine_edistance])
def test_sample_against_itself_gives_the_exact_u_statistic_value(distance):
    # E(X, X) = 2 S/n^2 - 2 S/(n(n-1)) = -(2/n) * mean_{i != i'} d, not 0 (U-statistic).
    X, _ = samples(4, 12)
    n = len(X)
    metric = "euclidean" if distance is edistance else "cosine"
    mean_within = cdist(X, X, metric).sum() / (n * (n - 1))
    # In the cross term each point meets itself; the Gram-matrix formula puts those 0
    # distances at up to ~1e-8 |x| (documented in cellshift.metrics._pairwise), hence abs=1e-7.
    assert distance(X, X) == pytest.approx(-2.0 / n * mean_within, rel=1e-10, abs=1e-7)


@pytest.mark.parametrize("distance", [edistance, cosine_edistance])
def test_symmetric(distance):
    X, Y = samples(5)
    assert distance(X, Y) == pytest.approx(distance(Y, X), rel=1e-12)


def test_edistance_invariant_to_translation_and_rotation():
    X, Y = samples(6)
    rng = np.random.default_rng(60)
    shift = rng.normal(size=X.shape[1]) * 10
    rotation, _ = np.linalg.qr(rng.normal(size=(X.shape[1], X.shape[1])))
    base = edistance(X, Y)
    assert edistance(X + shift, Y + shift) == pytest.approx(base, rel=1e-9)
    assert edistance(X @ rotation, Y @ rotation) == pytest.approx(base, rel=1e-9)


def test_cosine_edistance_invariant_to_positive_row_scaling():
    X, Y = samples(7)
    rng = np.random.default_rng(70)
    scaled_x = X * rng.uniform(0.1, 10, size=(len(X), 1))
    scaled_y = Y * rng.uniform(0.1, 10, size=(len(Y), 1))
    assert cosine_edistance(scaled_x, scaled_y) == pytest.approx(cosine_edistance(X, Y), rel=1e-10)


@pytest.mark.parametrize("distance", [edistance, cosine_edistance])
def test_unbiased_under_the_null_and_positive_under_a_shift(distance):
    # Same distribution: the U-statistic has expectation 0, so the average over independent
    # draws stays within a few standard errors of 0 (and single values can be negative).
    rng = np.random.default_rng(8)
    same = np.array([distance(rng.normal(size=(15, 4)), rng.normal(size=(20, 4))) for _ in range(300)])
    standard_error = same.std(ddof=1) / np.sqrt(len(same))
    assert abs(same.mean()) < 4 * standard_error
    assert (same < 0).any()
    shifted = [distance(rng.normal(size=(15, 4)), rng.normal(size=(20, 4)) + 1.0) for _ in range(20)]
    assert min(shifted) > 0


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 1000])
def test_chunk_size_does_not_change_results(chunk_size):
    X, Y = samples(9, 19, 26)
    assert edistance(X, Y, chunk_size=chunk_size) == pytest.approx(edistance(X, Y), rel=1e-12)
    assert cosine_edistance(X, Y, chunk_size=chunk_size) == pytest.approx(cosine_edistance(X, Y), rel=1e-12)


def test_torch_inputs_match_numpy_inputs():
    X, Y = samples(10)
    expected = edistance(X, Y)
    assert edistance(torch.from_numpy(X), torch.from_numpy(Y)) == pytest.approx(expected, rel=1e-12)
    assert edistance(torch.from_numpy(X), Y) == pytest.approx(expected, rel=1e-12)
    # float32 tensors are promoted to float64 before any arithmetic
    as_float32 = edistance(torch.from_numpy(X).float(), torch.from_numpy(Y).float())
    assert as_float32 == pytest.approx(cdist_edistance(X.astype(np.float32), Y.astype(np.float32)))


@pytest.mark.parametrize("distance", [edistance, cosine_edistance, wasserstein])
def test_errors_name_the_problem(distance):
    X, Y = samples(11)
    with pytest.raises(ValueError, match="same number of dimensions.*6 and 5"):
        distance(X, Y[:, :5])
    with pytest.raises(ValueError, match="X must be 2-D"):
        distance(X[0], Y)
    bad = Y.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="Y contains NaN or infinite"):
        distance(X, bad)
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="Y contains NaN or infinite"):
        distance(X, bad)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        distance(X.tolist(), Y)


@pytest.mark.parametrize("distance", [edistance, cosine_edistance])
def test_edistance_needs_two_rows(distance):
    X, Y = samples(12)
    with pytest.raises(ValueError, match="X needs at least 2 rows"):
        distance(X[:1], Y)
    with pytest.raises(ValueError, match="Y needs at least 2 rows"):
        distance(X, Y[:1])


def test_cosine_rejects_zero_rows():
    X, Y = samples(13)
    X[4] = 0.0
    with pytest.raises(ValueError, match="X has 1 row.*zero norm.*row 4"):
        cosine_edistance(X, Y)


def test_edistance_from_sums_matches_the_formula():
    X, Y = samples(14, 8, 11)
    value = edistance_from_sums(cdist(X, Y).sum(), cdist(X, X).sum(), cdist(Y, Y).sum(), len(X), len(Y))
    assert value == pytest.approx(cdist_edistance(X, Y), rel=1e-12)
    arrays = edistance_from_sums(np.array([1.0, 2.0]), np.array([2.0, 2.0]), 6.0, np.array([2, 2]), 3)
    np.testing.assert_allclose(arrays, [2 * 1 / 6 - 1 - 1, 2 * 2 / 6 - 1 - 1])


def test_registry_holds_one_instance_per_metric():
    assert set(METRICS) == {"edistance", "cosine_edistance", "wasserstein"}
    assert isinstance(get_metric("edistance"), EDistance)
    assert isinstance(get_metric("cosine_edistance"), CosineEDistance)
    assert isinstance(get_metric("wasserstein"), Wasserstein)
    for name, metric in METRICS.items():
        assert metric.name == name


def test_registry_metrics_agree_with_the_functions():
    X, Y = samples(15, 12, 12)
    assert get_metric("edistance")(X, Y) == pytest.approx(edistance(X, Y), rel=1e-12)
    assert get_metric("cosine_edistance")(X, Y) == pytest.approx(cosine_edistance(X, Y), rel=1e-12)
    assert get_metric("wasserstein")(X, Y) == pytest.approx(wasserstein(X, Y), rel=1e-12)
    assert get_metric("wasserstein").from_cost(cdist(X, Y)) == pytest.approx(wasserstein(X, Y))
    sums = (cdist(X, Y).sum(), cdist(X, X).sum(), cdist(Y, Y).sum(), 12, 12)
    assert EDistance.from_sums(*sums) == pytest.approx(edistance(X, Y), rel=1e-10)
    assert EDistance(chunk_size=3)(X, Y) == pytest.approx(edistance(X, Y), rel=1e-12)


def test_unknown_metric_lists_valid_names():
    with pytest.raises(ValueError, match="unknown metric 'mmd'.*cosine_edistance, edistance, wasserstein"):
        get_metric("mmd")
