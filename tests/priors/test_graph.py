import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from cellshift.priors import GeneGraph, bipartite_spectral_embedding, embed_graph
from cellshift.priors.walks import cooccurrence, random_walks, shifted_ppmi, walk_embedding


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


def two_cliques(size=6):
    """Two disconnected cliques of ``size`` nodes each, as a symmetric adjacency."""
    block = np.ones((size, size)) - np.eye(size)
    return sparse.csr_matrix(np.kron(np.eye(2), block))


def cosine(table, a, b):
    x, y = table.loc[a].to_numpy(), table.loc[b].to_numpy()
    return x @ y / np.linalg.norm(x) / np.linalg.norm(y)


def test_random_walks_step_along_edges_and_depend_only_on_the_seed():
    adjacency = sparse.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 1, 0]], float))
    walks = random_walks(adjacency, walks_per_node=3, walk_length=8, seed=4)
    assert walks.shape == (12, 8)
    np.testing.assert_array_equal(walks[:, 0], np.repeat(np.arange(4), 3))
    dense = adjacency.toarray()
    assert all(dense[a, b] == 1 for a, b in zip(walks[:, :-1].ravel(), walks[:, 1:].ravel()))
    np.testing.assert_array_equal(walks, random_walks(adjacency, 3, 8, seed=4))
    assert not np.array_equal(walks, random_walks(adjacency, 3, 8, seed=5))


def test_cooccurrence_counts_pairs_within_the_window_with_word2vec_weights():
    walks = np.array([[0, 1, 2, 3], [2, 2, 0, 1]])
    expected = np.zeros((4, 4))
    window = 2
    for walk in walks:
        for a in range(len(walk)):
            for b in range(len(walk)):
                if 1 <= abs(a - b) <= window:
                    expected[walk[a], walk[b]] += (window - abs(a - b) + 1) / window
    np.testing.assert_allclose(cooccurrence(walks, 4, window).toarray(), expected)


def test_shifted_ppmi_matches_the_formula():
    counts = np.array([[0, 4, 1], [4, 0, 2], [1, 2, 2]], float)
    alpha, k = 0.75, 2
    context = counts.sum(axis=0) ** alpha
    with np.errstate(divide="ignore"):
        pmi = np.log(counts * context.sum() / counts.sum(axis=1)[:, None] / context[None, :])
    expected = np.maximum(pmi - np.log(k), 0)
    got = shifted_ppmi(sparse.csr_matrix(counts), smoothing=alpha, negative=k).toarray()
    np.testing.assert_allclose(got, expected)


def test_walk_embedding_separates_disconnected_groups_and_is_seeded():
    vectors = walk_embedding(two_cliques(), n_components=4, seed=0)
    table = pd.DataFrame(vectors, index=[f"n{i}" for i in range(12)])
    assert cosine(table, "n0", "n1") > 0.9 and abs(cosine(table, "n0", "n7")) < 0.1
    np.testing.assert_array_equal(vectors, walk_embedding(two_cliques(), n_components=4, seed=0))
    assert walk_embedding(two_cliques(), n_components=50, seed=0).shape == (12, 12)


@pytest.mark.parametrize("method", ["walk", "spectral"])
def test_embed_graph_gives_genes_only_rows_and_keeps_groups_apart(method):
    graph = GeneGraph(two_block_graph(), "bipartite")
    table = embed_graph(graph, method=method, dim=2, seed=0)
    assert set(table.index) <= set(graph.genes) and not set(table.index) & {"A1", "A2", "B1", "B2"}
    assert cosine(table, "a0", "a1") > 0.9 and abs(cosine(table, "a0", "b0")) < 0.2
    directed = GeneGraph(pd.DataFrame({"source": ["t1", "t1", "t2"], "target": ["g1", "g2", "t1"]}), "directed")
    assert set(embed_graph(directed, method=method, dim=2).index) <= {"t1", "t2", "g1", "g2"}


def test_graph_inputs_are_checked():
    with pytest.raises(ValueError, match="walk, spectral"):
        embed_graph(GeneGraph(two_block_graph(), "bipartite"), method="node2vec")
    with pytest.raises(ValueError, match="graph kind"):
        GeneGraph(two_block_graph(), "hypergraph")
    with pytest.raises(ValueError, match="at least one edge"):
        GeneGraph(pd.DataFrame({"source": [], "target": []}), "undirected")
