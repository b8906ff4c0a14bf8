"""Random-walk graph embedding: DeepWalk walks, then the closed form of skip-gram (PPMI + SVD).

GeneCompass embeds its prior graphs with gene2vec (skip-gram on gene "sentences"); DeepWalk
(Perozzi et al. 2014) makes the sentences from uniform random walks (node2vec with ``p = q = 1``).
Instead of training skip-gram with negative sampling (SGNS), this module factorises the matrix
SGNS implicitly factorises (Levy & Goldberg 2014, "Neural word embedding as implicit matrix
factorization"; the hyper-parameters of Levy, Goldberg & Dagan 2015):

1. walks: from every node ``walks_per_node`` walks of ``walk_length`` nodes, each step to a
   uniformly chosen neighbour of the undirected graph (all walks advance together, one seeded
   generator);
2. co-occurrence: ``#(i, j) = sum`` over walk positions ``a`` and offsets ``1 <= d <= window`` of
   ``(window - d + 1) / window`` for node ``i`` at ``a`` and ``j`` at ``a +- d`` (word2vec's
   dynamic window, in expectation);
3. shifted positive PMI with context-distribution smoothing ``alpha``:
   ``PMI(i, j) = log(#(i, j) * sum_c #(c)^alpha / (#(i) * #(j)^alpha))`` with
   ``#(i) = sum_j #(i, j)``, and ``M = max(PMI - log(negative), 0)``;
4. ``M ~ U S V^T`` (randomised truncated SVD, seeded; largest entry of each ``U`` column positive);
   the node vectors are ``W = U S^{1/2}`` (the symmetric weighting of Levy et al.).

Everything is a function of the graph and the seed. No dense nodes x nodes matrix is formed.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.utils.extmath import randomized_svd

WALK_BATCH = 20_000  # walks whose co-occurrences are counted at once (bounds memory)


def random_walks(adjacency: sparse.csr_matrix, walks_per_node: int, walk_length: int, seed: int) -> np.ndarray:
    """Uniform random walks, ``walks_per_node`` from every node, as a ``(walks, walk_length)`` array.

    Parameters
    ----------
    adjacency
        Symmetric nodes x nodes adjacency (CSR; the stored entries are the neighbours).
    walks_per_node, walk_length
        Walks started at each node (walk ``w`` starts at node ``w // walks_per_node``) and nodes per walk.
    seed
        Seed of the generator that picks every step.

    Returns
    -------
    numpy.ndarray
        Node indices, int32; a node without neighbours stays where it is.
    """
    rng = np.random.default_rng([seed, 1])
    n_nodes = adjacency.shape[0]
    indptr, indices = adjacency.indptr, adjacency.indices
    degree = np.diff(indptr)
    walks = np.empty((n_nodes * walks_per_node, walk_length), dtype=np.int32)
    walks[:, 0] = np.repeat(np.arange(n_nodes, dtype=np.int32), walks_per_node)
    for step in range(1, walk_length):
        current = walks[:, step - 1]
        choice = (rng.random(len(current)) * degree[current]).astype(np.int64)
        moves = degree[current] > 0
        walks[:, step] = current
        walks[moves, step] = indices[indptr[current[moves]] + choice[moves]]
    return walks


def cooccurrence(walks: np.ndarray, n_nodes: int, window: int) -> sparse.csr_matrix:
    """Weighted co-occurrence counts of nodes within ``window`` steps of each other (step 2).

    Parameters
    ----------
    walks
        ``(walks, walk_length)`` node indices.
    n_nodes
        Number of nodes.
    window
        Largest offset counted; offset ``d`` weighs ``(window - d + 1) / window``.

    Returns
    -------
    scipy.sparse.csr_matrix
        Symmetric nodes x nodes counts, float64.
    """
    counts = sparse.csr_matrix((n_nodes, n_nodes))
    for start in range(0, len(walks), WALK_BATCH):
        batch = walks[start : start + WALK_BATCH]
        rows, columns, weights = [], [], []
        for offset in range(1, min(window, walks.shape[1] - 1) + 1):
            rows.append(batch[:, :-offset].ravel())
            columns.append(batch[:, offset:].ravel())
            weights.append(np.full(rows[-1].size, (window - offset + 1) / window))
        if not rows:
            break
        rows, columns, weights = np.concatenate(rows), np.concatenate(columns), np.concatenate(weights)
        one_way = sparse.csr_matrix((weights, (rows, columns)), shape=(n_nodes, n_nodes))
        counts = counts + one_way + one_way.T
    return counts.tocsr()


def shifted_ppmi(counts: sparse.csr_matrix, *, smoothing: float = 0.75, negative: int = 1) -> sparse.csr_matrix:
    """Shifted positive PMI of a co-occurrence matrix with smoothed context counts (step 3).

    Parameters
    ----------
    counts
        Nodes x contexts co-occurrence counts.
    smoothing
        ``alpha``, the power of the context counts (0.75 as in word2vec).
    negative
        ``k`` of SGNS: PMI is shifted down by ``log k`` (``k = 1``: plain PPMI).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``max(PMI - log k, 0)`` on the stored pairs, zeros elsewhere.
    """
    counts = counts.tocoo()
    node_totals = np.asarray(counts.sum(axis=1)).ravel()
    context_mass = np.asarray(counts.sum(axis=0)).ravel() ** smoothing
    pmi = np.log(counts.data * context_mass.sum() / (node_totals[counts.row] * context_mass[counts.col]))
    values = np.maximum(pmi - np.log(negative), 0.0)
    kept = values > 0
    matrix = sparse.csr_matrix((values[kept], (counts.row[kept], counts.col[kept])), shape=counts.shape)
    return matrix


def walk_embedding(
    adjacency: sparse.csr_matrix,
    *,
    n_components: int,
    seed: int = 0,
    walks_per_node: int = 10,
    walk_length: int = 40,
    window: int = 5,
    smoothing: float = 0.75,
    negative: int = 1,
) -> np.ndarray:
    """Node vectors ``W = U S^{1/2}`` of the shifted PPMI of random-walk co-occurrences.

    See the module docstring for the algorithm (steps 1-4).

    Parameters
    ----------
    adjacency
        Symmetric nodes x nodes adjacency (unweighted: any stored entry is an edge).
    n_components
        Dimension (at most the number of nodes).
    seed
        Seed of the walks and of the randomised SVD.
    walks_per_node, walk_length, window
        Walks per node, nodes per walk and the co-occurrence window.
    smoothing, negative
        Context-distribution smoothing ``alpha`` and the SGNS shift ``k``.

    Returns
    -------
    numpy.ndarray
        Nodes x ``min(n_components, n_nodes)`` vectors, float64.
    """
    adjacency = sparse.csr_matrix(adjacency, dtype=np.float64)
    adjacency.sort_indices()
    walks = random_walks(adjacency, walks_per_node, walk_length, seed)
    matrix = shifted_ppmi(cooccurrence(walks, adjacency.shape[0], window), smoothing=smoothing, negative=negative)
    n_used = min(n_components, adjacency.shape[0])
    left, singular, _ = randomized_svd(matrix, n_used, n_iter=7, random_state=seed)
    return left * np.sqrt(singular)
