"""Batched, gradient-free inference of a cellshift encoder over cells encoded in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import anndata as ad
import numpy as np
import torch

from cellshift.models import CellshiftModel
from cellshift.models.loading import load_encoder as load_saved_encoder
from cellshift.tokenize.in_memory import encode_anndata
from cellshift.training.batches import CellBatch, CellCollator


def load_encoder(model: str | os.PathLike | CellshiftModel, device: str | torch.device | None) -> CellshiftModel:
    """A saved model directory (any cellshift model, fine-tuned or not) or a model, on ``device``, in eval mode.

    ``device=None`` takes accelerate's default device (a GPU when one is visible).
    """
    if not isinstance(model, CellshiftModel):
        model = load_saved_encoder(model)
    if model.gene_table is None:
        raise ValueError("the model has no gene table, so it cannot tokenise cells; load it from a saved directory")
    if device is None:
        from accelerate import PartialState

        device = PartialState().device
    return model.to(device).eval()


def encoded_batches(
    model: CellshiftModel,
    adata: ad.AnnData,
    *,
    layer: str | None,
    gene_key: str | None,
    species: str | None,
    batch_size: int,
    max_length: int | None,
) -> Iterator[tuple[np.ndarray, CellBatch]]:
    """Yield ``(cell rows, batch on the model's device)``, cells sorted by length so padding is small."""
    config = model.config
    length = min(max_length or config.max_position_embeddings, config.max_position_embeddings) - bool(config.species)
    cells, cell_species = encode_anndata(
        adata,
        model.gene_table,
        layer=layer,
        gene_key=gene_key,
        species=species,
        max_length=length,
        cls_eos_tokens=config.cls_eos_tokens,
    )
    if config.species and cell_species not in config.species:
        raise ValueError(f"the model knows species {config.species}, these cells are {cell_species}")
    collate = CellCollator(
        config.pad_token_id, species=config.species, with_values=config.use_values, max_length=length
    )
    order = np.argsort(-cells.lengths, kind="stable")
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        columns = {
            "input_ids": [cells.cell(i)[0] for i in rows],
            "values": [cells.cell(i)[1] for i in rows],
            "species": [cell_species] * len(rows),
        }
        yield rows, collate(columns, rows).to(device)


@torch.no_grad()
def hidden_states(model: CellshiftModel, batch: CellBatch) -> tuple[torch.Tensor, ...]:
    """All layers' hidden states of a batch (embedding output first)."""
    return model(
        batch.input_ids,
        attention_mask=batch.attention_mask,
        values=batch.values,
        species_ids=batch.species_ids,
        output_hidden_states=True,
    ).hidden_states
