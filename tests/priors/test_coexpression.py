import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from cellshift.priors import coexpression_pairs
from cellshift.priors.cells import expression_blocks
from cellshift.priors.coexpression import CoexpressionSums, choose_panel, expressed_cells


def dense_correlations(values: np.ndarray, min_cells: int, cells: str) -> np.ndarray:
    """Pearson r of every gene pair, one pair at a time (np.corrcoef), over all cells or cells expressing both."""
    n_genes = values.shape[1]
    result = np.full((n_genes, n_genes), np.nan)
    for i in range(n_genes):
        for j in range(n_genes):
            both = (values[:, i] > 0) & (values[:, j] > 0)
            rows = both if cells == "expressed" else np.ones(len(values), bool)
            x, y = values[rows, i], values[rows, j]
            if both.sum() >= min_cells and x.std() > 0 and y.std() > 0:
                result[i, j] = np.corrcoef(x, y)[0, 1]
    return result


@pytest.fixture(scope="module")
def kang_subset(kang_small):
    """300 real PBMCs x the 40 most often expressed genes (ties by name), in name order, log-normalised by scanpy."""
    import scanpy as sc

    cells = ad.read_h5ad(kang_small)
    sc.pp.normalize_total(cells, target_sum=1e4)
    sc.pp.log1p(cells)
    expressed = pd.DataFrame({"gene": cells.var_names, "cells": np.asarray((cells.X > 0).sum(axis=0)).ravel()})
    top = expressed.sort_values(["cells", "gene"], ascending=[False, True])["gene"][:40]
    return cells[:, sorted(top)].copy()


@pytest.mark.parametrize("cells", ["all", "expressed"])
def test_streamed_correlation_equals_a_dense_computation_on_real_cells(kang_subset, cells):
    values = kang_subset.X.toarray().astype(np.float64)
    genes = kang_subset.var_names
    sums = CoexpressionSums(genes)
    for start in range(0, len(values), 37):  # uneven blocks
        sums.add(genes, sparse.csr_matrix(values[start : start + 37]))
    expected = dense_correlations(values, min_cells=20, cells=cells)
    got = sums.correlation(20, cells)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], atol=1e-9)
    pairs = sums.pairs(min_correlation=0.3, min_cells=20, cells=cells)
    i, j = np.nonzero(np.triu(np.nan_to_num(expected, nan=-1) >= 0.3, k=1))
    assert list(zip(pairs["source"], pairs["target"])) == list(zip(genes[i], genes[j]))


def test_sums_ignore_genes_outside_the_panel_and_follow_gene_names():
    panel = pd.Index(["g1", "g2"])
    sums = CoexpressionSums(panel)
    block = sparse.csr_matrix(np.array([[1.0, 5.0, 2.0], [2.0, 7.0, 3.0], [3.0, 0.0, 5.0]]))
    sums.add(pd.Index(["g2", "other", "g1"]), block)
    np.testing.assert_allclose(sums.products, [[38, 23], [23, 14]])  # g1 = (2,3,5), g2 = (1,2,3)
    np.testing.assert_allclose(sums.n, [[3, 3], [3, 3]])
    assert sums.n_cells == 3


def test_panel_keeps_the_most_often_expressed_genes():
    expressed = pd.Series({"b": 50, "a": 50, "c": 80, "d": 10})
    assert list(choose_panel(expressed, min_cells=20, max_genes=2)) == ["a", "c"]
    assert list(choose_panel(expressed, min_cells=20, max_genes=10)) == ["a", "b", "c"]


def test_pairs_from_an_h5ad_file_match_the_dense_computation(kang_small, kang_subset):
    result = coexpression_pairs(kang_small, min_correlation=0.4, min_cells=30, max_genes=40, chunk_size=64)
    assert result.n_cells == 300 and list(result.panel) == list(kang_subset.var_names)
    expected = dense_correlations(kang_subset.X.toarray().astype(np.float64), min_cells=30, cells="all")
    i, j = np.nonzero(np.triu(np.nan_to_num(expected, nan=-1) >= 0.4, k=1))
    assert len(i) > 0
    assert list(zip(result.edges["source"], result.edges["target"])) == list(zip(result.panel[i], result.panel[j]))
    np.testing.assert_allclose(result.edges["correlation"], expected[i, j], atol=1e-6)


def test_a_tokenised_corpus_gives_the_values_it_holds(tiny_corpora):
    from cellshift.tokenize import Corpus

    corpus = Corpus.open(tiny_corpora[0])
    tokens = corpus.gene_table().tokens
    first = corpus.dataset()[0]
    genes, block = next(expression_blocks(tiny_corpora[0], chunk_size=5))
    assert block.shape == (5, len(tokens)) and list(genes) == list(tokens)
    row = block[0].toarray().ravel()
    nonzero = [(t, v) for t, v in zip(first["input_ids"], first["values"]) if v > 0]
    assert {tokens[t]: pytest.approx(v) for t, v in nonzero} == {genes[k]: row[k] for k in np.flatnonzero(row)}
    counts, n_cells = expressed_cells(tiny_corpora[0])
    assert n_cells == corpus.n_cells and counts.max() <= n_cells


def test_a_corpus_without_values_is_refused(tmp_path, kang_small):
    from cellshift.tokenize import tokenize

    corpus = tokenize(kang_small, tmp_path / "plain", max_length=64, progress=False)
    with pytest.raises(ValueError, match="--values"):
        coexpression_pairs(corpus.path)
    with pytest.raises(ValueError, match="co-expression"):
        coexpression_pairs(kang_small, cells="some")
