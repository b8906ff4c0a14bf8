"""Before any forward pass: which genes can be perturbed in which cells, and how many passes that costs."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import sparse

from cellshift.tasks.cell_tokens import CellSource
from cellshift.tasks.perturbation_ops import INSERTING, gene_region

MAX_COMBINATIONS = 1_000_000


def presence_matrix(source: CellSource, rows: np.ndarray) -> sparse.csc_matrix:
    """Cells (``rows``) x vocabulary, True where the cell's gene tokens hold the gene."""
    special = source.cells.collate.keeps_eos
    cell_index, tokens = [], []
    for i, row in enumerate(rows):
        ids, _ = source.cell_tokens(int(row))
        genes = ids[gene_region(len(ids), special)]
        cell_index.append(np.full(len(genes), i))
        tokens.append(genes)
    cell_index, tokens = np.concatenate(cell_index), np.concatenate(tokens).astype(np.int64)
    n_columns = int(tokens.max(initial=0)) + 1
    data = np.ones(len(tokens), dtype=bool)
    return sparse.csc_matrix((data, (cell_index, tokens)), shape=(len(rows), n_columns))


def expressed_genes(presence: sparse.csc_matrix) -> np.ndarray:
    """Tokens expressed in at least one of the cells, ascending."""
    return np.flatnonzero(np.asarray(presence.sum(axis=0)).ravel() > 0)


def cells_per_gene(presence: sparse.csc_matrix, tokens: list[int]) -> np.ndarray:
    """Number of cells expressing each token (0 for a token outside the matrix)."""
    counts = np.asarray(presence.sum(axis=0)).ravel()
    return np.array([counts[t] if t < len(counts) else 0 for t in tokens], dtype=np.int64)


def plan_perturbations(
    genes: dict[str, int], presence: sparse.csc_matrix, operation: str, combos: int
) -> tuple[list[tuple[str, tuple[int, ...]]], pd.DataFrame, np.ndarray]:
    """The perturbations to run: single genes or every combination of ``combos`` genes.

    A gene no chosen cell expresses is skipped (reported) unless the operation inserts genes.
    A combination needs at least one cell where it applies (all of its genes, unless inserting).

    Returns
    -------
    perturbations : list
        ``(label, tokens)``; a combination's label joins its genes with ``+``.
    skipped : pandas.DataFrame
        ``gene, reason``.
    n_cells : numpy.ndarray
        Cells where each perturbation applies.
    """
    names, tokens = list(genes), list(genes.values())
    expressed = cells_per_gene(presence, tokens)
    inserting = operation in INSERTING
    kept = [(n, t) for n, t, e in zip(names, tokens, expressed, strict=True) if e > 0 or inserting]
    not_expressed = [n for n, e in zip(names, expressed, strict=True) if e == 0 and not inserting]
    skipped = pd.DataFrame({"gene": not_expressed, "reason": "not expressed in the chosen cells"})
    n_combinations = math.comb(len(kept), combos)
    if n_combinations > MAX_COMBINATIONS:
        raise ValueError(
            f"{len(kept)} genes in combinations of {combos} make {n_combinations:,} perturbations; "
            "choose fewer genes or smaller combinations"
        )
    perturbations, n_cells = [], []
    for group in combinations(kept, combos):
        group_tokens = tuple(t for _, t in group)
        applies = presence.shape[0] if inserting else _cells_with_all(presence, group_tokens)
        if applies > 0:
            perturbations.append(("+".join(n for n, _ in group), group_tokens))
            n_cells.append(applies)
    return perturbations, skipped, np.asarray(n_cells, dtype=np.int64)


def _cells_with_all(presence: sparse.csc_matrix, tokens: tuple[int, ...]) -> int:
    """Number of cells expressing every one of ``tokens``."""
    if max(tokens) >= presence.shape[1]:
        return 0
    columns = presence[:, list(tokens)].toarray()
    return int(columns.all(axis=1).sum())


def check_passes(n_cells: np.ndarray, n_rows: int, n_null: int, extra: int, max_passes: int) -> int:
    """Sequences to encode (each cell once, ``1 + n_null`` per perturbed cell); refuse more than ``max_passes``.

    Parameters
    ----------
    n_cells
        Cells where each perturbation applies.
    n_rows
        Chosen cells (each encoded unperturbed once per chunk of perturbations).
    n_null
        Null draws per perturbed cell.
    extra
        Other sequences (cells of the goal and alternative states).
    max_passes
        The most sequences the user allows.

    Returns
    -------
    int
        The estimate.
    """
    estimate = int(n_cells.sum()) * (1 + n_null) + n_rows + extra
    if estimate > max_passes:
        raise ValueError(
            f"this run would encode about {estimate:,} sequences (cells x perturbations x (1 + {n_null} null draws)), "
            f"more than max_passes = {max_passes:,}; raise --max-passes, or choose fewer genes, cells or combinations"
        )
    return estimate
