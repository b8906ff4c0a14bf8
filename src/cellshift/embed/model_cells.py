"""Cell embeddings from a cellshift model (pre-trained, fine-tuned or Geneformer)."""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import torch
from tqdm.auto import tqdm

from cellshift.embed._inference import encoded_batches, hidden_states, load_encoder
from cellshift.models import CellshiftModel
from cellshift.models.pooling import mean_over_genes


def embed_model(
    adata: ad.AnnData,
    model: str | os.PathLike | CellshiftModel,
    *,
    hidden_layer: int = -2,
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    device: str | torch.device | None = None,
    key_added: str = "X_cellshift",
    progress: bool = True,
) -> None:
    """Embed every cell: the mean over its gene tokens of one layer's hidden states.

    Zhao et al. 2025 take the **penultimate** layer (``hidden_layer=-2``), padding and special
    tokens excluded. Cells are tokenised in memory with the model's own gene table, sorted by
    length and run in batches without gradients, on any device.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``X`` or ``layer``.
    model
        A model directory (``cellshift pretrain`` / ``finetune``) or a loaded :class:`CellshiftModel`.
    hidden_layer
        Index into the hidden states (0 = embedding output, -1 = last layer).
    layer, gene_key, species
        Where the counts are, which var column names the genes, the species (default: detected).
    batch_size, max_length
        Cells per forward pass; tokens kept per cell (default: the model's input size).
    device
        Default: a GPU when one is visible, else the CPU.
    key_added
        ``obsm`` key to write.
    progress
        Show a progress bar.

    Returns
    -------
    Nothing; writes ``adata.obsm[key_added]`` (cells x hidden, float32) and
    ``adata.uns[key_added]`` (the settings).
    """
    encoder = load_encoder(model, device)
    embedding = np.zeros((adata.n_obs, encoder.config.hidden_size), dtype=np.float32)
    batches = encoded_batches(
        encoder, adata, layer=layer, gene_key=gene_key, species=species, batch_size=batch_size, max_length=max_length
    )
    with tqdm(total=adata.n_obs, desc="embedding cells", disable=not progress) as bar:
        for rows, batch in batches:
            states = hidden_states(encoder, batch)[hidden_layer]
            pooled = mean_over_genes(states, batch.input_ids, batch.attention_mask, encoder.config.special_token_ids)
            embedding[rows] = pooled.float().cpu().numpy()
            bar.update(len(rows))
    adata.obsm[key_added] = embedding
    adata.uns[key_added] = {"hidden_layer": hidden_layer, "pooling": "mean over gene tokens", "model": str(model)}
