"""Batched, gradient-free inference of a cellshift encoder over cells encoded in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import anndata as ad
import numpy as np
import torch
from accelerate import PartialState

from cellshift.models import CellshiftModel
from cellshift.models.inputs import CellBatch, encode_cells
from cellshift.models.loading import load_encoder as load_saved_encoder


def load_encoder(model: str | os.PathLike | CellshiftModel, device: str | torch.device | None) -> CellshiftModel:
    """A saved model directory (any cellshift model, fine-tuned or not) or a model, on ``device``, in eval mode.

    ``device=None`` takes accelerate's default device (a GPU when one is visible).
    """
    if not isinstance(model, CellshiftModel):
        model = load_saved_encoder(model)
    if model.gene_table is None:
        raise ValueError("the model has no gene table, so it cannot tokenise cells; load it from a saved directory")
    if device is None:
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
    """Yield ``(cell rows, batch on the model's device)``, cells sorted by length so padding is small.

    Cells are tokenised by :func:`cellshift.models.inputs.encode_cells`, as in fine-tuning.
    """
    cells = encode_cells(adata, model, layer=layer, gene_key=gene_key, species=species, max_length=max_length)
    order = np.argsort(-cells.lengths, kind="stable")
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, cells.batch(rows).to(device)


@torch.no_grad()
def hidden_states(model: CellshiftModel, batch: CellBatch) -> tuple[torch.Tensor, ...]:
    """All layers' hidden states of a batch (embedding output first)."""
    return model(**batch.model_inputs(), output_hidden_states=True).hidden_states
