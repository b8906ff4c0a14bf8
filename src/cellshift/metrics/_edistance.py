"""E-distance (energy distance) between two samples, Euclidean or cosine ground distance."""

from __future__ import annotations

import numpy as np

from ._pairwise import GroundDistance, pairwise_distance_sums
from ._validation import ArrayLike, as_point_pair

ArrayOrFloat = np.ndarray | float


def edistance_from_sums(
    cross_sum: ArrayOrFloat,
    within_x_sum: ArrayOrFloat,
    within_y_sum: ArrayOrFloat,
    n_x: ArrayOrFloat,
    n_y: ArrayOrFloat,
) -> ArrayOrFloat:
    """E-distance from sums of pairwise distances (works element-wise on arrays).

    ``E = 2 * S_xy / (n_x n_y) - S_xx / (n_x (n_x - 1)) - S_yy / (n_y (n_y - 1))``

    Parameters
    ----------
    cross_sum
        ``S_xy = sum_{i, j} d(x_i, y_j)`` over all ``n_x * n_y`` pairs.
    within_x_sum, within_y_sum
        ``S_xx = sum_{i != i'} d(x_i, x_i')`` over ordered pairs of distinct cells (each
        unordered pair counted twice), likewise ``S_yy``.
    n_x, n_y
        Sample sizes, at least 2.

    Returns
    -------
    numpy.ndarray or float
        The E-distance, same shape as the inputs.
    """
    n_x = np.asarray(n_x, dtype=np.float64)
    n_y = np.asarray(n_y, dtype=np.float64)
    value = (
        2.0 * np.asarray(cross_sum) / (n_x * n_y)
        - np.asarray(within_x_sum) / (n_x * (n_x - 1.0))
        - np.asarray(within_y_sum) / (n_y * (n_y - 1.0))
    )
    return float(value) if value.ndim == 0 else value


def edistance_with(X: ArrayLike, Y: ArrayLike, metric: GroundDistance, chunk_size: int | None = None) -> float:
    """E-distance between ``X`` and ``Y`` with ground distance ``metric``; see :func:`edistance`."""
    x, y = as_point_pair(X, Y, min_rows=2)
    cross = pairwise_distance_sums(x, y, metric=metric, chunk_size=chunk_size).sum()
    within_x = pairwise_distance_sums(x, metric=metric, chunk_size=chunk_size).sum()
    within_y = pairwise_distance_sums(y, metric=metric, chunk_size=chunk_size).sum()
    return edistance_from_sums(float(cross), float(within_x), float(within_y), x.shape[0], y.shape[0])


def edistance(X: ArrayLike, Y: ArrayLike, *, chunk_size: int | None = None) -> float:
    """E-distance between two samples with Euclidean ground distance.

    ``E = 2 * mean_{i, j} d(x_i, y_j) - mean_{i != i'} d(x_i, x_i') - mean_{j != j'} d(y_j, y_j')``

    with ``d(x, y) = ||x - y||``. The within-sample means run over pairs of distinct cells
    (U-statistics, diagonal excluded), so ``E`` is an unbiased estimate of the energy distance
    between the two distributions: its expectation is 0 when both samples come from the same
    distribution, and a single value can then be slightly negative. Comparing a sample with
    itself gives exactly ``-(2 / n) * mean_{i != i'} d(x_i, x_i')``, not 0.

    Parameters
    ----------
    X, Y
        Samples (cells x dimensions), numpy arrays or torch tensors with the same number of
        columns and at least 2 rows each. Tensors stay on their device.
    chunk_size
        Rows per block of distances (see :func:`pairwise_distance_sums`).

    Returns
    -------
    float
        The E-distance.

    Raises
    ------
    ValueError
        If the inputs are not 2-D, have different numbers of columns, fewer than 2 rows, or
        hold NaN or infinite values.
    """
    return edistance_with(X, Y, "euclidean", chunk_size)


def cosine_edistance(X: ArrayLike, Y: ArrayLike, *, chunk_size: int | None = None) -> float:
    """E-distance between two samples with cosine ground distance.

    ``E = 2 * mean_{i, j} d(x_i, y_j) - mean_{i != i'} d(x_i, x_i') - mean_{j != j'} d(y_j, y_j')``

    with ``d(x, y) = 1 - x.y / (|x| |y|)``; within-sample means over pairs of distinct cells
    (U-statistics, diagonal excluded), as in :func:`edistance`.

    Parameters
    ----------
    X, Y
        Samples (cells x dimensions) with the same number of columns, at least 2 rows each and
        no all-zero row.
    chunk_size
        Rows per block of distances (see :func:`pairwise_distance_sums`).

    Returns
    -------
    float
        The cosine E-distance.

    Raises
    ------
    ValueError
        As :func:`edistance`, and if a row is all zeros (its cosine is undefined).
    """
    return edistance_with(X, Y, "cosine", chunk_size)
