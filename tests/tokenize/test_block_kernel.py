"""The compiled block kernel (raw counts as stored -> tokens in one pass) equals the numpy path, step by step."""

import numpy as np
import pytest
from scipy import sparse

from cellshift.tokenize.encode import TokenizeSettings, encode_block
from cellshift.tokenize.kernel import HAVE_NUMBA
from cellshift.tokenize.plan import GenePlan

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
N_INPUT_GENES = 60


def make_plan(shared: bool, seed: int = 0) -> GenePlan:
    """A plan of 60 input genes: some not in the vocabulary, and (``shared``) pairs summed into one column."""
    rng = np.random.default_rng(seed)
    n_columns = 40
    column_of_input = np.concatenate([np.arange(n_columns), np.full(N_INPUT_GENES - n_columns, -1)])
    if shared:
        column_of_input[n_columns : n_columns + 10] = rng.integers(0, n_columns, 10)
    column_of_input = rng.permutation(column_of_input)
    token_ids = np.sort(rng.choice(np.arange(10, 500), n_columns, replace=False))
    medians = rng.choice([0.5, 1.0, 1.5, 3.0], n_columns)  # few distinct medians: many equal scores
    genes = tuple(f"G{i}" for i in range(n_columns))
    return GenePlan("human", None, column_of_input, genes, token_ids, medians)


def make_block(dtype, seed: int = 0) -> sparse.csr_matrix:
    """Raw counts with explicit zeros, an empty cell, a cell of only out-of-vocabulary genes, a tiny cell."""
    rng = np.random.default_rng(seed)
    dense = rng.integers(0, 5, size=(50, N_INPUT_GENES)) * (rng.random((50, N_INPUT_GENES)) < 0.6)
    dense[2] = 0
    counts = sparse.csr_matrix(dense.astype(dtype))
    counts.data[::7] = 0  # explicit zeros, stored
    return counts


def encode_both(counts, plan, settings, **options):
    compiled = encode_block(counts, plan, settings, kernel="numba", **options)
    vectorised = encode_block(counts, plan, settings, kernel="numpy", **options)
    return compiled, vectorised


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("special", [None, (1, 2)])
@pytest.mark.parametrize("values", [False, True])
def test_block_kernel_equals_numpy_path(dtype, shared, special, values):
    plan = make_plan(shared)
    counts = make_block(dtype)
    settings = TokenizeSettings(max_length=12, special_tokens=special is not None, min_genes=20, values=values)
    compiled, vectorised = encode_both(counts, plan, settings, special_ids=special)
    assert np.array_equal(compiled.kept_rows, vectorised.kept_rows)
    assert compiled.dropped == vectorised.dropped
    assert sum(compiled.dropped.values()) > 0 and len(compiled.kept_rows) > 0
    for name in ("input_ids", "offsets", "values"):
        a, b = getattr(compiled.cells, name), getattr(vectorised.cells, name)
        assert (a is None and b is None) or (a.dtype == b.dtype and np.array_equal(a, b)), name


def test_block_kernel_uses_given_totals_and_counts_every_drop_reason():
    plan = make_plan(shared=False)
    dense = np.zeros((4, N_INPUT_GENES))
    in_vocabulary = np.flatnonzero(plan.column_of_input >= 0)
    outside = np.flatnonzero(plan.column_of_input < 0)
    dense[0, in_vocabulary[:3]] = [5, 1, 2]
    dense[1, outside[:3]] = 1  # expressed genes, none in the vocabulary
    dense[2, in_vocabulary[:1]] = 1  # too few genes
    dense[3, in_vocabulary[:4]] = 1  # a given total of 0
    settings = TokenizeSettings(max_length=10, min_genes=2, values=True)
    totals = np.array([100.0, 3.0, 1.0, 0.0])
    compiled, vectorised = encode_both(sparse.csr_matrix(dense), plan, settings, special_ids=None, totals=totals)
    assert compiled.dropped == vectorised.dropped == {"too_few_genes": 1, "no_counts": 1, "no_vocabulary_genes": 1}
    assert compiled.kept_rows.tolist() == [0]
    assert np.array_equal(compiled.cells.values, vectorised.cells.values)
    assert compiled.cells.values[0] == pytest.approx(np.log1p(5 / 100 * 10_000))  # the given total, not 8


@pytest.mark.parametrize("bad", [np.nan, -1.0, 0.5, np.inf])
def test_block_kernel_refuses_what_is_not_a_raw_count_with_the_numpy_message(bad):
    plan = make_plan(shared=False)
    counts = make_block(np.float64)
    counts.data[17] = bad
    settings = TokenizeSettings(max_length=12, min_genes=0)
    messages = []
    for kernel in ("numba", "numpy"):
        with pytest.raises(ValueError) as error:
            encode_block(counts, plan, settings, special_ids=None, where="X of f.h5ad", kernel=kernel)
        messages.append(str(error.value))
    assert messages[0] == messages[1] and "X of f.h5ad" in messages[0]


def test_block_kernel_leaves_the_callers_counts_alone():
    counts = make_block(np.float32)
    before = (counts.data.copy(), counts.indices.copy(), counts.indptr.copy())
    for kernel in ("numba", "numpy"):
        encode_block(counts, make_plan(True), TokenizeSettings(min_genes=0), special_ids=None, kernel=kernel)
        assert all(np.array_equal(a, b) for a, b in zip(before, (counts.data, counts.indices, counts.indptr)))
