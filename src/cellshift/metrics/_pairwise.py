"""Chunked pairwise distances in torch (CPU or GPU), accumulated in float64.

Two ground distances are supported:

- ``"euclidean"``: ``d(x, y) = ||x - y||``. A block of squared distances
  ``|x|^2 + |y|^2 - 2 x.y`` is one matrix product of the rows augmented with their squared
  norms, ``[x, |x|^2, 1] . [-2 y, 1, |y|^2]``, then clamped at 0 and square-rooted: three passes
  over the block instead of six, so a block costs little more than its matrix product. In
  float64 this is exact to about ``1e-16 |x|^2`` on the squared distance, so two coincident
  points come out at up to about ``1e-8 |x|`` instead of 0 (self-distances within one sample
  are set to exactly 0);
- ``"cosine"``: ``d(x, y) = 1 - x.y`` on rows scaled to unit length. This distance is linear in
  each point, so its sums need no distance matrix at all:
  ``sum_j d(x_i, y_j) = m - x_i . (sum_j y_j)``. :func:`pairwise_distance_sums` and
  :func:`batched_distance_totals` use that identity, ``O((n + m) d)`` instead of ``O(n m d)``.

Blocks are computed on the device of the input tensors; nothing here picks a device.
A block never holds more than ``chunk_size x len(Y)`` distances; with ``chunk_size=None`` the
rows per block are chosen so that a block holds at most :data:`DEFAULT_BLOCK_ELEMENTS`
distances (8 MiB in float64: small enough for the passes over a block to stay in the CPU's
cache; measured 1.5-2x faster than 128 MiB blocks on 2 cores).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch

from ._validation import ArrayLike, as_point_pair, as_points, check_nonzero_rows

GroundDistance = Literal["euclidean", "cosine"]
GROUND_DISTANCES: tuple[str, ...] = ("euclidean", "cosine")
DEFAULT_BLOCK_ELEMENTS = 2**20


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


def augment_left(A: torch.Tensor) -> torch.Tensor:
    """Rows ``[a, |a|^2, 1]`` (works on ``... x a x d``), the left factor of squared distances."""
    squared_norms = (A * A).sum(-1, keepdim=True)
    return torch.cat([A, squared_norms, torch.ones_like(squared_norms)], dim=-1)


def augment_right(B: torch.Tensor) -> torch.Tensor:
    """Rows ``[-2 b, 1, |b|^2]``, so that ``augment_left(A) @ augment_right(B).T = |a - b|^2``."""
    squared_norms = (B * B).sum(-1, keepdim=True)
    return torch.cat([-2.0 * B, torch.ones_like(squared_norms), squared_norms], dim=-1)


def euclidean_from_augmented(A_augmented: torch.Tensor, B_augmented: torch.Tensor) -> torch.Tensor:
    """Euclidean distances from augmented rows (:func:`augment_left`, :func:`augment_right`)."""
    return (A_augmented @ B_augmented.transpose(-2, -1)).clamp_min_(0.0).sqrt_()


def distance_block(A: torch.Tensor, B: torch.Tensor, metric: GroundDistance) -> torch.Tensor:
    """Distances between every row of ``A`` and every row of ``B`` (both prepared).

    Works on 2-D inputs (``a x d``, ``b x d`` -> ``a x b``) and on batches
    (``k x a x d``, ``k x b x d`` -> ``k x a x b``).
    """
    if metric == "cosine":
        return 1.0 - A @ B.transpose(-2, -1)
    return euclidean_from_augmented(augment_left(A), augment_right(B))


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
    """Row sums of the distance matrix, ``r_i = sum_j d(x_i, y_j)``.

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
        ``None`` picks the rows so that a block holds at most :data:`DEFAULT_BLOCK_ELEMENTS`.

    Returns
    -------
    torch.Tensor
        Shape ``(len(X),)``, float64, on the device of the inputs.

    Notes
    -----
    Euclidean: time ``O(len(X) len(Y) d)``, memory ``O(chunk_size len(Y))`` on top of the
    inputs. Cosine (unit rows): ``r_i = len(Y) - x_i . sum_j y_j``, and within one sample
    ``r_i = (n - 1) - x_i . sum_j x_j + |x_i|^2``; time ``O((len(X) + len(Y)) d)``.
    """
    if Y is None:
        x = prepare_points(as_points(X, "X"), metric, "X")
        y = x
    else:
        x, y = as_point_pair(X, Y)
        x, y = prepare_points(x, metric, "X"), prepare_points(y, metric, "Y")
    if metric == "cosine":
        sums = y.shape[0] - x @ y.sum(dim=0)
        if Y is None:
            sums += (x * x).sum(dim=1) - 1.0
        return sums
    sums = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    y_augmented = augment_right(y)
    for start, stop in row_blocks(x.shape[0], rows_per_block(chunk_size, y.shape[0])):
        block = euclidean_from_augmented(augment_left(x[start:stop]), y_augmented)
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
        Shape ``(k,)``: ``sum_{a, b} d(P[i, a], Q[i, b])`` for each ``i``. Cosine (unit rows)
        needs no distances: ``n m - (sum_a p_a) . (sum_b q_b)``, and within one sample
        ``n (n - 1) - |sum_a p_a|^2 + sum_a |p_a|^2``.
    """
    if metric == "cosine":
        p_sums = P.sum(dim=1)
        if Q is None:
            n = P.shape[1]
            return n * (n - 1) - (p_sums * p_sums).sum(-1) + (P * P).sum(dim=(1, 2))
        return P.shape[1] * Q.shape[1] - (p_sums * Q.sum(dim=1)).sum(-1)
    totals = torch.zeros(P.shape[0], dtype=torch.float64, device=P.device)
    step = max(1, chunk_size // P.shape[0])
    if Q is not None:
        other = augment_right(Q)
        for start, stop in row_blocks(P.shape[1], step):
            totals += euclidean_from_augmented(augment_left(P[:, start:stop]), other).sum(dim=(1, 2))
        return totals
    # Within a sample the matrix is symmetric: rows [start, stop) against columns [start, n) only,
    # the off-diagonal part counted twice; in at least 4 row blocks this computes ~5/8 of the matrix.
    other = augment_right(P)
    n = P.shape[1]
    for start, stop in row_blocks(n, max(1, min(step, -(-n // 4)))):
        block = euclidean_from_augmented(augment_left(P[:, start:stop]), other[:, start:])
        block.diagonal(dim1=-2, dim2=-1).zero_()
        totals += block[:, :, : stop - start].sum(dim=(1, 2)) + 2.0 * block[:, :, stop - start :].sum(dim=(1, 2))
    return totals
