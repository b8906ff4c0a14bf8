"""Per-gene summaries of tokenised cells: contextual embeddings from a model, and expression correlations."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from cellshift.models import CellshiftModel
from cellshift.tasks.cell_tokens import CellSource
from cellshift.tasks.perturbation_ops import gene_region
from cellshift.tasks.variant_batches import Variant, encode_variants, gene_tokens_of


def contextual_sums(
    model: CellshiftModel, source: CellSource, rows: np.ndarray, *, layer: int = -1, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of each gene token's contextual embedding over the cells ``rows``.

    The mean ``sums[g] / counts[g]`` is Cole et al.'s contextual gene embedding: the hidden state
    (``layer``) at gene ``g``'s token, averaged over the cells that contain ``g``
    (as :func:`cellshift.embed.model_genes.model_gene_embeddings`, here for corpora as well).

    Returns
    -------
    sums, counts : numpy.ndarray
        ``(vocabulary, hidden)`` float64 sums and ``(vocabulary,)`` numbers of cells.
    """
    config = model.config
    sums = np.zeros((config.vocab_size, config.hidden_size))
    counts = np.zeros(config.vocab_size)
    order = rows[np.argsort(-source.cells.lengths[rows], kind="stable")]
    variants = (Variant(int(r), -1, 0, *source.cell_tokens(int(r))) for r in order)
    batches = encode_variants(
        model, source.cells, variants, batch_size=batch_size, gene_layer=layer, with_gene_states=True
    )
    for batch in batches:
        for variant, states in zip(batch.variants, batch.gene_states, strict=True):
            tokens = gene_tokens_of(variant.input_ids, config.special_token_ids)
            np.add.at(sums, tokens, states)
            np.add.at(counts, tokens, 1.0)
    return sums, counts


def expression_matrix(source: CellSource, rows: np.ndarray, n_tokens: int) -> sparse.csr_matrix:
    """Cells x vocabulary of the token values (``log1p`` of normalised expression; 0 when absent)."""
    special = source.cells.collate.keeps_eos
    indptr, indices, data = [0], [], []
    for row in rows:
        ids, values = source.cell_tokens(int(row))
        region = gene_region(len(ids), special)
        indices.append(ids[region])
        data.append(values[region])
        indptr.append(indptr[-1] + len(ids[region]))
    return sparse.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)), shape=(len(rows), n_tokens)
    )


def correlation(matrix: sparse.csr_matrix, columns_a: np.ndarray, columns_b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column in ``columns_a`` with every column in ``columns_b`` (0 for a constant one).

    ``r_ab = (E[xy] - E[x]E[y]) / (sd_x sd_y)`` over the rows of a sparse matrix, without densifying it.
    """
    n = matrix.shape[0]
    a, b = matrix[:, columns_a].tocsc(), matrix[:, columns_b].tocsc()
    mean_a, mean_b = np.asarray(a.mean(axis=0)).ravel(), np.asarray(b.mean(axis=0)).ravel()
    sd_a = np.sqrt(np.maximum(np.asarray(a.multiply(a).mean(axis=0)).ravel() - mean_a**2, 0.0))
    sd_b = np.sqrt(np.maximum(np.asarray(b.multiply(b).mean(axis=0)).ravel() - mean_b**2, 0.0))
    covariance = (a.T @ b).toarray() / n - np.outer(mean_a, mean_b)
    scale = np.outer(sd_a, sd_b)
    return np.divide(covariance, scale, out=np.zeros_like(covariance), where=scale > 0)
