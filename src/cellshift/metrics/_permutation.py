"""Exact permutation moments of the E-statistic: a null calibrated at every group size, with no draws.

Pool a group ``A`` of ``n`` cells with the ``m`` reference cells into ``M = n + m`` cells with
distances ``d_ij``. Under the null of no difference the two samples are exchangeable: every way
of labelling ``n`` of the ``M`` pooled cells as the group is equally likely. The E-statistic
(diagonal excluded, as in :func:`cellshift.metrics.edistance`)

``E = 2 C / (n m) - W_A / (n (n - 1)) - W_B / (m (m - 1))``

does not change when ``d_ij`` is replaced by ``d_ij + f_i + f_j + c`` (each term is a mean of
``d`` over pairs, and the three means shift alike), so it can be computed from the U-centred
distances ``e_ij = d_ij - r_i / (M - 2) - r_j / (M - 2) + T / ((M - 1) (M - 2))`` (``r_i`` the
row sums over ``j != i``, ``T`` their total), whose rows sum to zero. Then ``C`` and ``W_B``
follow from ``W_A`` and ``E = -b W_A`` with
``b = 2 / (n m) + 1 / (n (n - 1)) + 1 / (m (m - 1))``. Over random labellings, with ``q_k`` the
chance that ``k`` given cells all fall in the group (``q_2 = n (n-1) / (M (M-1))`` etc.),

``mean(E) = 0`` and ``var(E) = 2 b^2 D (q_2 - 2 q_3 + q_4)``,

where ``D = sum_{i != j} e_ij^2 = sum_{i != j} d_ij^2 - 2 sum_i r_i^2 / (M - 2) + T^2 / ((M-1)(M-2))``
(the U-centred inner product of Szekely & Rizzo 2014). So ``z = E / sd`` has mean exactly 0 and
variance exactly 1 under the null, for any ``n`` and ``m`` (a group as large as the reference
included), and needs only the pooled ``T``, ``sum_i r_i^2`` and ``sum_{i != j} d_ij^2``: one pass
over the group's distances to the reference, the same work as the E-distance itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ._edistance import edistance_from_sums
from ._pairwise import augment_left, augment_right, euclidean_from_augmented, prepare_points, row_blocks, rows_per_block
from ._registry import get_edistance_metric
from ._validation import ArrayLike, as_points


def edistance_permutation_sd(n: int, m: int, total: float, row_square_sum: float, square_sum: float) -> float:
    """Standard deviation of the E-statistic over random labellings of ``n`` of ``n + m`` pooled cells.

    Parameters
    ----------
    n, m
        Sizes of the two samples (at least 2 each).
    total
        ``T = sum_{i != j} d_ij`` over the pooled cells (ordered pairs).
    row_square_sum
        ``sum_i r_i^2`` with ``r_i = sum_{j != i} d_ij``.
    square_sum
        ``sum_{i != j} d_ij^2``.

    Returns
    -------
    float
        ``sqrt(2 b^2 D (q_2 - 2 q_3 + q_4))`` (see the module docstring); 0 when all distances are equal.
    """
    if n < 2 or m < 2:
        raise ValueError(f"the permutation null needs at least 2 cells on each side, got {n} and {m}")
    pooled = n + m
    centred = square_sum - 2.0 * row_square_sum / (pooled - 2) + total**2 / ((pooled - 1) * (pooled - 2))
    q2 = n * (n - 1) / (pooled * (pooled - 1))
    q3 = q2 * (n - 2) / (pooled - 2)
    q4 = q3 * (n - 3) / (pooled - 3) if pooled > 3 else 0.0
    b = 2.0 / (n * m) + 1.0 / (n * (n - 1)) + 1.0 / (m * (m - 1))
    variance = 2.0 * b * b * max(centred, 0.0) * (q2 - 2.0 * q3 + q4)
    return float(np.sqrt(max(variance, 0.0)))


class ReferencePieces:
    """The reference (control) cells' share of the pooled sums, computed once for a whole screen.

    Parameters
    ----------
    Z_reference
        Reference cells x dimensions.
    metric
        ``"edistance"`` or ``"cosine_edistance"``.
    chunk_size
        Rows per block of distances.
    """

    def __init__(self, Z_reference: ArrayLike, *, metric: str = "edistance", chunk_size: int | None = None) -> None:
        self.ground = get_edistance_metric(metric).ground_distance
        self.points = prepare_points(as_points(Z_reference, "Z_reference", min_rows=2), self.ground, "Z_reference")
        self.chunk_size = chunk_size
        self.row_sums, self.square_sum = _distance_sums(self.points, None, self.ground, chunk_size)
        self.total = float(self.row_sums.sum())

    @property
    def size(self) -> int:
        """Number of reference cells."""
        return self.points.shape[0]

    def subset_sd(self, size: int) -> float:
        """Permutation sd of the E-statistic of ``size`` reference cells vs the other reference cells."""
        row_square_sum = float((self.row_sums * self.row_sums).sum())
        return edistance_permutation_sd(size, self.size - size, self.total, row_square_sum, self.square_sum)

    def group_sd(self, X: ArrayLike) -> float:
        """Permutation sd of the E-statistic of group ``X`` vs all reference cells (pooled ``X`` + reference)."""
        return self.group_statistics(X)[1]

    def group_statistics(self, X: ArrayLike) -> tuple[float, float]:
        """E-distance of group ``X`` vs all reference cells and its permutation sd, from one pass over the distances."""
        x = prepare_points(as_points(X, "X", min_rows=2).to(self.points), self.ground, "X")
        cross_rows, cross_squares, reference_columns = _cross_sums(x, self.points, self.ground, self.chunk_size)
        within_rows, within_squares = _distance_sums(x, None, self.ground, self.chunk_size)
        n = x.shape[0]
        value = edistance_from_sums(float(cross_rows.sum()), float(within_rows.sum()), self.total, n, self.size)
        reference_rows = self.row_sums + reference_columns
        group_rows = cross_rows + within_rows
        total = float(reference_rows.sum() + group_rows.sum())
        row_square_sum = float((reference_rows * reference_rows).sum() + (group_rows * group_rows).sum())
        square_sum = self.square_sum + 2.0 * cross_squares + within_squares
        return float(value), edistance_permutation_sd(n, self.size, total, row_square_sum, square_sum)


def group_permutation_sds(
    Z: ArrayLike, labels: ArrayLike, reference: str, *, metric: str = "edistance", chunk_size: int | None = None
) -> pd.Series:
    """Permutation sd of the E-statistic of every group vs the reference group, one pass per group.

    Parameters
    ----------
    Z
        Cells x dimensions.
    labels
        Group label of every cell; cells labelled ``reference`` are the reference.
    reference
        Label of the reference (control) cells.
    metric
        ``"edistance"`` or ``"cosine_edistance"``.
    chunk_size
        Rows per block of distances.

    Returns
    -------
    pandas.Series
        Indexed by group label (sorted, reference excluded): ``sd`` such that ``E / sd`` has
        mean 0 and variance 1 when the group and the reference are exchangeable.
    """
    labels = np.asarray(labels).astype(str)
    points = as_points(Z, "Z")
    pieces = ReferencePieces(points[torch.as_tensor(labels == reference)], metric=metric, chunk_size=chunk_size)
    groups = sorted(set(labels) - {reference})
    return pd.Series({group: pieces.group_sd(points[torch.as_tensor(labels == group)]) for group in groups})


def _distance_sums(
    x: torch.Tensor, y: torch.Tensor | None, ground: str, chunk_size: int | None
) -> tuple[torch.Tensor, float]:
    """Row sums ``sum_j d(x_i, y_j)`` and ``sum_{i, j} d^2`` (within ``x`` when ``y`` is None: ``i != j``)."""
    rows, squares, _ = _cross_sums(x, x if y is None else y, ground, chunk_size, within=y is None)
    return rows, squares


def _cross_sums(
    x: torch.Tensor, y: torch.Tensor, ground: str, chunk_size: int | None, *, within: bool = False
) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Row sums over ``y``, the sum of squared distances, and column sums over ``x``, in row blocks."""
    rows = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    columns = torch.zeros(y.shape[0], dtype=torch.float64, device=x.device)
    squares = 0.0
    y_augmented = augment_right(y) if ground == "euclidean" else None
    for start, stop in row_blocks(x.shape[0], rows_per_block(chunk_size, y.shape[0])):
        if ground == "euclidean":
            block = euclidean_from_augmented(augment_left(x[start:stop]), y_augmented)
        else:
            block = 1.0 - x[start:stop] @ y.T
        if within:
            block.diagonal(offset=start).zero_()
        rows[start:stop] = block.sum(dim=1)
        columns += block.sum(dim=0)
        squares += float((block * block).sum())
    return rows, squares, columns
