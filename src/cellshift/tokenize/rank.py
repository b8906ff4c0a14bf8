"""Rank-value encoding of a block of cells, vectorised over all cells of the block.

For cell c and gene g with raw count x_cg and cell total T_c (DESIGN §2.1, Geneformer):

    normalised_cg = x_cg / T_c * target_sum          (target_sum = 10,000)
    score_cg      = normalised_cg / median_g         (median_g: non-zero median over a corpus)

Expressed genes are ordered by score, descending; equal scores keep ascending token order (a
stable sort), so the result never depends on the machine. The first ``max_genes`` are kept with
their value ``log1p(normalised_cg)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

TARGET_SUM = 10_000.0


@dataclass(frozen=True)
class EncodedCells:
    """Tokens of several cells, stored flat: cell i owns ``offsets[i]:offsets[i + 1]``."""

    input_ids: np.ndarray
    values: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """Number of tokens per cell."""
        return np.diff(self.offsets)

    def cell(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Token IDs and values of cell ``i``."""
        window = slice(self.offsets[i], self.offsets[i + 1])
        return self.input_ids[window], self.values[window]


def rank_value_encode(
    counts: sparse.csr_matrix,
    totals: np.ndarray,
    medians: np.ndarray,
    token_ids: np.ndarray,
    *,
    max_genes: int,
    target_sum: float = TARGET_SUM,
) -> EncodedCells:
    """Rank-value encode cells.

    Parameters
    ----------
    counts
        Raw counts, cells x vocabulary columns, CSR with sorted indices and no explicit zeros.
        Columns must be in ascending token-ID order (ties are broken by column order).
    totals
        Total counts of each cell over all of its genes (before any gene was dropped).
    medians
        Non-zero median of each column's gene.
    token_ids
        Token ID of each column, ascending.
    max_genes
        Keep at most this many genes per cell.
    target_sum
        Counts per cell after normalisation.
    """
    if np.any(np.diff(token_ids) <= 0):
        raise ValueError("columns must be in strictly ascending token-ID order")
    genes_per_cell = np.diff(counts.indptr)
    cell_of_entry = np.repeat(np.arange(counts.shape[0]), genes_per_cell)
    normalised = counts.data / totals[cell_of_entry] * target_sum
    score = normalised / medians[counts.indices]
    order = _order_within_cells(score, cell_of_entry, counts.indptr, genes_per_cell)
    kept = (counts.indptr[:-1, None] + order[:, :max_genes])[order[:, :max_genes] < genes_per_cell[:, None]]
    lengths = np.minimum(genes_per_cell, max_genes)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return EncodedCells(
        input_ids=token_ids[counts.indices[kept]].astype(np.int32),
        values=np.log1p(normalised[kept]).astype(np.float32),
        offsets=offsets,
    )


def add_special_tokens(cells: EncodedCells, *, cls_id: int, eos_id: int) -> EncodedCells:
    """Put ``<cls>`` before and ``<eos>`` after every cell's genes (their values are 0)."""
    n_cells = len(cells.offsets) - 1
    lengths = cells.lengths + 2
    offsets = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    input_ids = np.empty(offsets[-1], dtype=np.int32)
    values = np.zeros(offsets[-1], dtype=np.float32)
    input_ids[offsets[:-1]] = cls_id
    input_ids[offsets[1:] - 1] = eos_id
    gene_slots = np.ones(offsets[-1], dtype=bool)
    gene_slots[offsets[:-1]] = False
    gene_slots[offsets[1:] - 1] = False
    input_ids[gene_slots] = cells.input_ids
    values[gene_slots] = cells.values
    return EncodedCells(input_ids, values, offsets)


def _order_within_cells(score, cell_of_entry, indptr, genes_per_cell) -> np.ndarray:
    """Per cell (row), positions of its entries by descending score, ties in column order.

    Cells are laid out as rows of a padded matrix (padding sorts last) and sorted row by row,
    which is several times faster than one sort over all entries. The fast sort is not stable;
    the few rows holding equal scores are sorted again with a stable sort.
    """
    width = int(genes_per_cell.max()) if len(genes_per_cell) else 0
    padded = np.full((len(genes_per_cell), width), np.inf)
    padded[cell_of_entry, np.arange(len(score)) - indptr[cell_of_entry]] = -score
    order = np.argsort(padded, axis=1)
    ranked = np.take_along_axis(padded, order, axis=1)
    tied = np.flatnonzero(((ranked[:, 1:] == ranked[:, :-1]) & np.isfinite(ranked[:, 1:])).any(axis=1))
    if tied.size:
        order[tied] = np.argsort(padded[tied], axis=1, kind="stable")
    return order
