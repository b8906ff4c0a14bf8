import numpy as np
import pandas as pd
import pytest

import cellshift.embed.gene_embeddings as gene_embeddings
from cellshift import datasets
from cellshift.embed import (
    family_gene_embedding,
    gene_embedding,
    grn_gene_embedding,
    pca_gene_embedding,
    random_gene_embedding,
)


@pytest.mark.slow
def test_family_embedding_places_genes_of_one_hgnc_group_together():
    first = family_gene_embedding(n_components=32)
    assert first.shape[1] == 32 and first.shape[0] > 15_000
    pd.testing.assert_frame_equal(first, family_gene_embedding(n_components=32))
    unit = first.loc[["STAT1", "STAT3", "HOXA1"]].to_numpy()
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > 0.99  # both only in "SH2 domain containing"
    assert abs(unit[0] @ unit[2]) < 0.5


@pytest.mark.slow
def test_grn_embedding_concatenates_regulator_and_target_roles():
    embedding = grn_gene_embedding(n_components=16)
    assert embedding.shape[1] == 16
    pd.testing.assert_frame_equal(embedding, grn_gene_embedding(n_components=16))
    edges = pd.concat([datasets.grn("dorothea_hs").query("confidence in ['A', 'B', 'C']"), datasets.grn("trrust")])
    never_target = sorted(set(edges["tf"]) - set(edges["target"]))
    never_tf = sorted(set(edges["target"]) - set(edges["tf"]))
    tf_only = embedding.loc[embedding.index.intersection(never_target)]
    target_only = embedding.loc[embedding.index.intersection(never_tf)]
    assert len(tf_only) > 10 and len(target_only) > 1000
    assert (tf_only.iloc[:, 8:] == 0).all().all() and (target_only.iloc[:, :8] == 0).all().all()
    assert set(embedding.index) <= set(edges["tf"]) | set(edges["target"])


def test_random_embedding_is_seeded():
    first = random_gene_embedding(["A", "B", "A", "C"], n_components=5, seed=1)
    assert list(first.index) == ["A", "B", "C"] and first.shape == (3, 5)
    pd.testing.assert_frame_equal(first, random_gene_embedding(["A", "B", "C"], n_components=5, seed=1))
    assert not np.allclose(first, random_gene_embedding(["A", "B", "C"], n_components=5, seed=2))


def test_pca_of_changes_gives_the_right_singular_vectors_as_gene_loadings():
    rng = np.random.default_rng(0)
    changes = pd.DataFrame(
        rng.normal(size=(12, 30)) @ np.diag(np.linspace(3, 0.1, 30)), columns=[f"g{j}" for j in range(30)]
    )
    loadings = pca_gene_embedding(changes, n_components=4)
    _, _, vt = np.linalg.svd(changes.to_numpy() - changes.to_numpy().mean(axis=0), full_matrices=False)
    assert loadings.shape == (30, 4) and list(loadings.index) == list(changes.columns)
    for k in range(4):
        assert abs(loadings.iloc[:, k] @ vt[k]) == pytest.approx(1.0, abs=1e-6)
    holes = changes.copy()
    holes.iloc[0, 0] = np.nan
    assert np.isfinite(pca_gene_embedding(holes, n_components=4).to_numpy()).all()
    assert np.isnan(holes.iloc[0, 0])  # the input is not filled in place


def test_pca_of_control_cells_and_the_registry():
    adata = datasets.papalexi2021()
    control = adata[adata.obs["target_gene"] == "non-targeting"][:400]
    embedding = gene_embedding("pca", ["STAT1", "JAK2", "NOT_A_GENE", "STAT1"], cells=control, n_components=10)
    assert list(embedding.index) == ["STAT1", "JAK2"] and embedding.shape == (2, 10)
    full = pca_gene_embedding(control, n_components=10)
    assert full.shape == (299, 10)
    np.testing.assert_allclose(embedding.loc["JAK2"], full.loc["JAK2"])
    with pytest.raises(ValueError, match="unknown gene embedding"):
        gene_embedding("word2vec", ["STAT1"])
    with pytest.raises(ValueError, match="control cells"):
        gene_embedding("pca", ["STAT1"])


def test_model_embedding_maps_symbols_to_the_models_ensembl_ids(monkeypatch):
    calls = []

    def fake_model_gene_embeddings(model_dir, adata, *, layer=-1, max_cells=1000, batch_size=8):
        calls.append((model_dir, adata.n_obs, layer))
        index = ["ENSG00000115415", "ENSG00000096968", "ENSG00000141510"]  # STAT1, JAK2, TP53
        return pd.DataFrame(np.arange(12.0).reshape(3, 4), index=index)

    monkeypatch.setattr(gene_embeddings, "model_gene_embeddings", fake_model_gene_embeddings)
    cells = datasets.papalexi2021()[:50]
    embedding = gene_embedding(
        "model", ["JAK2", "STAT1", "IFNGR1"], cells=cells, model_dir="checkpoint", model_layer=-2
    )
    assert list(embedding.index) == ["JAK2", "STAT1"]  # IFNGR1 is not in the model's table
    np.testing.assert_allclose(embedding.loc["STAT1"], [0, 1, 2, 3])
    np.testing.assert_allclose(embedding.loc["JAK2"], [4, 5, 6, 7])
    assert calls == [("checkpoint", 50, -2)]
    with pytest.raises(ValueError, match="model_dir"):
        gene_embedding("model", ["STAT1"], cells=cells)
