"""One class per distance metric, and a registry to look them up by name."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ._edistance import ArrayOrFloat, edistance_from_sums, edistance_with
from ._pairwise import GroundDistance
from ._validation import ArrayLike
from ._wasserstein import DEFAULT_MAX_PAIRS, wasserstein, wasserstein_from_cost


class DistanceMetric(Protocol):
    """What every metric offers: a ``name`` and ``metric(X, Y) -> float``."""

    name: str

    def __call__(self, X: ArrayLike, Y: ArrayLike) -> float:
        """Distance between samples ``X`` and ``Y`` (cells x dimensions)."""
        ...


class EDistance:
    """E-distance with Euclidean ground distance; see :func:`cellshift.metrics.edistance`.

    ``E = 2 * mean d(x, y) - mean_{x != x'} d(x, x') - mean_{y != y'} d(y, y')``

    Parameters
    ----------
    chunk_size
        Rows per block of distances (see :func:`cellshift.metrics.pairwise_distance_sums`).
    """

    name = "edistance"
    ground_distance: GroundDistance = "euclidean"

    def __init__(self, chunk_size: int | None = None) -> None:
        self.chunk_size = chunk_size

    def __call__(self, X: ArrayLike, Y: ArrayLike) -> float:
        """E-distance between samples ``X`` and ``Y``."""
        return edistance_with(X, Y, self.ground_distance, self.chunk_size)

    @staticmethod
    def from_sums(
        cross_sum: ArrayOrFloat,
        within_x_sum: ArrayOrFloat,
        within_y_sum: ArrayOrFloat,
        n_x: ArrayOrFloat,
        n_y: ArrayOrFloat,
    ) -> ArrayOrFloat:
        """E-distance from precomputed sums; see :func:`cellshift.metrics.edistance_from_sums`."""
        return edistance_from_sums(cross_sum, within_x_sum, within_y_sum, n_x, n_y)


class CosineEDistance(EDistance):
    """E-distance with cosine ground distance ``d = 1 - cosine similarity``.

    See :func:`cellshift.metrics.cosine_edistance`.
    """

    name = "cosine_edistance"
    ground_distance: GroundDistance = "cosine"


class Wasserstein:
    """Exact 1-Wasserstein distance, Euclidean ground cost.

    See :func:`cellshift.metrics.wasserstein`.

    Parameters
    ----------
    max_pairs
        Largest ``len(X) * len(Y)`` accepted when the sizes differ.
    """

    name = "wasserstein"

    def __init__(self, max_pairs: int = DEFAULT_MAX_PAIRS) -> None:
        self.max_pairs = max_pairs

    def __call__(self, X: ArrayLike, Y: ArrayLike) -> float:
        """1-Wasserstein distance between samples ``X`` and ``Y``."""
        return wasserstein(X, Y, max_pairs=self.max_pairs)

    def from_cost(self, cost: np.ndarray) -> float:
        """Optimal transport cost from a precomputed ``len(X) x len(Y)`` cost matrix."""
        return wasserstein_from_cost(cost, max_pairs=self.max_pairs)


METRICS: dict[str, DistanceMetric] = {metric.name: metric for metric in (EDistance(), CosineEDistance(), Wasserstein())}


def get_metric(name: str) -> DistanceMetric:
    """Return the registered metric called ``name``.

    Raises
    ------
    ValueError
        If no metric has that name; the message lists the valid names.
    """
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(sorted(METRICS))}")
    return METRICS[name]


def get_edistance_metric(name: str) -> EDistance:
    """Return the registered E-distance metric called ``name`` (for the group engine).

    Raises
    ------
    ValueError
        If ``name`` is unknown or not an E-distance.
    """
    metric = get_metric(name)
    if not isinstance(metric, EDistance):
        valid = sorted(key for key, value in METRICS.items() if isinstance(value, EDistance))
        raise ValueError(f"metric {name!r} cannot be computed from distance sums; use one of: {', '.join(valid)}")
    return metric
