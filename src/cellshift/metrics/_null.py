"""Null distribution of the E-distance from random subsets of control cells.

For ``N`` control cells with distance matrix ``D`` (zero diagonal), precompute once the row
sums ``r_i = sum_j D_ij`` and the total ``T = sum_i r_i``. Then for a subset ``S`` of ``n``
controls and the remaining controls ``R``:

- ``W_S = sum_{i != j in S} D_ij`` (the only piece that needs distances: ``n x n``),
- ``C_SR = sum_{i in S} r_i - W_S``,
- ``W_R = T - 2 sum_{i in S} r_i + W_S``,

so each draw costs ``O(n^2 d)`` instead of ``O(N n d)``, and the ``N x N`` matrix is never
stored (the row sums are computed in blocks). Storing it to read ``W_S`` by index would make a
draw ``O(n^2)`` memory reads instead of ``O(n^2 d)`` arithmetic, but random reads are slow:
gathering ``W_S`` from a stored 10,000 x 10,000 float32 matrix measured 2-8x slower than
recomputing the ``n x n`` block at ``d = 64`` (n = 50-300, one CPU thread), and the matrix
grows as ``N^2`` (22 GB at 75,000 controls). ``S`` vs an independent subset ``S'`` of the
same size (the paper's null) needs ``W_S``, ``W_S'`` and ``C_SS'``, all ``n x n`` blocks.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ._edistance import edistance_from_sums
from ._pairwise import (
    batched_distance_totals,
    pairwise_distance_sums,
    prepare_points,
    row_blocks,
    rows_per_block,
)
from ._registry import get_edistance_metric
from ._validation import ArrayLike, as_points

NullReference = Literal["rest", "subset"]


def draw_control_subsets(n_control: int, size: int, n_draws: int, rng: np.random.Generator | int) -> np.ndarray:
    """Draw ``n_draws`` random subsets of ``size`` distinct indices from ``range(n_control)``.

    Row ``k`` is ``rng.choice(n_control, size, replace=False)`` of the ``k``-th draw, so the
    result depends only on the generator's state (or the seed).

    Returns
    -------
    numpy.ndarray
        Integer array of shape ``(n_draws, size)``.

    Raises
    ------
    ValueError
        If ``size`` is larger than ``n_control``.
    """
    if size > n_control:
        raise ValueError(f"cannot draw {size} distinct cells from {n_control} control cells")
    generator = np.random.default_rng(rng)
    subsets = np.empty((n_draws, size), dtype=np.int64)
    for draw in range(n_draws):
        subsets[draw] = generator.choice(n_control, size=size, replace=False)
    return subsets


class ControlNull:
    """Precomputed control-cell pieces that make null E-distances cheap.

    Parameters
    ----------
    Z_control
        Embedding of the control cells, cells x dimensions (numpy array or torch tensor).
    metric
        ``"edistance"`` or ``"cosine_edistance"``.
    chunk_size
        Rows per block of distances (see :func:`cellshift.metrics.pairwise_distance_sums`).

    Attributes
    ----------
    row_sums
        ``r_i = sum_j d(z_i, z_j)`` over all control cells (float64 tensor).
    total_within
        ``T = sum_i r_i``: sum over ordered pairs of distinct control cells.

    Notes
    -----
    Construction: time ``O(N^2 d)``, memory ``O(chunk_size * N)`` for ``N`` control cells.
    """

    def __init__(self, Z_control: ArrayLike, *, metric: str = "edistance", chunk_size: int | None = None) -> None:
        self.metric = metric
        self.ground_distance = get_edistance_metric(metric).ground_distance
        self.chunk_size = chunk_size
        self.points = prepare_points(as_points(Z_control, "Z_control", min_rows=4), self.ground_distance, "Z_control")
        self.row_sums = pairwise_distance_sums(self.points, metric=self.ground_distance, chunk_size=chunk_size)
        self.total_within = float(self.row_sums.sum())

    @property
    def n_control(self) -> int:
        """Number of control cells."""
        return int(self.points.shape[0])

    def vs_rest(self, subsets: np.ndarray) -> np.ndarray:
        """E-distance of each subset ``S`` (one per row) vs the remaining controls.

        Parameters
        ----------
        subsets
            Integer array ``(n_draws, n)`` of distinct control indices per row,
            ``2 <= n <= N - 2``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_draws,)``.
        """
        subsets = self._check_subsets(subsets, max_size=self.n_control - 2)
        size = subsets.shape[1]
        within = self._batched(subsets, None, size)
        row_sums = self.row_sums[torch.from_numpy(subsets).to(self.points.device)].sum(dim=1)
        row_sums = row_sums.cpu().numpy()
        cross = row_sums - within
        within_rest = self.total_within - 2.0 * row_sums + within
        return edistance_from_sums(cross, within, within_rest, size, self.n_control - size)

    def vs_subset(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """E-distance between paired subsets ``first[k]`` and ``second[k]`` of the controls.

        Parameters
        ----------
        first, second
            Integer arrays ``(n_draws, n)``; each row of ``first`` disjoint from the same row
            of ``second``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_draws,)``.
        """
        if np.shape(first) != np.shape(second):
            raise ValueError(f"first and second must have the same shape, got {np.shape(first)} and {np.shape(second)}")
        both = self._check_subsets(np.concatenate([first, second], axis=1), self.n_control)
        size = np.shape(first)[1]
        first, second = both[:, :size], both[:, size:]
        within_first = self._batched(first, None, size)
        within_second = self._batched(second, None, size)
        cross = self._batched(first, second, size)
        return edistance_from_sums(cross, within_first, within_second, size, size)

    def sample(
        self,
        size: int,
        n_draws: int,
        rng: np.random.Generator | int,
        *,
        against: NullReference = "rest",
    ) -> np.ndarray:
        """Null E-distances for groups of ``size`` cells.

        Parameters
        ----------
        size
            Number of cells in each random control group.
        n_draws
            Number of random groups.
        rng
            Generator or seed; the draws are :func:`draw_control_subsets`.
        against
            ``"rest"``: each subset vs all remaining controls (the same estimator as a group
            vs all controls). ``"subset"``: each subset vs a disjoint random subset of the same
            size (the paper's null): ``2 * size`` cells are drawn, the first half vs the second.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_draws,)``.
        """
        if against == "rest":
            return self.vs_rest(draw_control_subsets(self.n_control, size, n_draws, rng))
        if against == "subset":
            drawn = draw_control_subsets(self.n_control, 2 * size, n_draws, rng)
            return self.vs_subset(drawn[:, :size], drawn[:, size:])
        raise ValueError(f"against must be 'rest' or 'subset', got {against!r}")

    def _check_subsets(self, subsets: np.ndarray, max_size: int) -> np.ndarray:
        """Return ``subsets`` as int64 after checking shape, range and distinctness."""
        subsets = np.asarray(subsets)
        if subsets.ndim != 2 or not np.issubdtype(subsets.dtype, np.integer):
            raise ValueError(
                f"subsets must be a 2-D integer array (draws x cells), got {subsets.dtype} "
                f"array of shape {subsets.shape}"
            )
        if not 2 <= subsets.shape[1] <= max_size:
            raise ValueError(
                f"subsets need between 2 and {max_size} cells for {self.n_control} control "
                f"cells, got {subsets.shape[1]}"
            )
        if subsets.size and (subsets.min() < 0 or subsets.max() >= self.n_control):
            raise ValueError(f"subset indices must lie in [0, {self.n_control})")
        ordered = np.sort(subsets, axis=1)
        if (ordered[:, 1:] == ordered[:, :-1]).any():
            raise ValueError("a subset contains the same control cell twice")
        return subsets.astype(np.int64)

    def _batched(self, rows: np.ndarray, columns: np.ndarray | None, size: int) -> np.ndarray:
        """Sum of distances within each ``rows[k]`` (``columns=None``) or to ``columns[k]``."""
        step = rows_per_block(self.chunk_size, size)
        draws_per_batch = max(1, step // size)
        device = self.points.device
        totals = np.empty(rows.shape[0])
        for start, stop in row_blocks(rows.shape[0], draws_per_batch):
            first = self.points[torch.from_numpy(rows[start:stop]).to(device)]
            second = None if columns is None else self.points[torch.from_numpy(columns[start:stop]).to(device)]
            totals[start:stop] = batched_distance_totals(first, second, self.ground_distance, step).cpu().numpy()
        return totals


def control_null_edistance(
    Z_control: ArrayLike,
    sizes: int | list[int] | np.ndarray,
    n_draws: int,
    rng: np.random.Generator | int,
    *,
    metric: str = "edistance",
    against: NullReference = "rest",
    chunk_size: int | None = None,
) -> np.ndarray:
    """Null E-distances of random control groups, for each group size.

    For every size ``n`` in ``sizes``, draw ``n_draws`` random subsets ``S`` of ``n``
    control cells and compute the E-distance of ``S`` vs the remaining controls
    (``against="rest"``) or vs a disjoint random subset of ``n`` controls
    (``against="subset"``). See :class:`ControlNull` for how the control-control sums are
    reused so that each draw costs ``O(n^2 d)``.

    Parameters
    ----------
    Z_control
        Embedding of the control cells, cells x dimensions.
    sizes
        Group size(s); the sizes are processed in order with the same generator.
    n_draws
        Draws per size.
    rng
        Generator or seed.
    metric
        ``"edistance"`` or ``"cosine_edistance"``.
    against
        ``"rest"`` or ``"subset"`` (see :meth:`ControlNull.sample`).
    chunk_size
        Rows per block of distances.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(sizes), n_draws)``; row ``k`` holds the null values for ``sizes[k]``.
    """
    null = ControlNull(Z_control, metric=metric, chunk_size=chunk_size)
    generator = np.random.default_rng(rng)
    sizes = np.atleast_1d(np.asarray(sizes, dtype=np.int64))
    return np.stack([null.sample(int(size), n_draws, generator, against=against) for size in sizes])
