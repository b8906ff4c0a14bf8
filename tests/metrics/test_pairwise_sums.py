"""Chunked pairwise distance sums against scipy's cdist."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from cellshift.metrics import pairwise_distance_sums, pairwise_distances


def points(seed, n=17, m=29, d=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.3


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_full_matrix_matches_cdist(metric):
    X, Y = points(0)
    np.testing.assert_allclose(
        pairwise_distances(X, Y, metric=metric).numpy(), cdist(X, Y, metric), rtol=1e-10, atol=1e-12
    )
    within = pairwise_distances(X, metric=metric).numpy()
    np.testing.assert_allclose(within, cdist(X, X, metric), rtol=1e-10, atol=1e-7)
    assert (np.diag(within) == 0).all()


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("chunk_size", [1, 3, 16, 17, 100, None])
def test_row_sums_match_cdist_for_every_chunk_size(metric, chunk_size):
    X, Y = points(1)
    cross = pairwise_distance_sums(X, Y, metric=metric, chunk_size=chunk_size)
    np.testing.assert_allclose(cross.numpy(), cdist(X, Y, metric).sum(1), rtol=1e-10)
    within = pairwise_distance_sums(X, metric=metric, chunk_size=chunk_size)
    np.testing.assert_allclose(within.numpy(), cdist(X, X, metric).sum(1), rtol=1e-10)


def test_within_sums_exclude_self_distances_exactly():
    # Large-norm points: the Gram formula alone would leave ~1e-8 |x| on the diagonal.
    X = np.full((3, 4), 1e3)
    assert (pairwise_distance_sums(X, chunk_size=2).numpy() == 0).all()


def test_float64_result_on_the_input_device():
    X, Y = points(2)
    sums = pairwise_distance_sums(torch.from_numpy(X).float(), torch.from_numpy(Y).float())
    assert sums.dtype == torch.float64
    assert sums.device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_stay_on_cuda_and_agree_with_cpu():
    X, Y = points(3)
    on_gpu = pairwise_distance_sums(torch.from_numpy(X).cuda(), Y, chunk_size=4)
    assert on_gpu.device.type == "cuda"
    np.testing.assert_allclose(on_gpu.cpu().numpy(), cdist(X, Y).sum(1), rtol=1e-10)


def test_bad_arguments_raise():
    X, Y = points(4)
    with pytest.raises(ValueError, match="unknown ground distance 'manhattan'.*euclidean, cosine"):
        pairwise_distance_sums(X, Y, metric="manhattan")
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        pairwise_distance_sums(X, Y, chunk_size=0)
    with pytest.raises(ValueError, match="same number of dimensions"):
        pairwise_distance_sums(X, Y[:, :2])
