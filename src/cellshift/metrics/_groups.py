"""E-distances for a whole screen in one pass: every group vs a reference, or every pair.

A screen is one embedding matrix ``Z`` (cells x dimensions) and one label per cell (the
perturbation, or the control label). For group ``g`` with ``n_g`` cells and the reference
(control) cells ``R``, the E-distance needs three sums of distances:

- ``W_g = sum_{i != i' in g} d(z_i, z_i')`` (ordered pairs, diagonal excluded),
- ``C_g = sum_{i in g, j in R} d(z_i, z_j)``,
- ``W_R``, the same as ``W_g`` for the reference,

and then ``E_g = 2 C_g / (n_g n_R) - W_g / (n_g (n_g - 1)) - W_R / (n_R (n_R - 1))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ._edistance import edistance_from_sums
from ._pairwise import (
    augment_left,
    augment_right,
    euclidean_from_augmented,
    pairwise_distance_sums,
    prepare_points,
    row_blocks,
    rows_per_block,
)
from ._registry import get_edistance_metric
from ._validation import ArrayLike, as_points


@dataclass(frozen=True)
class GroupDistanceSums:
    """Distance sums for the E-distance of every group against the reference group.

    Attributes
    ----------
    groups
        Group labels, sorted, reference excluded.
    sizes
        Number of cells per group.
    within
        ``W_g``: sum of ``d`` over ordered pairs of distinct cells of each group.
    cross
        ``C_g``: sum of ``d`` between each group's cells and the reference cells.
    reference_label
        Label of the reference (control) cells.
    reference_size
        Number of reference cells ``n_R``.
    reference_within
        ``W_R``: sum of ``d`` over ordered pairs of distinct reference cells.
    metric
        ``"edistance"`` (Euclidean ``d``) or ``"cosine_edistance"`` (``d = 1 - cosine``).
    """

    groups: np.ndarray
    sizes: np.ndarray
    within: np.ndarray
    cross: np.ndarray
    reference_label: object
    reference_size: int
    reference_within: float
    metric: str

    def edistance(self) -> pd.Series:
        """E-distance of each group vs the reference, indexed by group label."""
        values = edistance_from_sums(self.cross, self.within, self.reference_within, self.sizes, self.reference_size)
        return pd.Series(np.atleast_1d(values), index=pd.Index(self.groups, name="group"), name=self.metric)


def encode_labels(labels: ArrayLike, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(names, codes)``: sorted unique labels and each cell's index into them.

    Raises
    ------
    ValueError
        If ``labels`` is not 1-D with one label per row of ``Z``.
    """
    values = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if values.ndim != 1 or values.shape[0] != n_rows:
        raise ValueError(f"labels must be 1-D with one label per row of Z ({n_rows}), got shape {values.shape}")
    names, codes = np.unique(values, return_inverse=True)
    return names, codes.reshape(-1)


def check_group_sizes(names: np.ndarray, sizes: np.ndarray) -> None:
    """Raise a ``ValueError`` naming the groups with fewer than 2 cells."""
    small = names[sizes < 2]
    if small.size:
        shown = ", ".join(str(name) for name in small[:10])
        more = f" and {small.size - 10} more" if small.size > 10 else ""
        raise ValueError(f"E-distance needs at least 2 cells per group; groups with fewer: {shown}{more}")


def group_distance_sums(
    Z: ArrayLike,
    labels: ArrayLike,
    reference_label: object,
    *,
    metric: str = "edistance",
    chunk_size: int | None = None,
) -> GroupDistanceSums:
    """Compute the distance sums for the E-distance of every group vs the reference, in one pass.

    Parameters
    ----------
    Z
        Embedding, cells x dimensions (numpy array or torch tensor; tensors stay on their
        device).
    labels
        One group label per cell (integers or strings).
    reference_label
        Label of the reference (control) cells.
    metric
        ``"edistance"`` or ``"cosine_edistance"``.
    chunk_size
        Rows per block of distances (see :func:`cellshift.metrics.pairwise_distance_sums`).

    Returns
    -------
    GroupDistanceSums
        The sums; ``.edistance()`` turns them into E-distances.

    Raises
    ------
    ValueError
        If ``reference_label`` is absent, a group or the reference has fewer than 2 cells,
        ``labels`` does not match ``Z``, or ``Z`` is invalid.

    Notes
    -----
    With ``n_R`` reference cells and ``n_P`` other cells: time
    ``O((n_P n_R + n_R^2 + sum_g n_g^2) d)``, memory ``O(chunk_size * n_R)`` beyond ``Z``.
    """
    ground = get_edistance_metric(metric).ground_distance
    z = prepare_points(as_points(Z, "Z"), ground, "Z")
    names, codes = encode_labels(labels, z.shape[0])
    matches = np.flatnonzero(names == reference_label)
    if matches.size == 0:
        raise ValueError(f"reference label {reference_label!r} not found in labels")
    reference = int(matches[0])
    sizes = np.bincount(codes, minlength=names.size)
    check_group_sizes(names, sizes)

    is_reference = codes == reference
    reference_points = z[torch.from_numpy(np.flatnonzero(is_reference)).to(z.device)]
    reference_within = pairwise_distance_sums(reference_points, metric=ground, chunk_size=chunk_size).sum()

    others = np.flatnonzero(~is_reference)
    other_rows = pairwise_distance_sums(
        z[torch.from_numpy(others).to(z.device)],
        reference_points,
        metric=ground,
        chunk_size=chunk_size,
    )
    cross = np.bincount(codes[others], weights=other_rows.cpu().numpy(), minlength=names.size)

    within = np.zeros(names.size)
    order = np.argsort(codes, kind="stable")
    stops = np.cumsum(sizes)
    for group in range(names.size):
        if group == reference:
            continue
        members = torch.from_numpy(order[stops[group] - sizes[group] : stops[group]])
        within[group] = float(
            pairwise_distance_sums(z[members.to(z.device)], metric=ground, chunk_size=chunk_size).sum()
        )

    keep = np.arange(names.size) != reference
    return GroupDistanceSums(
        groups=names[keep],
        sizes=sizes[keep],
        within=within[keep],
        cross=cross[keep],
        reference_label=names[reference],
        reference_size=int(sizes[reference]),
        reference_within=float(reference_within),
        metric=metric,
    )


