"""Gene graphs and their embeddings: one entry point, :func:`embed_graph`, for every graph source.

A :class:`GeneGraph` is an edge list of one of three kinds:

- ``directed``: TF -> target (GRN); every node is a gene;
- ``bipartite``: gene -> group (HGNC gene families); only the sources are genes;
- ``undirected``: gene -- gene (co-expression pairs).

Methods (registry :data:`GRAPH_METHODS`):

- ``walk``: random walks + the closed form of skip-gram (:mod:`cellshift.priors.walks`), on the
  undirected version of the graph (group nodes kept apart from gene nodes); the default, chosen by
  ``benchmarks/priors.py`` (held-out edges and same-group pairs are recovered better, see
  ``benchmarks/results/priors.md``);
- ``spectral``: the regularised spectral embedding of :mod:`cellshift.priors.spectral` (DI-SIM
  for directed graphs).

Genes whose vector is zero carry no information and have no row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from cellshift.priors._frames import informative_rows, vector_frame
from cellshift.priors.spectral import (
    bipartite_spectral_embedding,
    directed_spectral_embedding,
    undirected_spectral_embedding,
)
from cellshift.priors.walks import walk_embedding

GRAPH_KINDS = ("directed", "bipartite", "undirected")


@dataclass(frozen=True)
class GeneGraph:
    """An edge list of genes (and, for a bipartite graph, groups).

    Attributes
    ----------
    edges
        Columns ``source`` and ``target`` (strings); repeated pairs count once.
    kind
        ``directed``, ``bipartite`` or ``undirected`` (see the module docstring).
    """

    edges: pd.DataFrame
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in GRAPH_KINDS:
            raise ValueError(f"unknown graph kind {self.kind!r}; choose from {', '.join(GRAPH_KINDS)}")
        pairs = self.edges[["source", "target"]].astype(str).drop_duplicates().reset_index(drop=True)
        if pairs.empty:
            raise ValueError("a gene graph needs at least one edge")
        object.__setattr__(self, "edges", pairs)

    @property
    def genes(self) -> pd.Index:
        """The gene nodes, sorted."""
        sources, targets = self.edges["source"].to_numpy(), self.edges["target"].to_numpy()
        return pd.Index(np.unique(sources if self.kind == "bipartite" else np.concatenate([sources, targets])))


def embed_graph(graph: GeneGraph, *, method: str = "walk", dim: int = 128, seed: int = 0) -> pd.DataFrame:
    """Embed the genes of ``graph`` with a registered method.

    Parameters
    ----------
    graph
        The gene graph.
    method
        One of :data:`GRAPH_METHODS` (``walk``, ``spectral``).
    dim
        Dimension (fewer when the graph has fewer nodes; ``spectral`` on a directed graph gives
        ``2 * (dim // 2)``).
    seed
        Seed of the ``walk`` method (``spectral`` is exact and needs none).

    Returns
    -------
    pandas.DataFrame
        Genes (sorted) x dimensions, float64, columns ``dim0, dim1, ...``.
    """
    if method not in GRAPH_METHODS:
        raise ValueError(f"unknown graph embedding {method!r}; choose from {', '.join(GRAPH_METHODS)}")
    return GRAPH_METHODS[method](graph, dim, seed)


def _spectral(graph: GeneGraph, dim: int, seed: int) -> pd.DataFrame:
    if graph.kind == "directed":
        return informative_rows(directed_spectral_embedding(graph.edges, n_components=dim))
    if graph.kind == "bipartite":
        genes, _ = bipartite_spectral_embedding(graph.edges, n_components=dim)
        return genes
    return undirected_spectral_embedding(graph.edges, n_components=dim)


def _walk(graph: GeneGraph, dim: int, seed: int) -> pd.DataFrame:
    genes = graph.genes
    if graph.kind == "bipartite":
        groups = pd.Index(np.unique(graph.edges["target"]))
        rows = genes.get_indexer(graph.edges["source"])
        columns = len(genes) + groups.get_indexer(graph.edges["target"])
        n_nodes = len(genes) + len(groups)
    else:
        rows, columns = genes.get_indexer(graph.edges["source"]), genes.get_indexer(graph.edges["target"])
        n_nodes = len(genes)
    one_way = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(n_nodes, n_nodes))
    adjacency = ((one_way + one_way.T) > 0).astype(np.float64).tocsr()
    vectors = walk_embedding(adjacency, n_components=dim, seed=seed)
    return informative_rows(vector_frame(vectors[: len(genes)], genes))


GRAPH_METHODS: dict[str, Callable[[GeneGraph, int, int], pd.DataFrame]] = {
    "walk": _walk,
    "spectral": _spectral,
}
