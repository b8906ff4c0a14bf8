"""Masked-gene modelling: choose tokens to predict and corrupt them (BERT, Geneformer; DESIGN §2.3).

Of the chosen tokens 80% become ``<mask>``, 10% a random gene token and 10% stay unchanged; the
model must predict the original token at every chosen position. Padding and special tokens are
never chosen and never drawn as random replacements.
"""

from __future__ import annotations

import torch

from cellshift.models import IGNORE_INDEX


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
