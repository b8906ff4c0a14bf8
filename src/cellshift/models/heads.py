"""Prediction heads on top of the encoder's last hidden states."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN

from cellshift.models.config import CellshiftConfig


class MaskedGeneHead(nn.Module):
    """Scores every vocabulary token at each position: ``decoder(LayerNorm(act(dense(h))))``.

    The same layout as BERT's masked-language-model head, so Geneformer's weights load into it.
    """

    def __init__(self, config: CellshiftConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, length, vocabulary)``."""
        return self.decoder(self.layer_norm(self.activation(self.dense(hidden_states))))


class MaskedValueHead(nn.Module):
    """Regresses a token's expression value: ``Linear(h, 1)(act(dense(h)))``."""

    def __init__(self, config: CellshiftConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.output = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Predicted values ``(batch, length)``."""
        return self.output(self.activation(self.dense(hidden_states))).squeeze(-1)
