"""Distances between groups of cells: E-distance, cosine E-distance, Wasserstein, nulls.

Pure array code (numpy arrays or torch tensors, cells x dimensions); no AnnData here.
Distances are computed in float64 with torch, in row blocks, on the device of the inputs.

- Two samples: :func:`edistance`, :func:`cosine_edistance`, :func:`wasserstein`, or a metric
  object from :data:`METRICS` / :func:`get_metric`.
- A screen in one pass: :func:`group_vs_reference_edistance` (every group vs all controls),
  :func:`pairwise_group_edistance` (every pair of groups).
- Null of random control groups: :func:`control_null_edistance`, :class:`ControlNull`.
- Exact permutation sd of the E-statistic (no draws): :class:`ReferencePieces`,
  :func:`group_permutation_sds`, :func:`edistance_permutation_sd`.
- Threads: :func:`threads_for_small_ops` (no more torch CPU threads than other programs leave free).
- Building blocks: :func:`pairwise_distance_sums`, :func:`pairwise_distances`,
  :func:`edistance_from_sums`, :func:`wasserstein_from_cost`.
"""

from ._edistance import cosine_edistance, edistance, edistance_from_sums
from ._groups import (
    GroupDistanceSums,
    group_distance_sums,
    group_vs_reference_edistance,
    pairwise_group_edistance,
)
from ._null import ControlNull, control_null_edistance, draw_control_subsets
from ._pairwise import pairwise_distance_sums, pairwise_distances
from ._permutation import ReferencePieces, edistance_permutation_sd, group_permutation_sds
from ._registry import METRICS, CosineEDistance, EDistance, Wasserstein, get_metric
from ._threads import threads_for_small_ops
from ._wasserstein import wasserstein, wasserstein_from_cost

__all__ = [
    "METRICS",
    "ReferencePieces",
    "edistance_permutation_sd",
    "group_permutation_sds",
    "ControlNull",
    "CosineEDistance",
    "EDistance",
    "GroupDistanceSums",
    "Wasserstein",
    "control_null_edistance",
    "cosine_edistance",
    "draw_control_subsets",
    "edistance",
    "edistance_from_sums",
    "get_metric",
    "group_distance_sums",
    "group_vs_reference_edistance",
    "pairwise_distance_sums",
    "pairwise_distances",
    "pairwise_group_edistance",
    "threads_for_small_ops",
    "wasserstein",
    "wasserstein_from_cost",
]
