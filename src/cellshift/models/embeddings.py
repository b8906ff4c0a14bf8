"""Token input embeddings: gene token, expression value, prior knowledge and species.

GeneCompass-style fusion: for token ``t`` of a cell with value ``v``,

    e_gene  = E[t]                                  (gene-token embedding, BERT's word embedding)
    e_value = W2 act(W1 v + b1) + b2                (continuous value encoder, v = log1p(normalised))
    e_k     = P_k[t] A_k + c_k                      (prior source k: frozen row of P_k, trainable projection)
    input   = MLP([e_gene, e_value, e_1, ..., e_K]) (concatenate, then Linear-act-Linear to hidden)

Without values and priors the input is ``E[t]`` alone, exactly as in Geneformer. BERT's own
embedding layer then adds position embeddings, layer norm and dropout. Mouse genes read their
human ortholog's prior rows: in the ortholog-mapped vocabulary they share its token (the
tokenizer maps them), in the joint vocabulary their own tokens are given its rows
(:func:`cellshift.models.priors.align_prior`).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN

from cellshift.models.config import CellshiftConfig


class ValueEncoder(nn.Module):
    """Continuous encoder of one scalar per token: ``Linear(1, h) -> act -> Linear(h, h)``."""

    def __init__(self, config: CellshiftConfig):
        super().__init__()
        self.dense_in = nn.Linear(1, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dense_out = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """Encode ``(batch, length)`` values into ``(batch, length, hidden)``."""
        return self.dense_out(self.activation(self.dense_in(values.unsqueeze(-1))))


class PriorTable(nn.Module):
    """A frozen vocabulary x dim prior matrix (a buffer, saved with the weights) and its projection."""

    def __init__(self, vocab_size: int, dim: int, hidden_size: int):
        super().__init__()
        self.register_buffer("matrix", torch.zeros(vocab_size, dim))
        self.projection = nn.Linear(dim, hidden_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Projected prior vectors of the tokens, ``(batch, length, hidden)``."""
        return self.projection(self.matrix[input_ids])


class TokenInputs(nn.Module):
    """Builds each token's input embedding from the gene embedding and the optional inputs."""

    def __init__(self, config: CellshiftConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        n_parts = 1
        self.value_encoder = None
        if config.use_values:
            self.value_encoder = ValueEncoder(config)
            # Stands in for the value of a masked token, so the value head cannot read its target.
            self.masked_value_embedding = nn.Parameter(torch.zeros(hidden))
            n_parts += 1
        # Sorted by name: the fusion layer's input order must not depend on how a config was saved.
        self.priors = nn.ModuleDict(
            {
                name: PriorTable(config.vocab_size, dim, hidden)
                for name, dim in sorted((config.prior_dims or {}).items())
            }
        )
        n_parts += len(self.priors)
        self.fusion = None
        if n_parts > 1:
            self.fusion = nn.Sequential(
                nn.Linear(n_parts * hidden, hidden), ACT2FN[config.hidden_act], nn.Linear(hidden, hidden)
            )
        self.species_embeddings = nn.Embedding(len(config.species), hidden) if config.species else None

    def forward(
        self,
        input_ids: torch.Tensor,
        gene_embedded: torch.Tensor,
        values: torch.Tensor | None = None,
        hidden_values: torch.Tensor | None = None,
        species_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings, ``(batch, length, hidden)``, or ``length + 1`` with a species position first.

        Parameters
        ----------
        input_ids
            Token IDs, ``(batch, length)``.
        gene_embedded
            Their gene-token embeddings ``E[t]``, ``(batch, length, hidden)`` (the embedding
            matrix lives in BERT's embedding layer, so a Geneformer checkpoint fills it).
        values
            Expression values, ``(batch, length)``; required when the model uses values.
        hidden_values
            Boolean ``(batch, length)``: positions whose value is replaced by the learned
            masked-value embedding (the masked tokens during pre-training).
        species_ids
            Index into ``config.species`` per cell, ``(batch,)``; required with a species embedding.
        """
        parts = [gene_embedded]
        if self.value_encoder is not None:
            if values is None:
                raise ValueError("this model was trained with expression values; pass `values` (the corpus column)")
            encoded = self.value_encoder(values.to(parts[0].dtype))
            if hidden_values is not None:
                encoded = torch.where(
                    hidden_values.unsqueeze(-1), self.masked_value_embedding.to(encoded.dtype), encoded
                )
            parts.append(encoded)
        parts.extend(prior(input_ids).to(parts[0].dtype) for prior in self.priors.values())
        embedded = self.fusion(torch.cat(parts, dim=-1)) if self.fusion is not None else parts[0]
        if self.species_embeddings is not None:
            if species_ids is None:
                raise ValueError(
                    f"this model has a species embedding; pass `species_ids` (index into {self.config.species})"
                )
            embedded = torch.cat(
                [self.species_embeddings(species_ids).unsqueeze(1).to(embedded.dtype), embedded], dim=1
            )
        return embedded
