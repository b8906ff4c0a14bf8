import numpy as np
import pandas as pd
import pytest

import cellshift.embed.gene_embeddings as gene_embeddings
from cellshift import datasets
from cellshift.embed import (
    bipartite_spectral_embedding,
    family_gene_embedding,
    gene_embedding,
    grn_gene_embedding,
    pca_gene_embedding,
    random_gene_embedding,
)


def two_block_graph():
    """Genes a0..a5 in groups A1/A2 and genes b0..b4 in groups B1/B2, nothing shared."""
    edges = [(f"a{i}", "A1" if i < 4 else "A2") for i in range(6)] + [("a3", "A2")]
    edges += [(f"b{i}", "B1" if i < 3 else "B2") for i in range(5)] + [("b2", "B2")]
    return pd.DataFrame(edges, columns=["source", "target"])


def test_bipartite_spectral_embedding_equals_the_svd_of_the_regularised_graph():
    edges = two_block_graph()
    genes, groups = bipartite_spectral_embedding(edges, n_components=3)
    sources, targets = sorted(edges["source"].unique()), sorted(edges["target"].unique())
    incidence = np.zeros((len(sources), len(targets)))
    for source, target in edges.itertuples(index=False):
        incidence[sources.index(source), targets.index(target)] = 1.0
    out_degree, in_degree = incidence.sum(axis=1), incidence.sum(axis=0)
    laplacian = incidence / np.sqrt(out_degree + out_degree.mean())[:, None] / np.sqrt(in_degree + in_degree.mean())
    u, _, vt = np.linalg.svd(laplacian)
    assert genes.shape == (11, 3) and groups.shape == (4, 3)
    assert list(genes.index) == sources and list(groups.index) == targets
    for k in range(3):  # same singular vectors up to sign
        sign = np.sign(u[:, k] @ genes.iloc[:, k])
        np.testing.assert_allclose(genes.iloc[:, k], sign * u[:, k], atol=1e-8)
        np.testing.assert_allclose(groups.iloc[:, k], sign * vt[k], atol=1e-8)
    again, _ = bipartite_spectral_embedding(edges.iloc[::-1], n_components=3)
    pd.testing.assert_frame_equal(genes, again)  # deterministic, independent of edge order


def test_spectral_embedding_separates_unconnected_blocks_and_drops_genes_it_cannot_place():
    genes, _ = bipartite_spectral_embedding(two_block_graph(), n_components=2)
    unit = genes.to_numpy() / np.linalg.norm(genes.to_numpy(), axis=1, keepdims=True)
    cosine = pd.DataFrame(unit @ unit.T, index=genes.index, columns=genes.index)
    assert cosine.loc["a0", "a1"] > 0.99 and abs(cosine.loc["a0", "b0"]) < 0.01
    lonely = pd.concat([two_block_graph(), pd.DataFrame({"source": ["z"], "target": ["Z"]})])
    genes, _ = bipartite_spectral_embedding(lonely, n_components=2)
    assert "z" not in genes.index  # its component lies outside the top 2 vectors: zero, so no row


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
