"""Compiled rank-value encoding: one pass over each cell's CSR row (numba).

For each cell c, over its stored entries (gene column g, raw count x_cg), with total T_c:

    normalised = x_cg / T_c * target_sum
    score      = normalised / median_g

The entries are ordered by descending score, equal scores by ascending token ID, the order of
the numpy path (:func:`cellshift.tokenize.rank.rank_value_encode`). The sort is a bucket sort:
a positive float64's bit pattern, read as an integer, grows with the number, so its top bits
(exponent and leading mantissa bits, as many as keep at most ~2 buckets per entry) name a
bucket; a counting pass puts the entries in bucket order, then each bucket is sorted exactly by
(score, token): by insertion when small, by quicksort and a pass over equal runs when large.
This costs a few passes over the row instead of a comparison sort's log2(n) passes.

The first ``max_genes`` token IDs are written, with their normalised values when values are asked
for; ``log1p`` of those is taken by numpy afterwards, over all cells at once (numpy's vectorised
log1p is ~5x faster than a scalar one). The arithmetic is the numpy path's, operation for
operation, so scores and values are bit-identical. numba is optional: without it
:data:`HAVE_NUMBA` is false and the numpy path is used.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # numba is optional; the numpy path needs nothing compiled
    numba = None

HAVE_NUMBA = numba is not None
MAX_BUCKETS = 4096
SMALL_BUCKET = 32  # buckets up to this size are insertion-sorted


def _precedes(score: np.ndarray, tokens: np.ndarray, a: int, b: int) -> bool:
    """Whether entry ``a`` comes before entry ``b``: higher score, or equal score and lower token."""
    return score[a] > score[b] or (score[a] == score[b] and tokens[a] < tokens[b])


def _sort_bucket(order: np.ndarray, start: int, stop: int, score: np.ndarray, tokens: np.ndarray) -> None:
    """Sort ``order[start:stop]`` (entry numbers) by descending score, then ascending token, in place."""
    if stop - start <= SMALL_BUCKET:
        for k in range(start + 1, stop):
            entry = order[k]
            j = k - 1
            while j >= start and _precedes(score, tokens, entry, order[j]):
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = entry
        return
    members = order[start:stop].copy()
    by_score = members[np.argsort(-score[members])]
    run_start = 0
    while run_start < len(by_score):  # equal scores: one more (small) sort by token
        run_stop = run_start + 1
        while run_stop < len(by_score) and score[by_score[run_stop]] == score[by_score[run_start]]:
            run_stop += 1
        run = by_score[run_start:run_stop]
        by_score[run_start:run_stop] = run[np.argsort(tokens[run])]
        run_start = run_stop
    order[start:stop] = by_score


def _rank_order(score: np.ndarray, tokens: np.ndarray, order: np.ndarray, bucket_end: np.ndarray) -> None:
    """Fill ``order`` with the entries ``0..len(score)-1`` by descending score, ties by ascending token."""
    n = len(score)
    bits = score.view(np.int64)
    low, high = bits.min(), bits.max()
    n_buckets_max = max(64, min(MAX_BUCKETS, 2 * n))
    shift = 40
    while (high >> shift) - (low >> shift) >= n_buckets_max:
        shift += 1
    top = high >> shift
    n_buckets = top - (low >> shift) + 1
    bucket_end[: n_buckets + 1] = 0
    for k in range(n):  # highest scores in bucket 0
        bucket_end[top - (bits[k] >> shift) + 1] += 1
    for b in range(n_buckets):
        bucket_end[b + 1] += bucket_end[b]
    for k in range(n):
        b = top - (bits[k] >> shift)
        order[bucket_end[b]] = k
        bucket_end[b] += 1
    start = 0
    for b in range(n_buckets):
        if bucket_end[b] - start > 1:
            _sort_bucket(order, start, bucket_end[b], score, tokens)
        start = bucket_end[b]


def _rank_cells(indptr, indices, data, totals, medians, token_ids, max_genes, target_sum, with_values):
    """Token IDs, normalised values and offsets of every cell of a CSR matrix (see the module docstring)."""
    n_cells = len(indptr) - 1
    offsets = np.zeros(n_cells + 1, dtype=np.int64)
    widest = 0
    for c in range(n_cells):
        n = indptr[c + 1] - indptr[c]
        offsets[c + 1] = offsets[c] + min(n, max_genes)
        widest = max(widest, n)
    input_ids = np.empty(offsets[n_cells], dtype=np.int32)
    kept_normalised = np.empty(offsets[n_cells] if with_values else 0, dtype=np.float64)
    normalised = np.empty(widest, dtype=np.float64)
    score = np.empty(widest, dtype=np.float64)
    tokens = np.empty(widest, dtype=np.int64)
    order = np.empty(widest, dtype=np.int64)
    bucket_end = np.empty(MAX_BUCKETS + 1, dtype=np.int64)
    for c in range(n_cells):
        start = indptr[c]
        n = indptr[c + 1] - start
        for k in range(n):
            column = indices[start + k]
            normalised[k] = data[start + k] / totals[c] * target_sum
            score[k] = normalised[k] / medians[column]
            tokens[k] = token_ids[column]
        if n > 0:
            _rank_order(score[:n], tokens[:n], order[:n], bucket_end)
        out = offsets[c]
        for k in range(offsets[c + 1] - out):
            input_ids[out + k] = tokens[order[k]]
            if with_values:
                kept_normalised[out + k] = normalised[order[k]]
    return input_ids, kept_normalised, offsets


if HAVE_NUMBA:
    _precedes = numba.njit(cache=True, nogil=True, inline="always")(_precedes)
    _sort_bucket = numba.njit(cache=True, nogil=True)(_sort_bucket)
    _rank_order = numba.njit(cache=True, nogil=True)(_rank_order)
    _rank_cells = numba.njit(cache=True, nogil=True)(_rank_cells)


def rank_cells_compiled(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    totals: np.ndarray,
    medians: np.ndarray,
    token_ids: np.ndarray,
    *,
    max_genes: int,
    target_sum: float,
    with_values: bool,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Rank-value encode the rows of a CSR matrix with the compiled kernel.

    Parameters
    ----------
    indptr, indices, data
        The CSR arrays (cells x vocabulary columns, raw counts, no duplicate entries in a row).
    totals
        Total counts of each cell.
    medians, token_ids
        Median and token ID of each column.
    max_genes
        Tokens kept per cell.
    target_sum
        Counts per cell after normalisation.
    with_values
        Also return ``log1p(normalised)`` of each kept token.

    Returns
    -------
    Token IDs (int32), values (float32, or ``None``) and offsets (int64, one more than cells).
    """
    if not HAVE_NUMBA:
        raise RuntimeError("numba is not installed; use kernel='numpy' (pip install numba for the compiled kernel)")
    input_ids, kept_normalised, offsets = _rank_cells(
        np.ascontiguousarray(indptr, dtype=np.int64),
        np.ascontiguousarray(indices, dtype=np.int64),
        np.ascontiguousarray(data, dtype=np.float64),
        np.ascontiguousarray(totals, dtype=np.float64),
        np.ascontiguousarray(medians, dtype=np.float64),
        np.ascontiguousarray(token_ids, dtype=np.int64),
        int(max_genes),
        float(target_sum),
        bool(with_values),
    )
    values = np.log1p(kept_normalised).astype(np.float32) if with_values else None
    return input_ids, values, offsets
