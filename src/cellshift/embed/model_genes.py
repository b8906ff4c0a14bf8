"""Gene embeddings from a cellshift model: each gene's contextual embedding averaged over cells."""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from cellshift.embed._inference import encoded_batches, hidden_states, load_encoder
from cellshift.models import CellshiftModel


def model_gene_embeddings(
    model: str | os.PathLike | CellshiftModel,
    adata: ad.AnnData,
    *,
    layer: int = -1,
    counts_layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    max_cells: int | None = 2000,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Mean contextual embedding of every gene token over the cells it occurs in (Cole et al.).

    ``model(cells)`` gives cells x tokens x dim hidden states; for gene ``g`` the embedding is
    the mean of ``h[c, position of g in c]`` over the cells ``c`` whose tokens include ``g``
    (cells without the gene do not count toward its mean).

    Parameters
    ----------
    model
        A model directory or a loaded :class:`CellshiftModel`.
    adata
        Cells with raw counts (e.g. the control cells of a screen).
    layer
        Index into the hidden states (0 = embedding output, -1 = last layer).
    counts_layer, gene_key, species
        Where the counts are, which var column names the genes, the species.
    max_cells
        Use a seeded random subset of at most this many cells.
    batch_size, seed, device, progress
        Cells per forward pass; subset seed; device (default: a GPU when visible); progress bar.

    Returns
    -------
    Genes x dim, indexed by the human Ensembl IDs of the vocabulary tokens seen in the cells.
    """
    encoder = load_encoder(model, device)
    if max_cells is not None and adata.n_obs > max_cells:
        chosen = np.sort(np.random.default_rng(seed).choice(adata.n_obs, max_cells, replace=False))
        adata = adata[chosen]
    vocab_size, hidden = encoder.config.vocab_size, encoder.config.hidden_size
    sums = torch.zeros(vocab_size, hidden, dtype=torch.float64)
    counts = torch.zeros(vocab_size, dtype=torch.float64)
    special = torch.as_tensor(encoder.config.special_token_ids)
    batches = encoded_batches(
        encoder, adata, layer=counts_layer, gene_key=gene_key, species=species, batch_size=batch_size, max_length=None
    )
    with tqdm(total=adata.n_obs, desc="gene embeddings", disable=not progress) as bar:
        for rows, batch in batches:
            states = hidden_states(encoder, batch)[layer].double().cpu()
            ids = batch.input_ids.cpu()
            genes = batch.attention_mask.cpu().bool() & ~torch.isin(ids, special)
            sums.index_add_(0, ids[genes], states[genes])
            counts.index_add_(0, ids[genes], torch.ones(int(genes.sum()), dtype=torch.float64))
            bar.update(len(rows))
    seen = torch.nonzero(counts).flatten()
    means = (sums[seen] / counts[seen, None]).numpy().astype(np.float32)
    tokens = [encoder.gene_table.tokens[i] for i in seen.tolist()]
    return pd.DataFrame(means, index=pd.Index(tokens, name="gene_id"))
