"""Co-expression gene pairs from a corpus, streamed in blocks of cells (GeneCompass's co-expression prior).

GeneCompass links two genes when the Pearson correlation of their expression over the cells
where both are expressed is at least 0.8, then embeds the graph of those pairs. Here, on
``x_cg = log1p(1e4 c_cg / T_c)`` (see :mod:`cellshift.priors.cells`):

1. panel: count the cells expressing each gene (``x_cg > 0``); keep genes expressed in at least
   ``min_cells`` cells, the ``max_genes`` most often expressed (ties by name);
2. accumulate over blocks of cells, with ``X`` the block's values on the panel and ``E`` its
   indicator ``x > 0`` (sparse products, genes x genes dense accumulators):
   ``N = E^T E`` (co-expressing cells), ``S = X^T E`` (``S_ij``: sum of ``x_i`` over cells
   expressing both ``i`` and ``j``), ``Q = (X o X)^T E`` (sum of ``x_i^2`` likewise) and
   ``P = X^T X`` (sum of ``x_i x_j``), and the number of cells ``n_all``;
3. for each pair ``i < j`` with ``N_ij >= min_cells`` co-expressing cells, the correlation over

   - ``cells="expressed"`` (GeneCompass), the ``n = N_ij`` cells expressing both:
     ``r_ij = (n P_ij - S_ij S_ji) / sqrt((n Q_ij - S_ij^2) (n Q_ji - S_ji^2))``
     (``S_ji`` is the sum of ``x_j`` over the same cells);
   - ``cells="all"``, every cell (zeros included), with ``s_i = S_ii`` and ``q_i = Q_ii`` the
     sums over all cells: ``r_ij = (n_all P_ij - s_i s_j) / sqrt((n_all q_i - s_i^2) (n_all q_j - s_j^2))``;

   and keep pairs with ``r_ij >= min_correlation``.

Why ``all`` is the default: on sparse UMI data most expressing cells hold 1-2 counts, so over the
cells expressing both genes ``x = log1p(1e4 / T_c)`` follows the cell's depth ``T_c`` and
unrelated genes correlate through it. On the bundled Kang PBMCs (8,684 cells, 2,511 genes)
``expressed`` gives 580,272 pairs at 0.8 among 2,142 genes, and they share an HGNC group no more
often than random pairs (0.74% vs 0.83%); ``all`` gives 16 pairs at 0.8 (13 genes) and 1,319 at 0.5
(138 genes), 12.5% and 13.6% of them within a group (``benchmarks/results/priors.md``).

Memory: the cells of one block plus four panel x panel float64 matrices
(``32 * max_genes^2`` bytes: 512 MB at 4,000 genes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from tqdm.auto import tqdm

from cellshift.priors.cells import expression_blocks


@dataclass(frozen=True)
class CoexpressionPairs:
    """The co-expression pairs of a corpus and what they were computed from.

    Attributes
    ----------
    edges
        Columns ``source``, ``target`` (gene names as in the corpus), ``correlation``, ``n_cells``.
    panel
        Genes whose pairs were tested.
    n_cells
        Cells read.
    """

    edges: pd.DataFrame
    panel: pd.Index
    n_cells: int


class CoexpressionSums:
    """Running sums ``N, S, Q, P`` (step 2 of the module docstring) over blocks of cells on a gene panel."""

    def __init__(self, panel: pd.Index):
        self.panel = pd.Index(panel, dtype=str)
        size = (len(self.panel), len(self.panel))
        self.n, self.sums, self.squares, self.products = (np.zeros(size) for _ in range(4))
        self.n_cells = 0

    def add(self, genes: pd.Index, block: sparse.csr_matrix) -> None:
        """Add a cells x ``genes`` block of values (genes outside the panel are ignored)."""
        positions = self.panel.get_indexer(genes)
        inside = np.flatnonzero(positions >= 0)
        # cells x panel: column positions[k] of the result takes block column k
        selection = sparse.csr_matrix(
            (np.ones(len(inside)), (inside, positions[inside])), shape=(len(genes), len(self.panel))
        )
        values = (block @ selection).tocsr()
        values.eliminate_zeros()
        expressed = values.copy()
        expressed.data[:] = 1.0
        squared = values.multiply(values).tocsr()
        self.n += (expressed.T @ expressed).toarray()
        self.sums += (values.T @ expressed).toarray()
        self.squares += (squared.T @ expressed).toarray()
        self.products += (values.T @ values).toarray()
        self.n_cells += block.shape[0]

    def correlation(self, min_cells: int, cells: str = "all") -> np.ndarray:
        """Panel x panel Pearson correlation over ``cells`` (step 3); NaN below ``min_cells`` co-expressing cells.

        Pairs without variance in either gene are NaN too.
        """
        if cells == "expressed":
            n, sums, squares = self.n, self.sums, self.squares
        elif cells == "all":
            n, sums, squares = float(self.n_cells), np.diag(self.sums)[:, None], np.diag(self.squares)[:, None]
        else:
            raise ValueError(f"unknown cells {cells!r} for co-expression; choose 'all' or 'expressed'")
        covariance = n * self.products - sums * sums.T
        variance = n * squares - sums**2
        denominator = np.sqrt(np.clip(variance, 0.0, None) * np.clip(variance.T, 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            correlation = covariance / denominator
        correlation[(self.n < min_cells) | ~(denominator > 0)] = np.nan
        return correlation

    def pairs(self, *, min_correlation: float, min_cells: int, cells: str = "all") -> pd.DataFrame:
        """Pairs ``i < j`` (panel order) with ``>= min_cells`` co-expressing cells and ``r >= min_correlation``."""
        correlation = self.correlation(min_cells, cells)
        first, second = np.nonzero(np.triu(correlation >= min_correlation, k=1))
        return pd.DataFrame(
            {
                "source": self.panel[first],
                "target": self.panel[second],
                "correlation": correlation[first, second],
                "n_cells": self.n[first, second].astype(np.int64),
            }
        )


def expressed_cells(
    path: str | os.PathLike,
    *,
    chunk_size: int = 2048,
    layer: str | None = None,
    gene_key: str | None = None,
    progress: bool = False,
) -> tuple[pd.Series, int]:
    """Cells expressing each gene (step 1) and the number of cells, in one pass over the corpus.

    Parameters
    ----------
    path, chunk_size, layer, gene_key
        The corpus and how to read it (:func:`cellshift.priors.cells.expression_blocks`).
    progress
        Show a progress bar.

    Returns
    -------
    tuple of (pandas.Series, int)
        Genes (name order) -> expressing cells, and the number of cells.
    """
    counts, n_cells = pd.Series(dtype=np.int64), 0
    blocks = expression_blocks(path, chunk_size=chunk_size, layer=layer, gene_key=gene_key)
    for genes, block in tqdm(blocks, desc="co-expression: genes", disable=not progress):
        per_gene = pd.Series(np.bincount(block.indices, minlength=len(genes)), index=genes)
        counts = counts.add(per_gene.groupby(level=0).sum(), fill_value=0)
        n_cells += block.shape[0]
    return counts.astype(np.int64).sort_index(), n_cells


def choose_panel(expressed: pd.Series, *, min_cells: int, max_genes: int) -> pd.Index:
    """Genes expressed in at least ``min_cells`` cells, the ``max_genes`` most often expressed (ties by name).

    Parameters
    ----------
    expressed
        Genes -> expressing cells (:func:`expressed_cells`).
    min_cells, max_genes
        Least expressing cells and most genes.

    Returns
    -------
    pandas.Index
        The panel, in name order.
    """
    frame = pd.DataFrame({"gene": expressed.index.astype(str), "cells": expressed.to_numpy()})
    frame = frame[frame["cells"] >= min_cells].sort_values(["cells", "gene"], ascending=[False, True])
    return pd.Index(np.sort(frame["gene"].to_numpy()[:max_genes]), dtype=str)


def coexpression_pairs(
    path: str | os.PathLike,
    *,
    min_correlation: float = 0.8,
    min_cells: int = 30,
    cells: str = "all",
    max_genes: int = 4000,
    chunk_size: int = 2048,
    layer: str | None = None,
    gene_key: str | None = None,
    progress: bool = False,
) -> CoexpressionPairs:
    """Gene pairs whose expression correlates over the cells expressing both (module docstring, steps 1-3).

    Parameters
    ----------
    path
        An ``.h5ad`` of raw counts, a folder of them, or a tokenised corpus made with values.
    min_correlation
        Least Pearson correlation of a pair (GeneCompass: 0.8).
    min_cells
        Least cells expressing a gene, and least cells expressing both genes of a pair.
    cells
        Cells the correlation is taken over: ``all`` (zeros included) or ``expressed`` (those
        expressing both genes, GeneCompass); see the module docstring for why ``all`` is the default.
    max_genes
        Most genes in the panel (memory grows with its square).
    chunk_size, layer, gene_key
        How to read the corpus (:func:`cellshift.priors.cells.expression_blocks`).
    progress
        Show progress bars.

    Returns
    -------
    CoexpressionPairs
        The pairs, the panel and the number of cells read.
    """
    reading = {"chunk_size": chunk_size, "layer": layer, "gene_key": gene_key}
    expressed, n_cells = expressed_cells(path, progress=progress, **reading)
    panel = choose_panel(expressed, min_cells=min_cells, max_genes=max_genes)
    sums = CoexpressionSums(panel)
    for genes, block in tqdm(expression_blocks(path, **reading), desc="co-expression: pairs", disable=not progress):
        sums.add(genes, block)
    edges = sums.pairs(min_correlation=min_correlation, min_cells=min_cells, cells=cells)
    return CoexpressionPairs(edges, panel, n_cells)
