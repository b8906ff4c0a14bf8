"""Forward passes over a stream of cells and their perturbed versions, many sequences per batch.

Geneformer's perturber runs one cell at a time with all of its variants. Here the stream of
sequences (each original cell followed by its variants, cells in descending length) is cut into
batches of ``batch_size`` sequences, whatever cell they belong to: an original and its variants
share a batch where they fit, and the lengths inside a batch are close, so padding stays small.

For every sequence the batch gives the cell embedding (the mean over gene tokens of the
``cell_layer`` hidden states, :func:`cellshift.models.pooling.mean_over_genes`) and, when asked,
each gene token's contextual embedding (``gene_layer`` hidden states). On CUDA the encoder runs
under bf16 autocast; outputs are float32 on the CPU, so the code path is the same on any device.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch

from cellshift.models import CellshiftModel
from cellshift.models.inputs import ModelCells
from cellshift.models.pooling import gene_token_mask, mean_over_genes


@dataclass(frozen=True)
class Variant:
    """One sequence to encode.

    Attributes
    ----------
    cell
        Row of the cell in its :class:`~cellshift.tasks.cell_tokens.CellSource`.
    perturbation
        Index of the perturbation in the run's list; ``-1`` for the unperturbed cell.
    draw
        ``0`` for the perturbed genes themselves, ``k >= 1`` for the k-th rank-matched null draw.
    input_ids, values
        The sequence's tokens and values.
    """

    cell: int
    perturbation: int
    draw: int
    input_ids: np.ndarray
    values: np.ndarray


@dataclass
class EncodedBatch:
    """Model outputs of one batch.

    Attributes
    ----------
    variants
        The sequences of the batch, in stream order.
    cell_embeddings
        ``(batch, hidden)`` float32 cell embeddings.
    gene_states
        Per sequence ``(tokens, hidden)`` float32 states of its gene tokens (in sequence order),
        or ``None`` when not asked for.
    """

    variants: list[Variant]
    cell_embeddings: np.ndarray
    gene_states: list[np.ndarray] | None


def encode_variants(
    model: CellshiftModel,
    cells: ModelCells,
    variants: Iterable[Variant],
    *,
    batch_size: int,
    cell_layer: int = -2,
    gene_layer: int = -1,
    with_gene_states: bool = False,
) -> Iterator[EncodedBatch]:
    """Encode a stream of sequences in batches of ``batch_size``, keeping the stream's order.

    Parameters
    ----------
    model
        The encoder, on its device, in eval mode.
    cells
        Gives the collator (padding, token limit) and the species of the cells.
    variants
        The sequences, in the order they should be batched.
    batch_size
        Sequences per forward pass.
    cell_layer, gene_layer
        Hidden-state indices of the cell embedding (penultimate by default, Zhao et al. 2025) and
        of the contextual gene embeddings (last layer by default).
    with_gene_states
        Also return the gene tokens' contextual embeddings.

    Yields
    ------
    EncodedBatch
        One per forward pass.
    """
    device = next(model.parameters()).device
    stream = iter(variants)
    while batch := list(islice(stream, batch_size)):
        padded = cells.collate.pad(
            [v.input_ids for v in batch], [v.values for v in batch], [cells.species] * len(batch)
        ).to(device)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            states = model(**padded.model_inputs(), output_hidden_states=True).hidden_states
        special = model.config.special_token_ids
        pooled = mean_over_genes(states[cell_layer], padded.input_ids, padded.attention_mask, special)
        gene_states = None
        if with_gene_states:
            is_gene = gene_token_mask(padded.input_ids, padded.attention_mask, special).cpu().numpy()
            layer = states[gene_layer].float().cpu().numpy()
            gene_states = [layer[i][is_gene[i]] for i in range(len(batch))]
        yield EncodedBatch(batch, pooled.float().cpu().numpy(), gene_states)


def gene_tokens_of(input_ids: np.ndarray, special_token_ids: list[int]) -> np.ndarray:
    """The gene tokens of a sequence, in order (special tokens dropped), matching ``EncodedBatch.gene_states`` rows."""
    ids = np.asarray(input_ids)
    return ids[~np.isin(ids, special_token_ids)]
