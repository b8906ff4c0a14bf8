"""Chunked pairwise distances in torch (CPU or GPU), accumulated in float64.

Two ground distances are supported:

- ``"euclidean"``: ``d(x, y) = ||x - y||``, computed as ``sqrt(|x|^2 + |y|^2 - 2 x.y)``
  (clamped at 0) so one block is one matrix product. In float64 this is exact to about
  ``1e-16 |x|^2`` on the squared distance, so two coincident points come out at up to about
  ``1e-8 |x|`` instead of 0 (self-distances within one sample are set to exactly 0);
- ``"cosine"``: ``d(x, y) = 1 - x.y / (|x| |y|)``.

Blocks are computed on the device of the input tensors; nothing here picks a device.
A block never holds more than ``chunk_size x len(Y)`` distances; with ``chunk_size=None`` the
rows per block are chosen so that a block holds at most :data:`DEFAULT_BLOCK_ELEMENTS`
distances (128 MiB in float64).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch

from ._validation import ArrayLike, as_point_pair, as_points, check_nonzero_rows

GroundDistance = Literal["euclidean", "cosine"]
GROUND_DISTANCES: tuple[str, ...] = ("euclidean", "cosine")
DEFAULT_BLOCK_ELEMENTS = 2**24


def check_ground_distance(metric: str) -> None:
    """Raise a ``ValueError`` if ``metric`` is not a supported ground distance."""
    if metric not in GROUND_DISTANCES:
        raise ValueError(f"unknown ground distance {metric!r}; valid: {', '.join(GROUND_DISTANCES)}")


def prepare_points(X: torch.Tensor, metric: GroundDistance, name: str) -> torch.Tensor:
    """Return ``X`` ready for :func:`distance_block`: rows L2-normalised for ``"cosine"``."""
    check_ground_distance(metric)
    if metric == "cosine":
        check_nonzero_rows(X, name)
        return X / torch.linalg.vector_norm(X, dim=-1, keepdim=True)
    return X


def distance_block(A: torch.Tensor, B: torch.Tensor, metric: GroundDistance) -> torch.Tensor:
    """Distances between every row of ``A`` and every row of ``B`` (both prepared).

    Works on 2-D inputs (``a x d``, ``b x d`` -> ``a x b``) and on batches
    (``k x a x d``, ``k x b x d`` -> ``k x a x b``).
    """
    inner = A @ B.transpose(-2, -1)
    if metric == "cosine":
        return 1.0 - inner
    # |a|^2 + |b|^2 - 2 a.b, in place on the product to avoid block-sized temporaries.
    squared = inner.mul_(-2.0).add_((A * A).sum(-1).unsqueeze(-1)).add_((B * B).sum(-1).unsqueeze(-2))
    return squared.clamp_min_(0.0).sqrt_()


def rows_per_block(chunk_size: int | None, n_columns: int) -> int:
    """Rows per block: ``chunk_size``, or what fits :data:`DEFAULT_BLOCK_ELEMENTS`."""
    if chunk_size is None:
        return max(1, DEFAULT_BLOCK_ELEMENTS // max(1, n_columns))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    return chunk_size


def row_blocks(n_rows: int, step: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` of consecutive row blocks of at most ``step`` rows."""
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def pairwise_distances(
    X: ArrayLike, Y: ArrayLike | None = None, *, metric: GroundDistance = "euclidean"
) -> torch.Tensor:
    """Full ``len(X) x len(Y)`` distance matrix in float64 (not chunked).

    Parameters
    ----------
    X, Y
        Samples (cells x dimensions). With ``Y=None`` the distances within ``X`` are returned,
        with the diagonal set to exactly 0.
    metric
        ``"euclidean"`` or ``"cosine"`` (``1 - cosine similarity``).

    Returns
    -------
    torch.Tensor
        The distance matrix, float64, on the device of the inputs.
    """
    if Y is None:
        x = prepare_points(as_points(X, "X"), metric, "X")
        block = distance_block(x, x, metric)
        block.fill_diagonal_(0.0)
        return block
    x, y = as_point_pair(X, Y)
    return distance_block(prepare_points(x, metric, "X"), prepare_points(y, metric, "Y"), metric)


def pairwise_distance_sums(
    X: ArrayLike,
    Y: ArrayLike | None = None,
    *,
    metric: GroundDistance = "euclidean",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Row sums of the distance matrix, ``r_i = sum_j d(x_i, y_j)``, computed in row blocks.

    Parameters
    ----------
    X, Y
        Samples (cells x dimensions), numpy arrays or torch tensors. With ``Y=None``,
        ``Y = X`` and the self-distances ``d(x_i, x_i)`` count as exactly 0, so
        ``r.sum()`` is the sum over ordered pairs of distinct cells.
    metric
        ``"euclidean"`` or ``"cosine"`` (``1 - cosine similarity``).
    chunk_size
        Rows of ``X`` per block; a block holds ``chunk_size x len(Y)`` distances.
        ``None`` picks the rows so that a block holds at most 2**24 distances.

    Returns
    -------
    torch.Tensor
        Shape ``(len(X),)``, float64, on the device of the inputs.

    Notes
    -----
    Time ``O(len(X) len(Y) d)``; memory ``O(chunk_size len(Y))`` on top of the inputs.
    """
    if Y is None:
        x = prepare_points(as_points(X, "X"), metric, "X")
        y = x
    else:
        x, y = as_point_pair(X, Y)
        x, y = prepare_points(x, metric, "X"), prepare_points(y, metric, "Y")
    sums = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for start, stop in row_blocks(x.shape[0], rows_per_block(chunk_size, y.shape[0])):
        block = distance_block(x[start:stop], y, metric)
        if Y is None:
            block.diagonal(offset=start).zero_()
        sums[start:stop] = block.sum(dim=1)
    return sums


def batched_distance_totals(
    P: torch.Tensor,
    Q: torch.Tensor | None,
    metric: GroundDistance,
    chunk_size: int,
) -> torch.Tensor:
    """Total distance within (``Q=None``) or between samples, for a batch of samples.

    Parameters
    ----------
    P, Q
        Prepared points (see :func:`prepare_points`), shapes ``k x n x d`` and ``k x m x d``:
        ``k`` independent samples. With ``Q=None`` the sum runs over ordered pairs of distinct
        rows of each ``P[i]``.
    metric
        ``"euclidean"`` or ``"cosine"``.
    chunk_size
        Rows per block counted over the whole batch: a block holds about
        ``max(k, chunk_size) x m`` distances.

    Returns
    -------
    torch.Tensor
        Shape ``(k,)``: ``sum_{a, b} d(P[i, a], Q[i, b])`` for each ``i``.
    """
    other = P if Q is None else Q
    totals = torch.zeros(P.shape[0], dtype=torch.float64, device=P.device)
    step = max(1, chunk_size // P.shape[0])
    for start, stop in row_blocks(P.shape[1], step):
        block = distance_block(P[:, start:stop], other, metric)
        if Q is None:
            block.diagonal(offset=start, dim1=-2, dim2=-1).zero_()
        totals += block.sum(dim=(1, 2))
    return totals
