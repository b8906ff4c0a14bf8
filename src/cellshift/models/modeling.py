"""The cellshift model: token inputs -> BERT encoder -> masked-gene (and masked-value) heads.

Hugging Face layout: :class:`CellshiftModel` is the encoder, built from the
config alone; :class:`CellshiftForMaskedGeneModeling` adds the pre-training heads. Outputs are
dataclasses. A saved model is a directory (``save_pretrained``) holding ``config.json``,
``model.safetensors`` and ``gene_table.tsv.gz`` (vocabulary and gene medians), so a
checkpoint tokenises its own inputs; ``from_pretrained`` checks the table's tokens against the
config's ``gene_tokens``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertModel, PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask

from cellshift._io import check_writable
from cellshift.data.gene_table import GeneTable
from cellshift.models.config import CellshiftConfig
from cellshift.models.embeddings import TokenInputs
from cellshift.models.heads import MaskedGeneHead, MaskedValueHead

GENE_TABLE_FILE = "gene_table.tsv.gz"
IGNORE_INDEX = -100  # label of positions that are not predicted (PyTorch's cross-entropy default)


@dataclass
class EncoderOutput:
    """Hidden states of the gene tokens (a species position, if any, is removed).

    Attributes
    ----------
    last_hidden_state
        ``(batch, length, hidden)``.
    hidden_states
        With ``output_hidden_states``: the embedding output and every layer's output, each
        ``(batch, length, hidden)``; ``hidden_states[-2]`` is the penultimate layer.
    """

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class MaskedGeneOutput:
    """Output of :class:`CellshiftForMaskedGeneModeling`.

    ``loss = gene_loss_weight * gene_loss + value_loss_weight * value_loss`` with values, else
    ``gene_loss``; losses are ``None`` when no labels were given.
    """

    gene_logits: torch.Tensor
    value_predictions: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    gene_loss: torch.Tensor | None = None
    value_loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class CellshiftPreTrainedModel(PreTrainedModel):
    """Shared loading, saving and weight initialisation."""

    config_class = CellshiftConfig
    base_model_prefix = "cellshift"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: CellshiftConfig, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.gene_table: GeneTable | None = None

    def save_pretrained(self, save_directory: str | os.PathLike, *, overwrite: bool = False, **kwargs) -> None:
        """Write config, safetensors weights and the gene table into ``save_directory``.

        The files are written into a temporary folder and then moved in one by one (each move
        atomic, ``config.json`` last); other contents of the directory, such as a training
        run's ``training/`` folder, are kept.
        """
        directory = Path(save_directory)
        check_writable(directory / "config.json", overwrite, option="model directory")
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".saving-") as temporary:
            super().save_pretrained(temporary, **kwargs)
            if self.gene_table is not None:
                check_gene_table(self.gene_table, self.config, f"the gene table {self.gene_table.name!r}")
                self.gene_table.save(Path(temporary) / GENE_TABLE_FILE)
            for file in sorted(Path(temporary).iterdir(), key=lambda f: f.name == "config.json"):
                os.replace(file, directory / file.name)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs):
        """Load a saved model and its gene table; a table whose tokens are not the model's is an error."""
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        table_path = Path(pretrained_model_name_or_path) / GENE_TABLE_FILE
        if table_path.exists():
            table = GeneTable.load(table_path)
            check_gene_table(table, model.config, str(table_path))
            model.gene_table = table
        return model


def check_gene_table(table: GeneTable, config: CellshiftConfig, source: str) -> None:
    """Raise unless ``table`` lists the model's tokens (``config.gene_tokens``) in the same order.

    A config saved before the model recorded its tokens has only ``vocab_size`` to compare with.

    Parameters
    ----------
    table
        The gene table meant to tokenise the model's cells.
    config
        The model's configuration.
    source
        Where the table came from, for the error message.
    """
    hint = "the directory mixes files of two models"
    expected = config.gene_tokens
    vocab_size = config.vocab_size if expected is None else len(expected)
    if len(table) != vocab_size:
        raise ValueError(f"{source} has {len(table)} tokens but the model's vocabulary has {vocab_size}; {hint}")
    if expected is None:
        return
    differing = [i for i, (ours, theirs) in enumerate(zip(expected, table.tokens, strict=True)) if ours != theirs]
    if differing:
        examples = ", ".join(f"ID {i}: {table.tokens[i]} for {expected[i]}" for i in differing[:3])
        raise ValueError(
            f"{source} differs from the model's vocabulary at {len(differing)} of {len(expected)} token IDs "
            f"({examples}); {hint}"
        )


