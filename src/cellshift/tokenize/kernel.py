"""Compiled rank-value encoding: one pass over each cell's CSR row (numba).

For each cell c, over its stored entries (gene column g, raw count x_cg), with total T_c:

    normalised = x_cg / T_c * target_sum
    score      = normalised / median_g

The entries are ordered by descending score, equal scores by ascending token ID, the order of
the numpy path (:func:`cellshift.tokenize.rank.rank_value_encode`). The sort is a bucket sort
(:func:`_order_cell`): a positive float64's bit pattern, read as an integer, grows with the
number, so its top bits (exponent and leading mantissa bits, as many as give ~4 buckets per
entry) name a bucket. A counting pass copies each entry's score and ``token << 32 | position``
into its bucket, highest scores first; the array is then sorted except within buckets, which
hold one or two entries, and one insertion-sort pass over the whole array finishes it.
A bucket of more than 32 entries (many equal scores, e.g. equal medians) is sorted on its own
by two stable merge sorts instead, so no cell costs quadratic time. This costs a few passes over
the row instead of a comparison sort's log2(n) passes: ~16 ns per expressed gene on one core, all of
the cell's work (check, gather, rank, write) included.

The first ``max_genes`` token IDs are written, with their normalised values when values are asked
for; ``log1p`` of those is taken by numpy afterwards, over all cells at once (numpy's vectorised
log1p is ~5x faster than a scalar one). The arithmetic is the numpy path's, operation for
operation, so scores and values are bit-identical. numba is optional: without it
:data:`HAVE_NUMBA` is false and the numpy path is used.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

try:
    import numba
except ImportError:  # numba is optional; the numpy path needs nothing compiled
    numba = None

HAVE_NUMBA = numba is not None
MAX_BUCKETS = 16_384
BUCKETS_PER_ENTRY = 4
SMALL_BUCKET = 32  # larger buckets are merge-sorted on their own
POSITION_MASK = (1 << 32) - 1  # the low half of a packed token << 32 | position


def _insertion_sort(score: np.ndarray, packed: np.ndarray, start: int, stop: int) -> None:
    """Sort ``start:stop`` of the parallel arrays by descending score, then ascending ``packed``.

    ``packed`` holds ``token << 32 | position``: tokens differ within a cell, so its order is the
    token order.
    """
    for k in range(start + 1, stop):
        moving_score, moving_packed = score[k], packed[k]
        j = k - 1
        while j >= start and (moving_score > score[j] or (moving_score == score[j] and moving_packed < packed[j])):
            score[j + 1], packed[j + 1] = score[j], packed[j]
            j -= 1
        score[j + 1], packed[j + 1] = moving_score, moving_packed


def _sort_large_bucket(score: np.ndarray, packed: np.ndarray, start: int, stop: int) -> None:
    """The order of :func:`_insertion_sort` for a large range: sort by ``packed``, then stably by descending score."""
    by_packed = np.argsort(packed[start:stop], kind="mergesort")
    by_score = by_packed[np.argsort(-score[start:stop][by_packed], kind="mergesort")]
    score[start:stop] = score[start:stop][by_score]
    packed[start:stop] = packed[start:stop][by_score]


def _order_cell(score, tokens, sorted_score, sorted_packed, bucket_end) -> None:
    """Fill ``sorted_*`` (length n) with the n entries by descending score, ties by ascending token.

    ``sorted_packed[k]`` is ``token << 32 | position`` of the k-th entry (``position``: its index
    in ``score``); ``bucket_end`` is scratch space of ``MAX_BUCKETS + 1`` integers.
    """
    n = len(score)
    bits = score.view(np.int64)
    low, high = bits[0], bits[0]
    for k in range(1, n):
        low, high = min(low, bits[k]), max(high, bits[k])
    most_buckets = max(64, min(MAX_BUCKETS, BUCKETS_PER_ENTRY * n))
    shift = 0
    while (high >> shift) - (low >> shift) >= most_buckets:
        shift += 1
    top = high >> shift
    n_buckets = top - (low >> shift) + 1
    bucket_end[: n_buckets + 1] = 0
    for k in range(n):  # highest scores in bucket 0
        bucket_end[top - (bits[k] >> shift) + 1] += 1
    largest = 0
    for b in range(n_buckets):
        largest = max(largest, bucket_end[b + 1])
        bucket_end[b + 1] += bucket_end[b]
    for k in range(n):
        b = top - (bits[k] >> shift)
        slot = bucket_end[b]
        sorted_score[slot], sorted_packed[slot] = score[k], (tokens[k] << 32) | k
        bucket_end[b] = slot + 1
    if largest <= SMALL_BUCKET:
        _insertion_sort(sorted_score, sorted_packed, 0, n)
        return
    start = 0
    for b in range(n_buckets):
        if bucket_end[b] - start > SMALL_BUCKET:
            _sort_large_bucket(sorted_score, sorted_packed, start, bucket_end[b])
        elif bucket_end[b] - start > 1:
            _insertion_sort(sorted_score, sorted_packed, start, bucket_end[b])
        start = bucket_end[b]


def _gather_cell(indices, data, start, stop, column_of_input, slot_of_column, cell_columns, cell_counts):
    """Check and gather one cell's stored entries ``start:stop``; return (expressed, total, m, bad).

    ``expressed``: non-zero input genes; ``total``: their count sum; the first ``m`` of
    ``cell_columns`` / ``cell_counts`` get the vocabulary columns and their counts (summed over
    input genes sharing a column when ``slot_of_column`` is not empty: it maps a column to its
    slot, -1 when not yet seen, and is left all -1). ``bad`` is the first entry that is not a
    finite, non-negative integer (-1: none; the other results are then incomplete).
    """
    expressed, total, m = 0, 0.0, 0
    for e in range(start, stop):
        x = np.float64(data[e])
        if not (x >= 0.0 and x < np.inf and x == np.floor(x)):  # NaN fails the first test
            return expressed, total, m, e
        if x == 0.0:
            continue
        expressed += 1
        total += x
        column = column_of_input[indices[e]]
        if column < 0:
            continue
        if len(slot_of_column):
            if slot_of_column[column] >= 0:
                cell_counts[slot_of_column[column]] += x
                continue
            slot_of_column[column] = m
        cell_columns[m], cell_counts[m] = column, x
        m += 1
    for k in range(m if len(slot_of_column) else 0):
        slot_of_column[cell_columns[k]] = -1
    return expressed, total, m, -1


def _encode_rows(
    indptr, indices, data, column_of_input, shared_columns, n_columns, medians, token_ids, given_totals,
    min_genes, max_genes, target_sum, with_values, cls_id, eos_id,
):  # fmt: skip
    """Encode every row of a raw-count CSR block (input genes as columns) in one pass per cell.

    Per cell: gather its counts (:func:`_gather_cell`; on the first stored value that is not a raw
    count, return at once with its entry number as ``bad``), decide whether it is kept (status 0)
    or dropped (1: fewer than ``min_genes`` expressed input genes, 2: total not > 0, 3: no
    vocabulary gene), then rank its genes and write its tokens, between ``cls_id`` and ``eos_id``
    when they are >= 0. Dropped cells get no tokens; ``offsets`` covers every row.
    """
    n_cells = len(indptr) - 1
    n_special = 2 if cls_id >= 0 else 0
    widths = indptr[1:] - indptr[:-1]
    widest = max(1, widths.max()) if n_cells else 1
    capacity = np.minimum(widths, max_genes).sum() + n_special * n_cells
    input_ids = np.empty(capacity, dtype=np.int32)
    kept_normalised = np.zeros(capacity if with_values else 0, dtype=np.float64)
    offsets = np.zeros(n_cells + 1, dtype=np.int64)
    status = np.zeros(n_cells, dtype=np.int8)
    slot_of_column = np.full(n_columns if shared_columns else 0, -1, dtype=np.int64)
    cell_columns, tokens = np.empty(widest, dtype=np.int64), np.empty(widest, dtype=np.int64)
    cell_counts, normalised, score = np.empty(widest), np.empty(widest), np.empty(widest)
    sorted_score, sorted_packed = np.empty(widest), np.empty(widest, dtype=np.int64)
    bucket_end = np.empty(MAX_BUCKETS + 1, dtype=np.int64)
    out = 0
    for c in range(n_cells):
        expressed, total, m, bad = _gather_cell(
            indices, data, indptr[c], indptr[c + 1], column_of_input, slot_of_column, cell_columns, cell_counts
        )
        if bad >= 0:
            return input_ids[:0], kept_normalised[:0], offsets, status, bad
        if len(given_totals):
            total = given_totals[c]
        status[c] = 1 if expressed < min_genes else 2 if not total > 0 else 3 if m == 0 else 0
        if status[c] == 0:
            for k in range(m):
                normalised[k] = cell_counts[k] / total * target_sum
                score[k] = normalised[k] / medians[cell_columns[k]]
                tokens[k] = token_ids[cell_columns[k]]
            _order_cell(score[:m], tokens[:m], sorted_score[:m], sorted_packed[:m], bucket_end)
            first = out + (n_special > 0)
            kept = min(m, max_genes)
            for k in range(kept):
                input_ids[first + k] = sorted_packed[k] >> 32
                if with_values:
                    kept_normalised[first + k] = normalised[sorted_packed[k] & POSITION_MASK]
            if n_special:
                input_ids[out], input_ids[first + kept] = cls_id, eos_id
            out = first + kept + (n_special > 0)
        offsets[c + 1] = out
    return input_ids[:out], kept_normalised[: out if with_values else 0], offsets, status, -1


if HAVE_NUMBA:
    _insertion_sort = numba.njit(cache=True, nogil=True, inline="always")(_insertion_sort)
    _sort_large_bucket = numba.njit(cache=True, nogil=True)(_sort_large_bucket)
    _order_cell = numba.njit(cache=True, nogil=True)(_order_cell)
    _gather_cell = numba.njit(cache=True, nogil=True, inline="always")(_gather_cell)
    _encode_rows = numba.njit(cache=True, nogil=True)(_encode_rows)


def encode_rows_compiled(
    counts: sparse.csr_matrix,
    column_of_input: np.ndarray,
    medians: np.ndarray,
    token_ids: np.ndarray,
    *,
    shared_columns: bool,
    totals: np.ndarray | None,
    min_genes: int,
    max_genes: int,
    target_sum: float,
    with_values: bool,
    special_ids: tuple[int, int] | None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, int]:
    """Encode the rows of a raw-count block with the compiled kernel (see :func:`_encode_rows`).

    Parameters
    ----------
    counts
        Cells x input genes, as stored (any numeric dtype; explicit zeros allowed).
    column_of_input
        Vocabulary column of each input gene (-1: not in the vocabulary).
    medians, token_ids
        Median and token ID of each column.
    shared_columns
        Whether several input genes go to one column (their counts are then summed).
    totals
        Each cell's total (e.g. ``obs['n_counts']``); ``None``: the sum over all input genes.
    min_genes, max_genes, target_sum, with_values, special_ids
        As in :class:`~cellshift.tokenize.encode.TokenizeSettings`; ``special_ids``: ``(<cls>, <eos>)``.

    Returns
    -------
    Token IDs (int32), values (float32 ``log1p(normalised)``, or ``None``), offsets over all
    rows (int64; dropped rows hold no tokens), status of each row (0 kept, 1 too few genes,
    2 no counts, 3 no vocabulary gene), and the first entry that is not a raw count (-1: none).
    """
    if not HAVE_NUMBA:
        raise RuntimeError("numba is not installed; use kernel='numpy' (pip install numba for the compiled kernel)")
    cls_id, eos_id = special_ids if special_ids else (-1, -1)
    input_ids, kept_normalised, offsets, status, bad = _encode_rows(
        np.ascontiguousarray(counts.indptr, dtype=np.int64),
        np.ascontiguousarray(counts.indices),
        np.ascontiguousarray(counts.data),
        np.ascontiguousarray(column_of_input, dtype=np.int64),
        bool(shared_columns),
        len(medians),
        np.ascontiguousarray(medians, dtype=np.float64),
        np.ascontiguousarray(token_ids, dtype=np.int64),
        np.zeros(0) if totals is None else np.ascontiguousarray(totals, dtype=np.float64),
        int(min_genes),
        int(max_genes),
        float(target_sum),
        bool(with_values),
        int(cls_id),
        int(eos_id),
    )
    values = np.log1p(kept_normalised).astype(np.float32) if with_values else None
    return input_ids, values, offsets, status, int(bad)
