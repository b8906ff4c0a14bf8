import anndata as ad
import numpy as np
import pytest
from scipy import sparse

from cellshift.data import log_normalized
from cellshift.embed import embed_hvg, embed_pca


def make_counts(n_cells=60, n_genes=30, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.gamma(1.0, 2.0, size=n_genes), size=(n_cells, n_genes)).astype(np.int32)
    counts[:, 0] += 1  # no empty cells
    return ad.AnnData(X=sparse.csr_matrix(counts), var={"gene": [f"G{i}" for i in range(n_genes)]})


def test_log_normalized_matches_formula_and_leaves_counts_alone():
    adata = make_counts()
    before = adata.X.copy()
    values = log_normalized(adata).X.toarray()
    counts = adata.X.toarray().astype(np.float64)
    expected = np.log1p(1e4 * counts / counts.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    assert (adata.X != before).nnz == 0


def test_embed_pca_writes_obsm_and_caps_components():
    adata = make_counts(n_cells=60, n_genes=30)
    before = adata.X.copy()
    assert embed_pca(adata) is None
    assert adata.obsm["X_pca"].shape == (60, 29)  # min(200, n_genes - 1, n_cells - 1)
    assert (adata.X != before).nnz == 0
    small = embed_pca(make_counts(n_cells=10), n_comps=5, key_added="X_small", copy=True)
    assert small.obsm["X_small"].shape == (10, 5)


def test_embed_pca_is_deterministic_and_centred():
    first = embed_pca(make_counts(), n_comps=5, copy=True).obsm["X_pca"]
    second = embed_pca(make_counts(), n_comps=5, copy=True).obsm["X_pca"]
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first.mean(axis=0), 0.0, atol=1e-4)


def test_embed_hvg_keeps_top_genes_with_their_names():
    adata = make_counts(n_genes=40)
    embed_hvg(adata, n_top_genes=10)
    genes = adata.uns["X_hvg"]["genes"]
    assert adata.obsm["X_hvg"].shape == (60, 10) and len(genes) == 10
    columns = [adata.var_names.get_loc(gene) for gene in genes]
    np.testing.assert_allclose(adata.obsm["X_hvg"], log_normalized(adata).X.toarray()[:, columns], rtol=1e-6)


def test_embed_hvg_uses_all_genes_when_fewer_than_asked():
    adata = embed_hvg(make_counts(n_genes=12), copy=True)
    assert adata.obsm["X_hvg"].shape == (60, 12)
    assert adata.uns["X_hvg"]["genes"] == list(adata.var_names)


def test_embed_pca_rejects_a_single_cell():
    with pytest.raises(ValueError, match="at least 2 cells"):
        embed_pca(make_counts(n_cells=1))
