"""From null draws to z-scores and p-values, and the size grid that lets one null serve many groups.

A group of ``n`` cells is calibrated against null draws of size ``s = size_bucket(n)``, a point of
the geometric grid ``round(r^k)`` with ``r = BUCKET_RATIO``. Every statistic ends on the z scale
(an exact permutation standardisation for E-distances against all controls, ``(D - mean_null) /
sd_null`` otherwise, :func:`standardise`) and gets its p-value from null draws on the same scale,
with a fitted tail past the draws' floor (:func:`pvalue`), and a Benjamini-Hochberg FDR.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

BUCKET_RATIO = 1.25
MIN_EXCEEDANCES = 10


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


def standardise(value: float, null: np.ndarray) -> tuple[float, np.ndarray]:
    """``z = (D - mean(null)) / sd(null)`` (``ddof=1``) and the null on the same scale (NaN z without spread)."""
    spread = null.std(ddof=1)
    if not spread > 0:
        return float("nan"), np.zeros_like(null)
    return float((value - null.mean()) / spread), (null - null.mean()) / spread


def pvalue(z: float, standardised_null: np.ndarray) -> tuple[float, str]:
    """One-sided p-value of ``z`` against null draws on the z scale, past the draw floor where needed.

    With ``k`` draws ``>= z`` out of ``B``: ``p = (k + 1) / (B + 1)`` when ``k >= MIN_EXCEEDANCES``
    (source ``"draws"``). Further out the draws only bound ``p`` by ``1 / (B + 1)``, so the tail
    is taken from a Pearson type III curve (a gamma distribution shifted and scaled to the draws'
    mean 0, variance 1 and skewness ``g``: shape ``4 / g^2``), the usual approximation of the
    permutation distribution of a quadratic statistic (source ``"tail fit"``); a normal tail when
    the draws are not right-skewed (``g < 0.05``).

    Returns
    -------
    tuple
        ``(p, source)``; ``(nan, "none")`` for a NaN ``z``.
    """
    if not np.isfinite(z):
        return float("nan"), "none"
    exceed = int(np.sum(standardised_null >= z))
    if exceed >= MIN_EXCEEDANCES:
        return float((exceed + 1) / (standardised_null.size + 1)), "draws"
    skewness = float(stats.skew(standardised_null, bias=False))
    if skewness < 0.05:
        return float(stats.norm.sf(z)), "tail fit"
    shape, scale = 4.0 / skewness**2, skewness / 2.0
    return float(stats.gamma.sf(z / scale + shape, shape)), "tail fit"


def add_scores(
    table: pd.DataFrame, metric: str, values: Sequence[float], zs: Sequence[float], nulls: Sequence[np.ndarray]
) -> None:
    """Add ``<metric>, _z, _pvalue, _pvalue_source, _fdr``: each z against its own standardised null draws.

    ``_fdr`` is the Benjamini-Hochberg adjusted p-value over the rows of ``table``.
    """
    scores = [pvalue(z, null) for z, null in zip(zs, nulls, strict=True)]
    table[metric] = values
    table[f"{metric}_z"] = list(zs)
    table[f"{metric}_pvalue"] = [p for p, _ in scores]
    table[f"{metric}_pvalue_source"] = [source for _, source in scores]
    table[f"{metric}_fdr"] = benjamini_hochberg(table[f"{metric}_pvalue"].to_numpy())


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN): ``min_{j >= i} p_(j) m / j``, capped at 1."""
    adjusted = np.full(pvalues.shape, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        adjusted[finite] = stats.false_discovery_control(pvalues[finite], method="bh")
    return adjusted


def standardised_nulls(nulls: pd.DataFrame, metric: str) -> np.ndarray:
    """Null draws of ``metric`` on the z scale, pooled over sizes.

    ``nulls`` is the second table of ``score_perturbations(..., return_nulls=True)``: its ``z``
    column holds each draw as the p-values read it (for E-distances against all controls, the
    draw over its exact permutation sd). Tables without it are standardised within their size,
    ``(v - mean) / sd`` (``ddof=1``). On this scale every perturbation's ``<metric>_z`` can be
    compared with one pooled null.
    """
    rows = nulls[nulls["metric"] == metric]
    if rows.empty:
        raise KeyError(f"no null draws of metric {metric!r}; metrics: {sorted(nulls['metric'].unique())}")
    if "z" in rows.columns:
        return rows["z"].to_numpy()
    grouped = rows.groupby("null_size")["value"]
    return ((rows["value"] - grouped.transform("mean")) / grouped.transform("std")).to_numpy()
