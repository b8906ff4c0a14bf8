"""From null draws to z-scores and p-values, and the size grid that lets one null serve many groups.

A group of ``n`` cells is calibrated against null draws of size ``s = size_bucket(n)``, a point of
the geometric grid ``round(r^k)`` with ``r = BUCKET_RATIO``; E-distance draws are rescaled to the
group's own size by :func:`size_scale`. Then ``z = (D - mean_null) / sd_null`` and the empirical
p-value ``(k + 1) / (n_null + 1)`` (:func:`z_and_pvalue`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

BUCKET_RATIO = 1.25


def size_bucket(n: int, ratio: float = BUCKET_RATIO) -> int:
    """Null group size serving groups of ``n`` cells: ``round(ratio^round(log(n) / log(ratio)))``, at least 2."""
    return max(2, int(round(ratio ** round(np.log(n) / np.log(ratio)))))


def size_bucket_below(n: int, ratio: float = BUCKET_RATIO) -> int:
    """Largest grid size not above ``n``: ``round(ratio^floor(log(n) / log(ratio)))``, capped at ``n``, at least 2."""
    grid = int(round(ratio ** np.floor(np.log(n) / np.log(ratio) + 1e-12)))
    return max(2, min(grid, n))


def size_scale(n: float, m: float, s: float, t: float) -> float:
    """``(1/n + 1/m) / (1/s + 1/t)``: E-distance null spread of sizes ``(n, m)`` over that of ``(s, t)``."""
    return (1.0 / n + 1.0 / m) / (1.0 / s + 1.0 / t)


def z_and_pvalue(value: float, null: np.ndarray) -> tuple[float, float]:
    """Return ``z = (D - mean(null)) / sd(null)`` (``ddof=1``) and ``p = (k + 1) / (len(null) + 1)``.

    ``k`` counts the null values ``>= D``; ``z`` is NaN when the null has no spread.
    """
    spread = null.std(ddof=1)
    z = (value - null.mean()) / spread if spread > 0 else np.nan
    return float(z), float((np.sum(null >= value) + 1) / (null.size + 1))


def add_scores(table: pd.DataFrame, metric: str, values: Sequence[float], nulls: Sequence[np.ndarray]) -> None:
    """Add columns ``<metric>, <metric>_z, <metric>_pvalue``: each value against its own null."""
    scores = [z_and_pvalue(value, null) for value, null in zip(values, nulls, strict=True)]
    table[metric] = values
    table[f"{metric}_z"] = [z for z, _ in scores]
    table[f"{metric}_pvalue"] = [p for _, p in scores]


def standardised_nulls(nulls: pd.DataFrame, metric: str) -> np.ndarray:
    """Null draws of ``metric`` as z-scores within their size, ``(v - mean) / sd`` (``ddof=1``), pooled.

    ``nulls`` is the second table of ``score_perturbations(..., return_nulls=True)``. On this
    scale every perturbation's ``<metric>_z`` can be compared with one pooled null.
    """
    rows = nulls[nulls["metric"] == metric]
    if rows.empty:
        raise KeyError(f"no null draws of metric {metric!r}; metrics: {sorted(nulls['metric'].unique())}")
    grouped = rows.groupby("null_size")["value"]
    return ((rows["value"] - grouped.transform("mean")) / grouped.transform("std")).to_numpy()
