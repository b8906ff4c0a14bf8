"""Cell embedding from an encoder's hidden states (Zhao et al. 2025).

For cell c with gene-token positions G_c (real tokens that are not special tokens) and the hidden
states H of one layer (by default the penultimate layer, ``hidden_states[-2]``):

    e_c = 1/|G_c| * sum_{i in G_c} H[c, i]

Padding, ``<pad>``, ``<mask>``, ``<cls>`` and ``<eos>`` positions never enter the mean. The mean is
taken in float32 whatever the dtype of the hidden states (bf16 on GPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

PENULTIMATE = -2


def gene_token_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, special_token_ids: Sequence[int] | torch.Tensor
) -> torch.Tensor:
    """Boolean ``(batch, length)``: real positions holding a gene token.

    Parameters
    ----------
    input_ids
        ``(batch, length)`` token IDs.
    attention_mask
        ``(batch, length)``, non-zero for real (non-padding) tokens.
    special_token_ids
        IDs of the special tokens (``config.special_token_ids``).
    """
    special = torch.as_tensor(list(special_token_ids), dtype=input_ids.dtype, device=input_ids.device)
    return attention_mask.bool() & ~torch.isin(input_ids, special)


def mean_over_genes(
    states: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special_token_ids: Sequence[int] | torch.Tensor,
) -> torch.Tensor:
    """Mean of one layer's hidden states over each cell's gene tokens.

    Parameters
    ----------
    states
        ``(batch, length, hidden)`` hidden states of one layer.
    input_ids
        ``(batch, length)`` token IDs of the same batch.
    attention_mask
        ``(batch, length)``, non-zero for real tokens.
    special_token_ids
        IDs excluded from the mean besides padding (``config.special_token_ids``).

    Returns
    -------
    torch.Tensor
        ``(batch, hidden)`` float32 cell embeddings; a cell without gene tokens gets zeros.
    """
    if states.shape[:2] != input_ids.shape:
        raise ValueError(
            f"hidden states of shape {tuple(states.shape)} do not match input_ids {tuple(input_ids.shape)}; "
            "pass the encoder's hidden states for this batch"
        )
    weights = gene_token_mask(input_ids, attention_mask, special_token_ids).to(torch.float32)
    total = torch.einsum("bl,blh->bh", weights, states.to(torch.float32))
    return total / weights.sum(dim=1, keepdim=True).clamp(min=1.0)


def cell_embedding(
    hidden_states: Sequence[torch.Tensor],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special_token_ids: Sequence[int] | torch.Tensor,
    *,
    layer: int = PENULTIMATE,
) -> torch.Tensor:
    """The cell embedding of Zhao et al. 2025: :func:`mean_over_genes` of the penultimate layer.

    Parameters
    ----------
    hidden_states
        Every layer's hidden states, each ``(batch, length, hidden)``, as returned by
        :class:`~cellshift.models.CellshiftModel` with ``output_hidden_states=True`` (the
        embedding output first, the last layer last; a species position already removed).
    input_ids, attention_mask, special_token_ids
        As in :func:`mean_over_genes`.
    layer
        Which entry of ``hidden_states`` to pool; ``-2`` is the penultimate layer.

    Returns
    -------
    torch.Tensor
        ``(batch, hidden)`` float32 cell embeddings.
    """
    return mean_over_genes(hidden_states[layer], input_ids, attention_mask, special_token_ids)