class CellshiftModel(CellshiftPreTrainedModel):
    """The encoder: fused token inputs, then ``transformers.BertModel`` (no pooler)."""

    # Loading the encoder alone from a checkpoint with heads leaves the heads out, as intended.
    _keys_to_ignore_on_load_unexpected = [r"^gene_head\.", r"^value_head\."]

    def __init__(self, config: CellshiftConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.inputs = TokenInputs(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The gene-token embedding (BERT's word embedding)."""
        return self.bert.embeddings.word_embeddings

    def set_prior(self, name: str, matrix: torch.Tensor) -> None:
        """Fill prior source ``name`` with a vocabulary x dim matrix (rows of absent genes = 0)."""
        table = self.inputs.priors[name].matrix
        if tuple(matrix.shape) != tuple(table.shape):
            raise ValueError(
                f"prior {name!r} must be {tuple(table.shape)} (vocabulary x dim), got {tuple(matrix.shape)}"
            )
        table.copy_(torch.as_tensor(matrix, dtype=table.dtype))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        species_ids: torch.Tensor | None = None,
        hidden_values: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        num_layers: int | None = None,
    ) -> EncoderOutput:
        """Encode a padded batch of cells.

        Parameters
        ----------
        input_ids
            ``(batch, length)`` token IDs, padded with ``config.pad_token_id``.
        attention_mask
            ``(batch, length)``, 1 for real tokens; default: ``input_ids != pad_token_id``.
        values, species_ids, hidden_values
            See :class:`cellshift.models.embeddings.TokenInputs`.
        output_hidden_states
            Also return every layer's hidden states.
        num_layers
            Run only the first ``num_layers`` encoder layers (``last_hidden_state`` is then that
            layer's output); e.g. ``num_hidden_layers - 1`` for the penultimate layer without
            computing the last one. Default: all.
        """
        layers = self.bert.encoder.layer
        num_layers = len(layers) if num_layers is None else num_layers
        if not 0 <= num_layers <= len(layers):
            raise ValueError(f"num_layers must lie in [0, {len(layers)}], got {num_layers}")
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        gene_embedded = self.bert.embeddings.word_embeddings(input_ids)
        embedded = self.inputs(input_ids, gene_embedded, values, hidden_values, species_ids)
        skip = 0
        if self.config.species:
            attention_mask = torch.cat([attention_mask.new_ones(attention_mask.shape[0], 1), attention_mask], dim=1)
            skip = 1
        hidden = self.bert.embeddings(inputs_embeds=embedded)  # + position embedding, LayerNorm, dropout
        mask = create_bidirectional_mask(config=self.bert.config, inputs_embeds=hidden, attention_mask=attention_mask)
        every_layer = [hidden] if output_hidden_states else None
        for layer in layers[:num_layers]:
            hidden = layer(hidden, mask)
            if every_layer is not None:
                every_layer.append(hidden)
        hidden_states = tuple(states[:, skip:] for states in every_layer) if every_layer is not None else None
        return EncoderOutput(hidden[:, skip:], hidden_states)


class CellshiftForMaskedGeneModeling(CellshiftPreTrainedModel):
    """Encoder plus the masked-gene head and, with values, the masked-value head."""

    def __init__(self, config: CellshiftConfig):
        super().__init__(config)
        self.cellshift = CellshiftModel(config)
        self.gene_head = MaskedGeneHead(config)
        self.value_head = MaskedValueHead(config) if config.use_values else None
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        species_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        value_labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> MaskedGeneOutput:
        """Predict masked genes (and values).

        Parameters
        ----------
        labels
            ``(batch, length)`` original token at masked positions, ``-100`` elsewhere; the
            cross-entropy is averaged over masked positions. With labels, the heads score the
            masked positions only: ``gene_logits`` is ``(n_masked, vocabulary)`` and
            ``value_predictions`` ``(n_masked,)``, in the row-major order of ``labels != -100``.
        value_labels
            ``(batch, length)`` original values; the squared error is averaged over the masked
            positions, whose input values are hidden from the model.
        """
        masked = labels != IGNORE_INDEX if labels is not None else None
        hidden_values = masked if self.config.use_values else None
        encoded = self.cellshift(
            input_ids,
            attention_mask=attention_mask,
            values=values,
            species_ids=species_ids,
            hidden_values=hidden_values,
            output_hidden_states=output_hidden_states,
        )
        hidden = encoded.last_hidden_state
        if masked is not None:  # score only the masked positions: ~15% of the tokens, the head's cost drops alike
            hidden = hidden[masked]
        gene_logits = self.gene_head(hidden)
        value_predictions = self.value_head(hidden) if self.value_head is not None else None
        output = MaskedGeneOutput(gene_logits, value_predictions, hidden_states=encoded.hidden_states)
        if labels is None:
            return output
        output.gene_loss = F.cross_entropy(gene_logits.float(), labels[masked])
        output.loss = output.gene_loss
        if value_predictions is not None:
            if value_labels is None:
                raise ValueError("a model with values needs `value_labels` (the unmasked values) to compute its loss")
            output.value_loss = F.mse_loss(value_predictions.float(), value_labels[masked].float())
            output.loss = (
                self.config.gene_loss_weight * output.gene_loss + self.config.value_loss_weight * output.value_loss
            )
        return output
