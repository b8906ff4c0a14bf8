"""Regularised spectral embeddings of bipartite, directed and undirected graphs (DI-SIM).

Rohe, Qin & Yu 2016, "Co-clustering directed graphs to discover asymmetries and directional
communities": with biadjacency ``B`` (sources x targets: TFs x target genes, or genes x HGNC
groups), out- and in-degrees ``o``, ``p`` and ``tau`` = the mean degree of each side,

    L = (O + tau_o)^{-1/2} B (P + tau_p)^{-1/2}

and the embedding is the top ``k`` singular vectors ``U`` (sources) and ``V`` (targets) of ``L``.
Adding ``tau`` to the degrees keeps the many small components of these graphs (the HGNC groups
form ~600) from taking over the leading vectors, as they do in the unregularised normalised graph
where each scores the maximum of 1. Edges are unweighted; repeated pairs count once.

- bipartite graph (genes x groups): a gene's vector is its row of ``U``;
- directed graph (TF -> target): ``[U row, V row]`` with ``k = dim // 2`` each, zeros for a role
  the gene does not have;
- undirected graph (co-expression pairs): ``B`` is the symmetric adjacency, so ``U = V`` up to
  sign and a gene's vector is its row of ``U``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg, sparse

from cellshift.priors._frames import informative_rows, vector_frame


def bipartite_spectral_embedding(
    edges: pd.DataFrame, *, n_components: int = 64, regularization: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Regularised spectral embedding of a bipartite (or directed) graph given as an edge list.

    See the module docstring for the formula (Rohe, Qin & Yu 2016). The SVD is exact: the
    eigendecomposition of the Gram matrix of ``L`` on its smaller side (LAPACK, deterministic).
    Repeated pairs are dropped. Each pair of singular vectors is signed so that the source-side
    entry of largest magnitude is positive. Nodes whose vector is zero (their part of the graph
    lies outside the top ``n_components`` singular vectors) carry no information and have no row.

    Parameters
    ----------
    edges
        Columns ``source`` and ``target``: source nodes (rows of ``B``), target nodes (columns).
    n_components
        Number of singular vectors (at most the number of nodes on the smaller side).
    regularization
        ``tau`` added to every degree on both sides; ``None`` uses each side's mean degree.

    Returns
    -------
    sources, targets : pandas.DataFrame
        Source nodes x components (``U``) and target nodes x components (``V``), indexed by name.
    """
    pairs = edges[["source", "target"]].astype(str).drop_duplicates()
    sources, targets = pd.Index(np.unique(pairs["source"])), pd.Index(np.unique(pairs["target"]))
    n_used = min(n_components, len(sources), len(targets))
    if n_used < 1:
        raise ValueError("a spectral embedding needs at least one edge")
    rows, columns = sources.get_indexer(pairs["source"]), targets.get_indexer(pairs["target"])
    biadjacency = sparse.csr_matrix((np.ones(len(pairs)), (rows, columns)), shape=(len(sources), len(targets)))
    out_degree, in_degree = np.asarray(biadjacency.sum(axis=1)).ravel(), np.asarray(biadjacency.sum(axis=0)).ravel()
    tau_out = out_degree.mean() if regularization is None else regularization
    tau_in = in_degree.mean() if regularization is None else regularization
    row_scale, column_scale = 1.0 / np.sqrt(out_degree + tau_out), 1.0 / np.sqrt(in_degree + tau_in)
    laplacian = sparse.diags(row_scale) @ biadjacency @ sparse.diags(column_scale)
    transpose = laplacian.shape[0] > laplacian.shape[1]
    small = (laplacian.T if transpose else laplacian).tocsr()  # small side x large side
    gram = (small @ small.T).toarray()
    eigenvalues, small_vectors = linalg.eigh(gram, subset_by_index=[len(gram) - n_used, len(gram) - 1])
    singular = np.sqrt(np.clip(eigenvalues[::-1], 0.0, None))
    small_vectors = small_vectors[:, ::-1]
    large_vectors = (small.T @ small_vectors) / np.where(singular > 0, singular, 1.0)
    left, right = (large_vectors, small_vectors) if transpose else (small_vectors, large_vectors)
    sign = np.sign(left[np.abs(left).argmax(axis=0), np.arange(n_used)])
    return informative_rows(vector_frame(left * sign, sources)), informative_rows(vector_frame(right * sign, targets))


def directed_spectral_embedding(edges: pd.DataFrame, *, n_components: int = 64) -> pd.DataFrame:
    """DI-SIM embedding of a directed graph: ``[row of U, row of V]`` per node.

    :func:`bipartite_spectral_embedding` with ``n_components // 2`` singular vectors (at least 1);
    a node that is only a source (or only a target) has zeros in the other half.

    Parameters
    ----------
    edges
        Columns ``source`` (e.g. the TF) and ``target``.
    n_components
        Dimension (``2 * max(1, n_components // 2)``).

    Returns
    -------
    pandas.DataFrame
        Nodes (sorted) x components.
    """
    sources, targets = bipartite_spectral_embedding(edges, n_components=max(1, n_components // 2))
    nodes = sources.index.union(targets.index)
    both = np.hstack([sources.reindex(nodes).fillna(0.0), targets.reindex(nodes).fillna(0.0)])
    return vector_frame(both, nodes)


def undirected_spectral_embedding(edges: pd.DataFrame, *, n_components: int = 64) -> pd.DataFrame:
    """Spectral embedding of an undirected graph: the rows of ``U`` of its symmetric adjacency.

    Parameters
    ----------
    edges
        Columns ``source`` and ``target``; each pair is an undirected edge.
    n_components
        Dimension (at most the number of nodes).

    Returns
    -------
    pandas.DataFrame
        Nodes (sorted) x components.
    """
    pairs = edges[["source", "target"]]
    both_ways = pd.concat([pairs, pairs.rename(columns={"source": "target", "target": "source"})])
    nodes, _ = bipartite_spectral_embedding(both_ways, n_components=n_components)
    return nodes
