"""Tokenise one block of cells: check counts, filter cells, sum genes into columns, rank."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import sparse

from cellshift.data.checks import check_raw_counts
from cellshift.tokenize.plan import GenePlan
from cellshift.tokenize.rank import TARGET_SUM, EncodedCells, add_special_tokens, rank_value_encode

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
    """Tokenise a block of cells (rows of ``counts``, all input genes as columns).

    Cells are dropped, and counted per reason, when they express fewer than
    ``settings.min_genes`` input genes, have a total of 0, or express no vocabulary gene.
    ``totals`` (e.g. from ``obs['n_counts']``) default to the sum over all input genes. Values are
    computed when ``settings.values``; ``kernel`` picks the implementation (see
    :func:`~cellshift.tokenize.rank.rank_value_encode`).
    """
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
