"""What makes a perturbation's shift "large": random genes of the same expression rank, perturbed the same way.

Deleting a highly ranked gene moves any cell embedding more than deleting a lowly ranked one,
whatever the gene; a gene's shift means something only against genes of the same rank. For each
cell and each perturbed gene at rank position ``p`` of ``n`` gene tokens, a null draw picks a
random other gene of the cell within ``p +- max(2, round(window * n))`` (never a gene of the tested
list; the whole cell when the window holds none) and applies the same operation to it. A gene the
cell lacks (over-expression inserts it) is matched with a random gene the cell also lacks, from the
genes the data expresses.

Per perturbation, its per-cell shifts are compared with its null draws' shifts by the two-sided
Wilcoxon rank-sum (Mann-Whitney U) test, and the p-values of all perturbations are adjusted by
Benjamini-Hochberg (FDR); Geneformer's perturber tests the same way against random genes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

MIN_WINDOW = 2


def draw_null_genes(
    cell_genes: np.ndarray,
    perturbed: tuple[int, ...],
    rng: np.random.Generator,
    *,
    excluded: np.ndarray,
    absent_pool: np.ndarray,
    window: float = 0.05,
) -> tuple[int, ...] | None:
    """Random genes matched by rank to each perturbed gene of one cell (see the module docstring).

    Parameters
    ----------
    cell_genes
        The cell's gene tokens in rank order (no special tokens).
    perturbed
        The perturbed genes' tokens.
    rng
        The generator of this cell and perturbation.
    excluded
        Tokens never drawn (the tested genes).
    absent_pool
        Tokens expressed in the data, to match a gene the cell lacks.
    window
        Half-width of the rank window, as a fraction of the cell's gene tokens.

    Returns
    -------
    tuple of int or None
        One null token per perturbed gene; ``None`` when the cell has no gene left to draw.
    """
    n = len(cell_genes)
    half_width = max(MIN_WINDOW, round(window * n))
    allowed = ~np.isin(cell_genes, excluded)
    chosen: list[int] = []
    for gene in perturbed:
        where = np.flatnonzero(cell_genes == gene)
        if len(where) == 0:
            unavailable = np.concatenate([cell_genes, excluded, chosen])
            pool = absent_pool[~np.isin(absent_pool, unavailable)]
        else:
            position = int(where[0])
            near = np.zeros(n, dtype=bool)
            near[max(0, position - half_width) : position + half_width + 1] = True
            free = allowed & ~np.isin(cell_genes, chosen)
            pool = cell_genes[near & free] if (near & free).any() else cell_genes[free]
        if len(pool) == 0:
            return None
        chosen.append(int(rng.choice(pool)))
    return tuple(chosen)


def summarise_shifts(per_cell: pd.DataFrame, measures: list[str]) -> pd.DataFrame:
    """Per perturbation: mean, spread and cells of each measure, and its test against the null draws.

    Parameters
    ----------
    per_cell
        One row per cell, perturbation and draw: ``perturbation, draw`` (0 = tested genes,
        >= 1 = null draw) and the measure columns.
    measures
        Columns to summarise (e.g. ``cosine_shift``, ``goal_shift``).

    Returns
    -------
    pandas.DataFrame
        Indexed by perturbation: ``n_cells``, and per measure ``<m>_mean, <m>_sd, <m>_null_mean,
        <m>_pvalue, <m>_fdr`` (NaN p-values when there are no null draws).
    """
    tested = per_cell[per_cell["draw"] == 0].groupby("perturbation")
    null = per_cell[per_cell["draw"] > 0].groupby("perturbation")
    table = pd.DataFrame({"n_cells": tested.size()})
    for measure in measures:
        table[f"{measure}_mean"] = tested[measure].mean()
        table[f"{measure}_sd"] = tested[measure].std(ddof=1)
        table[f"{measure}_null_mean"] = null[measure].mean()
        pvalues = {}
        for perturbation, rows in tested:
            background = per_cell.loc[null.groups.get(perturbation, []), measure] if len(null) else []
            pvalues[perturbation] = rank_sum_pvalue(rows[measure].to_numpy(), np.asarray(background))
        table[f"{measure}_pvalue"] = pd.Series(pvalues)
        table[f"{measure}_fdr"] = benjamini_hochberg(table[f"{measure}_pvalue"].to_numpy())
    return table


def rank_sum_pvalue(values: np.ndarray, background: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value of ``values`` against ``background``; NaN when either is empty."""
    values, background = values[np.isfinite(values)], background[np.isfinite(background)]
    if len(values) == 0 or len(background) == 0:
        return float("nan")
    return float(stats.mannwhitneyu(values, background, alternative="two-sided").pvalue)


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN entries stay NaN and are not counted."""
    adjusted = np.full(len(pvalues), np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        adjusted[finite] = stats.false_discovery_control(pvalues[finite], method="bh")
    return adjusted
