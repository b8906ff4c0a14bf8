import anndata as ad
import numpy as np
import pytest
from scipy import sparse

from cellshift.embed import embed_hvg, embed_pca
from cellshift.embed.registry import (
    BASELINES,
    CELL_EMBEDDINGS,
    EmbedOptions,
    add_cell_embedding,
    get_cell_embedding,
)


def make_counts(n_cells=60, n_genes=30, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.gamma(1.0, 2.0, size=n_genes), size=(n_cells, n_genes)).astype(np.int32)
    counts[:, 0] += 1  # no empty cells
    return ad.AnnData(X=sparse.csr_matrix(counts))


def test_every_name_has_one_obsm_key():
    keys = {name: embedding.key for name, embedding in CELL_EMBEDDINGS.items()}
    assert keys == {
        "pca": "X_pca",
        "hvg": "X_hvg",
        "scvi-linear": "X_scvi_linear",
        "scvi-5l": "X_scvi_5l",
        "model": "X_cellshift",
        "pretrained": "X_cellshift_pretrained",
        "finetuned": "X_cellshift_finetuned",
    }
    assert set(BASELINES) <= set(CELL_EMBEDDINGS)
    assert [name for name, embedding in CELL_EMBEDDINGS.items() if embedding.needs_model] == [
        "model",
        "pretrained",
        "finetuned",
    ]


def test_an_unknown_name_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="unknown embedding 'umap'") as error:
        get_cell_embedding("umap")
    for name in CELL_EMBEDDINGS:
        assert name in str(error.value)


def test_added_embeddings_equal_the_functions_they_name():
    adata, expected = make_counts(), make_counts()
    assert add_cell_embedding(adata, "pca") == "X_pca"
    assert add_cell_embedding(adata, "hvg", EmbedOptions(layer=None)) == "X_hvg"
    embed_pca(expected)
    embed_hvg(expected)
    # the last component of this small random panel is numerically 0, its sign arbitrary; float32 PCA
    # with multithreaded BLAS on a busy machine differs between two runs by up to ~1e-4
    np.testing.assert_allclose(np.abs(adata.obsm["X_pca"]), np.abs(expected.obsm["X_pca"]), rtol=5e-3, atol=5e-4)
    np.testing.assert_array_equal(adata.obsm["X_hvg"], expected.obsm["X_hvg"])


def test_a_model_embedding_needs_a_model_directory():
    with pytest.raises(ValueError, match="model directory"):
        add_cell_embedding(make_counts(), "pretrained")
