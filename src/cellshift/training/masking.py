"""Masked-gene modelling: choose tokens to predict and corrupt them (BERT, Geneformer).

Of the chosen tokens 80% become ``<mask>``, 10% a random gene token and 10% stay unchanged; the
model must predict the original token at every chosen position. Padding and special tokens are
never chosen and never drawn as random replacements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from cellshift.models import IGNORE_INDEX, CellshiftConfig
from cellshift.models.inputs import CellBatch


def choose_positions(
    eligible: torch.Tensor, probability: float, generator: torch.Generator, *, exact: bool = False
) -> torch.Tensor:
    """Boolean ``(batch, length)``: positions to predict among the ``eligible`` ones.

    With ``exact=False`` each eligible token is chosen independently with ``probability``
    (pre-training); with ``exact=True`` each cell gets exactly ``round(probability * n_eligible)``
    positions, at least one (evaluation, Zhao et al. 2025 appendix A.2).
    """
    scores = torch.rand(eligible.shape, generator=generator)
    if not exact:
        return eligible & (scores < probability)
    scores = scores.masked_fill(~eligible, 2.0)
    n_eligible = eligible.sum(dim=1, keepdim=True)
    n_chosen = torch.clamp(torch.round(probability * n_eligible), min=1)
    n_chosen = torch.minimum(n_chosen, n_eligible)
    rank = scores.argsort(dim=1).argsort(dim=1)
    return eligible & (rank < n_chosen)


def corrupt(
    input_ids: torch.Tensor,
    chosen: torch.Tensor,
    *,
    mask_token_id: int,
    gene_token_ids: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the 80/10/10 rule at ``chosen`` positions; return ``(corrupted_ids, labels)``.

    ``labels`` holds the original token at chosen positions and ``-100`` elsewhere.
    """
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    draw = torch.rand(input_ids.shape, generator=generator)
    to_mask = chosen & (draw < 0.8)
    to_random = chosen & (draw >= 0.8) & (draw < 0.9)
    random_genes = gene_token_ids[torch.randint(len(gene_token_ids), input_ids.shape, generator=generator)]
    corrupted = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    corrupted = torch.where(to_random, random_genes.to(input_ids.dtype), corrupted)
    return corrupted, labels


def special_token_mask(input_ids: torch.Tensor, special_token_ids: list[int] | torch.Tensor) -> torch.Tensor:
    """Boolean ``(batch, length)``: padding and special tokens."""
    return torch.isin(input_ids, torch.as_tensor(special_token_ids, dtype=input_ids.dtype))


@dataclass
class MaskedBatch:
    """A batch of cells with some gene tokens to predict.

    Attributes
    ----------
    inputs
        The batch as the model sees it: chosen tokens corrupted (80/10/10), values unchanged.
    labels
        ``(batch, length)`` original token at every chosen position, ``-100`` elsewhere.
    """

    inputs: CellBatch
    labels: torch.Tensor

    def to(self, device: torch.device | str) -> MaskedBatch:
        """The batch on ``device``."""
        return MaskedBatch(self.inputs.to(device), self.labels.to(device, non_blocking=True))

    def model_inputs(self) -> dict[str, torch.Tensor | None]:
        """Keyword arguments of :class:`~cellshift.models.CellshiftForMaskedGeneModeling`.

        The values are their own labels: the model hides them at the chosen positions.
        """
        return {**self.inputs.model_inputs(), "labels": self.labels, "value_labels": self.inputs.values}


def mask_batch(
    batch: CellBatch, config: CellshiftConfig, probability: float, generator: torch.Generator
) -> MaskedBatch:
    """Choose ``probability`` of a batch's gene tokens to predict and corrupt them (80/10/10).

    In a batch of very short cells where no token was chosen, every cell gets exactly
    ``round(probability * n)`` of its ``n`` gene tokens, at least one, so there is something to predict.

    Parameters
    ----------
    batch
        Padded cells.
    config
        The model's configuration: its special tokens are never chosen nor drawn as random
        replacements (every other token of the vocabulary may be), ``<mask>`` hides a token.
    probability
        Chance of each gene token to be chosen.
    generator
        Seeded generator of the choices and replacements.

    Returns
    -------
    MaskedBatch
        The corrupted batch and its labels.
    """
    eligible = ~special_token_mask(batch.input_ids, config.special_token_ids) & batch.attention_mask.bool()
    chosen = choose_positions(eligible, probability, generator)
    if not chosen.any():
        chosen = choose_positions(eligible, probability, generator, exact=True)
    gene_token_ids = torch.as_tensor(np.setdiff1d(np.arange(config.vocab_size), config.special_token_ids))
    input_ids, labels = corrupt(
        batch.input_ids, chosen, mask_token_id=config.mask_token_id, gene_token_ids=gene_token_ids, generator=generator
    )
    return MaskedBatch(replace(batch, input_ids=input_ids), labels)
