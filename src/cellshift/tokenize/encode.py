"""Tokenise one block of cells: check counts, filter cells, sum genes into columns, rank.

A block mixing species is encoded one species at a time, each with its own gene plan, and the
cells are put back in row order (:func:`encode_species_block`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import sparse

from cellshift.data.checks import check_raw_counts
from cellshift.data.reading import float_counts
from cellshift.tokenize.kernel import encode_rows_compiled
from cellshift.tokenize.plan import GenePlan, InputGenes
from cellshift.tokenize.rank import (
    TARGET_SUM,
    EncodedCells,
    add_special_tokens,
    rank_value_encode,
    uses_compiled_kernel,
)

DROP_REASONS = ("too_few_genes", "no_counts", "no_vocabulary_genes")


@dataclass(frozen=True)
class TokenizeSettings:
    """Settings of a tokenising run (recorded in the corpus metadata)."""

    max_length: int = 2048
    special_tokens: bool = False
    min_genes: int = 500
    target_sum: float = TARGET_SUM
    values: bool = False

    def as_dict(self) -> dict:
        """Plain dict for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class EncodedBlock:
    """Result of one block: tokens of the kept cells, their row numbers, and drop counts."""

    cells: EncodedCells
    kept_rows: np.ndarray
    dropped: dict[str, int]


def encode_block(
    counts: sparse.csr_matrix,
    plan: GenePlan,
    settings: TokenizeSettings,
    *,
    special_ids: tuple[int, int] | None,
    totals: np.ndarray | None = None,
    where: str = "input",
    layers: list[str] | None = None,
    kernel: str = "auto",
) -> EncodedBlock:
    """Tokenise a block of cells (rows of ``counts``, all input genes as columns, raw counts as stored).

    Cells are dropped, and counted per reason, when they express fewer than
    ``settings.min_genes`` input genes, have a total of 0, or express no vocabulary gene.
    ``totals`` (e.g. from ``obs['n_counts']``) default to the sum over all input genes. Values are
    computed when ``settings.values``; ``kernel`` picks the implementation (see
    :func:`~cellshift.tokenize.rank.rank_value_encode`): the compiled kernel does all of this in
    one pass per cell (:func:`~cellshift.tokenize.kernel.encode_rows_compiled`), the numpy path
    step by step, with identical results.
    """
    if uses_compiled_kernel(kernel):
        return _encode_block_compiled(counts, plan, settings, special_ids, totals, where, layers)
    counts = float_counts(counts)
    check_raw_counts(counts.data, where=where, layers=layers)
    if totals is None:
        totals = np.asarray(counts.sum(axis=1)).ravel()
    genes_expressed = np.diff(counts.indptr)
    columns = plan.to_columns(counts)
    vocabulary_expressed = np.diff(columns.indptr)

    too_few = genes_expressed < settings.min_genes
    no_counts = ~too_few & ~(totals > 0)
    no_vocabulary = ~too_few & ~no_counts & (vocabulary_expressed == 0)
    kept_rows = np.flatnonzero(~(too_few | no_counts | no_vocabulary))
    dropped = {
        "too_few_genes": int(too_few.sum()),
        "no_counts": int(no_counts.sum()),
        "no_vocabulary_genes": int(no_vocabulary.sum()),
    }
    max_genes = settings.max_length - (2 if special_ids else 0)
    all_kept = len(kept_rows) == counts.shape[0]
    cells = rank_value_encode(
        columns if all_kept else columns[kept_rows],
        np.asarray(totals, dtype=np.float64)[kept_rows],
        plan.medians,
        plan.token_ids,
        max_genes=max_genes,
        target_sum=settings.target_sum,
        with_values=settings.values,
        kernel=kernel,
    )
    if special_ids:
        cells = add_special_tokens(cells, cls_id=special_ids[0], eos_id=special_ids[1])
    return EncodedBlock(cells, kept_rows, dropped)


def _encode_block_compiled(counts, plan, settings, special_ids, totals, where, layers) -> EncodedBlock:
    counts = counts.tocsr() if sparse.issparse(counts) else sparse.csr_matrix(counts)
    input_ids, values, offsets, status, bad = encode_rows_compiled(
        counts,
        plan.column_of_input,
        plan.medians,
        plan.token_ids,
        shared_columns=plan.shares_columns,
        totals=totals,
        min_genes=settings.min_genes,
        max_genes=settings.max_length - (2 if special_ids else 0),
        target_sum=settings.target_sum,
        with_values=settings.values,
        special_ids=special_ids,
    )
    if bad >= 0:
        check_raw_counts(np.asarray(counts.data), where=where, layers=layers)  # raises, saying what is wrong
        raise ValueError(f"{where} holds {counts.data[bad]!r}, which is not a raw count")
    kept_rows = np.flatnonzero(status == 0)
    dropped = {reason: int((status == code).sum()) for code, reason in enumerate(DROP_REASONS, start=1)}
    kept_offsets = np.concatenate([[0], offsets[kept_rows + 1]]).astype(np.int64)
    return EncodedBlock(EncodedCells(input_ids, values, kept_offsets), kept_rows, dropped)


def encode_species_block(
    counts: sparse.csr_matrix,
    genes: InputGenes,
    species: np.ndarray,
    settings: TokenizeSettings,
    *,
    special_ids: tuple[int, int] | None,
    totals: np.ndarray | None = None,
    where: str = "input",
    layers: list[str] | None = None,
    kernel: str = "auto",
) -> EncodedBlock:
    """:func:`encode_block` for cells of several species: each cell with its species' gene plan.

    ``species`` holds each row's species (a key of ``genes.plans``). The kept cells come back in
    row order, as from :func:`encode_block`; drop counts are summed over the species.
    """
    options = dict(special_ids=special_ids, where=where, layers=layers, kernel=kernel)
    if len(genes.plans) == 1:
        return encode_block(counts, next(iter(genes.plans.values())), settings, totals=totals, **options)
    kept_rows, parts, dropped = [], [], dict.fromkeys(DROP_REASONS, 0)
    for name, plan in genes.plans.items():
        rows = np.flatnonzero(species == name)
        if len(rows) == 0:
            continue
        part_totals = None if totals is None else np.asarray(totals)[rows]
        block = encode_block(counts[rows], plan, settings, totals=part_totals, **options)
        kept_rows.append(rows[block.kept_rows])
        parts.append(block.cells)
        for reason, n in block.dropped.items():
            dropped[reason] += n
    kept = np.concatenate(kept_rows) if kept_rows else np.zeros(0, dtype=np.int64)
    order = np.argsort(kept, kind="stable")
    return EncodedBlock(_reorder(parts, order), kept[order], dropped)


def _reorder(parts: list[EncodedCells], order: np.ndarray) -> EncodedCells:
    """The cells of ``parts`` (concatenated) taken in ``order``."""
    lengths = np.concatenate([part.lengths for part in parts]) if parts else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    input_ids = np.concatenate([part.input_ids for part in parts]) if parts else np.zeros(0, dtype=np.int32)
    with_values = bool(parts) and parts[0].values is not None
    values = np.concatenate([part.values for part in parts]) if with_values else None
    new_lengths = lengths[order]
    offsets = np.concatenate([[0], np.cumsum(new_lengths)]).astype(np.int64)
    gather = np.repeat(starts[order] - offsets[:-1], new_lengths) + np.arange(offsets[-1])
    return EncodedCells(input_ids[gather], None if values is None else values[gather], offsets)