def group_vs_reference_edistance(
    Z: ArrayLike,
    labels: ArrayLike,
    reference_label: object,
    *,
    metric: str = "edistance",
    chunk_size: int | None = None,
) -> pd.Series:
    """E-distance of every group vs all reference (control) cells, in one pass.

    ``E_g = 2 mean_{i in g, j in R} d - mean_{i != i' in g} d - mean_{j != j' in R} d``

    Parameters
    ----------
    Z, labels, reference_label, metric, chunk_size
        See :func:`group_distance_sums`.

    Returns
    -------
    pandas.Series
        E-distance per group (reference excluded), indexed by group label, named ``metric``.
    """
    sums = group_distance_sums(Z, labels, reference_label, metric=metric, chunk_size=chunk_size)
    return sums.edistance()


def pairwise_group_edistance(
    Z: ArrayLike,
    labels: ArrayLike,
    *,
    metric: str = "edistance",
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """E-distance between every pair of groups (e.g. perturbation vs perturbation).

    Entry ``(g, h)`` is ``2 S_gh / (n_g n_h) - S_gg / (n_g (n_g - 1)) - S_hh / (n_h (n_h - 1))``
    with ``S_gh`` the sum of distances between the cells of ``g`` and ``h`` (for ``g = h``,
    over ordered pairs of distinct cells). The diagonal is set to 0: a group compared with
    itself is not a two-sample comparison (the U-statistic formula would give
    ``-(2 / n_g) mean_{i != i'} d``).

    Parameters
    ----------
    Z
        Embedding, cells x dimensions.
    labels
        One group label per cell; every group needs at least 2 cells.
    metric
        ``"edistance"`` or ``"cosine_edistance"``.
    chunk_size
        Rows of ``Z`` per block; a block holds ``chunk_size x len(Z)`` distances.

    Returns
    -------
    pandas.DataFrame
        Symmetric ``G x G`` matrix, rows and columns indexed by the sorted group labels.

    Notes
    -----
    Euclidean: time ``O(n^2 d)`` for ``n`` cells, memory ``O(chunk_size * n + G^2)`` beyond
    ``Z``. Cosine: time ``O(n d + G^2 d)`` (see :func:`group_pair_distance_sums`).
    """
    ground = get_edistance_metric(metric).ground_distance
    z = prepare_points(as_points(Z, "Z"), ground, "Z")
    names, codes = encode_labels(labels, z.shape[0])
    sizes = np.bincount(codes, minlength=names.size)
    check_group_sizes(names, sizes)

    group_of = torch.from_numpy(codes).to(z.device)
    sums = group_pair_distance_sums(z, group_of, names.size, ground, chunk_size)
    sums_np = sums.cpu().numpy()
    within = np.diag(sums_np)
    values = edistance_from_sums(sums_np, within[:, None], within[None, :], sizes[:, None], sizes[None, :])
    values = (values + values.T) / 2.0  # equal in exact arithmetic; removes rounding asymmetry
    np.fill_diagonal(values, 0.0)
    index = pd.Index(names, name="group")
    return pd.DataFrame(values, index=index, columns=index)


def group_pair_distance_sums(
    z: torch.Tensor, group_of: torch.Tensor, n_groups: int, ground: str, chunk_size: int | None
) -> torch.Tensor:
    """``S_gh``: sum of distances between the cells of groups ``g`` and ``h`` (``G x G``, float64).

    The diagonal sums over ordered pairs of distinct cells. ``z`` holds prepared points
    (:func:`prepare_points`), ``group_of`` each cell's group index. Cosine distance on unit
    rows is linear in each point, so with group sums ``s_g = sum_{i in g} z_i``:
    ``S_gh = n_g n_h - s_g . s_h`` and ``S_gg = n_g (n_g - 1) - |s_g|^2 + sum_{i in g} |z_i|^2``.
    """
    if ground == "cosine":
        group_sums = torch.zeros(n_groups, z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, group_of, z)
        sizes = torch.bincount(group_of, minlength=n_groups).to(z.dtype)
        self_terms = torch.zeros(n_groups, dtype=z.dtype, device=z.device).index_add_(0, group_of, (z * z).sum(1))
        sums = torch.outer(sizes, sizes) - group_sums @ group_sums.T
        sums.diagonal().add_(self_terms - sizes)
        return sums
    sums = torch.zeros(n_groups, n_groups, dtype=torch.float64, device=z.device)
    z_augmented = augment_right(z)
    for start, stop in row_blocks(z.shape[0], rows_per_block(chunk_size, z.shape[0])):
        block = euclidean_from_augmented(augment_left(z[start:stop]), z_augmented)
        block.diagonal(offset=start).zero_()
        by_column_group = torch.zeros(stop - start, n_groups, dtype=torch.float64, device=z.device).index_add_(
            1, group_of, block
        )
        sums.index_add_(0, group_of[start:stop], by_column_group)
    return sums
