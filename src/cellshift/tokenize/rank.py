"""Rank-value encoding of a block of cells, vectorised over all cells of the block.

For cell c and gene g with raw count x_cg and cell total T_c (Geneformer, Theodoris et al. 2023):

    normalised_cg = x_cg / T_c * target_sum          (target_sum = 10,000)
    score_cg      = normalised_cg / median_g         (median_g: non-zero median over a corpus)

Expressed genes are ordered by score, descending; equal scores are ordered by ascending token ID,
so the result never depends on the machine. The first ``max_genes`` are kept, with their value
``log1p(normalised_cg)`` when values are asked for.

Two implementations give identical tokens and values: a compiled kernel that handles one cell at a
time (:mod:`cellshift.tokenize.kernel`, when numba is installed) and a vectorised numpy path,
the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from cellshift.tokenize.kernel import HAVE_NUMBA, encode_rows_compiled

TARGET_SUM = 10_000.0
KERNELS = ("auto", "numba", "numpy")


@dataclass(frozen=True)
class EncodedCells:
    """Tokens of several cells, stored flat: cell i owns ``offsets[i]:offsets[i + 1]``.

    ``values`` is ``None`` when the cells were encoded without values.
    """

    input_ids: np.ndarray
    values: np.ndarray | None
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """Number of tokens per cell."""
        return np.diff(self.offsets)

    def cell(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Token IDs and values (``None`` without values) of cell ``i``."""
        window = slice(self.offsets[i], self.offsets[i + 1])
        return self.input_ids[window], None if self.values is None else self.values[window]


def rank_value_encode(
    counts: sparse.csr_matrix,
    totals: np.ndarray,
    medians: np.ndarray,
    token_ids: np.ndarray,
    *,
    max_genes: int,
    target_sum: float = TARGET_SUM,
    with_values: bool = True,
    kernel: str = "auto",
) -> EncodedCells:
    """Rank-value encode cells.

    Parameters
    ----------
    counts
        Raw counts, cells x vocabulary columns, CSR without explicit zeros or duplicate entries
        (column order within a row does not matter).
    totals
        Total counts of each cell over all of its genes (before any gene was dropped).
    medians
        Non-zero median of each column's gene.
    token_ids
        Token ID of each column; equal scores are ordered by ascending token ID.
    max_genes
        Keep at most this many genes per cell.
    target_sum
        Counts per cell after normalisation.
    with_values
        Also compute each kept gene's value ``log1p(normalised)``.
    kernel
        ``numba`` (compiled, one cell at a time), ``numpy`` (vectorised over the cells) or
        ``auto`` (numba when it is installed).
    """
    if uses_compiled_kernel(kernel):
        n_columns = len(medians)
        input_ids, values, offsets, _, bad = encode_rows_compiled(
            counts,
            np.arange(n_columns),
            medians,
            token_ids,
            shared_columns=False,
            totals=totals,
            min_genes=0,
            max_genes=max_genes,
            target_sum=target_sum,
            with_values=with_values,
            special_ids=None,
        )
        if bad >= 0:
            raise ValueError(f"counts hold {counts.data[bad]!r} (stored entry {bad}): not a raw count")
        return EncodedCells(input_ids, values, offsets)
    genes_per_cell = np.diff(counts.indptr)
    # same operations in the same order as Geneformer, so scores are bit-identical to its own
    normalised = counts.data / np.repeat(totals, genes_per_cell) * target_sum
    score = normalised / medians[counts.indices]
    ranked = _rank_entries(score, token_ids[counts.indices], counts.indptr, genes_per_cell, max_genes)
    lengths = np.minimum(genes_per_cell, max_genes)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return EncodedCells(
        input_ids=token_ids[counts.indices[ranked]].astype(np.int32),
        values=np.log1p(normalised[ranked]).astype(np.float32) if with_values else None,
        offsets=offsets,
    )


def uses_compiled_kernel(kernel: str) -> bool:
    """Whether ``kernel`` (``auto``, ``numba``, ``numpy``) means the compiled kernel (``auto``: if numba exists)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return kernel == "numba" or (kernel == "auto" and HAVE_NUMBA)


def add_special_tokens(cells: EncodedCells, *, cls_id: int, eos_id: int) -> EncodedCells:
    """Put ``<cls>`` before and ``<eos>`` after every cell's genes (their values are 0)."""
    n_cells = len(cells.offsets) - 1
    lengths = cells.lengths + 2
    offsets = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    input_ids = np.empty(offsets[-1], dtype=np.int32)
    values = None if cells.values is None else np.zeros(offsets[-1], dtype=np.float32)
    input_ids[offsets[:-1]] = cls_id
    input_ids[offsets[1:] - 1] = eos_id
    gene_slots = np.ones(offsets[-1], dtype=bool)
    gene_slots[offsets[:-1]] = False
    gene_slots[offsets[1:] - 1] = False
    input_ids[gene_slots] = cells.input_ids
    if values is not None:
        values[gene_slots] = cells.values
    return EncodedCells(input_ids, values, offsets)


def _rank_entries(score, tokens, indptr, genes_per_cell, max_genes) -> np.ndarray:
    """Entry indices, cell by cell, by descending score (ties by token), top ``max_genes`` per cell.

    Cells are laid out as rows of a padded matrix (padding sorts last) and sorted row by row,
    several times faster than one sort over all entries. That fast sort is not stable, so the
    rare cells holding equal scores are sorted again by (score, token).
    """
    n_cells = len(genes_per_cell)
    width = int(genes_per_cell.max()) if n_cells else 0
    slot = np.arange(width)
    filled = slot < genes_per_cell[:, None]
    padded = np.full((n_cells, width), np.inf)
    padded[filled] = -score
    order = np.argsort(padded, axis=1)
    entries = (indptr[:-1, None] + order)[filled]
    sorted_score = score[entries]
    same_cell = np.repeat(np.arange(n_cells), genes_per_cell)
    tie = (sorted_score[1:] == sorted_score[:-1]) & (same_cell[1:] == same_cell[:-1])
    for cell in np.unique(same_cell[1:][tie]):
        window = slice(indptr[cell], indptr[cell + 1])
        entries[window] = indptr[cell] + np.lexsort((tokens[window], -score[window]))
    rank_in_cell = np.arange(len(entries)) - np.repeat(indptr[:-1], genes_per_cell)
    return entries[rank_in_cell < max_genes] if width > max_genes else entries
