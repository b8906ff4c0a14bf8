"""A linear classification head on the encoder: one label per cell, or one label per gene token.

Two targets, one head layout (``Linear(dropout(h))``, BERT's classification head without a pooler):

- ``cells`` (Geneformer's cell classifier, GeneCompass's annotation head): the head reads the cell
  embedding of :func:`cellshift.models.pooling.mean_over_genes`, the mean over the cell's gene
  tokens of the **penultimate** layer, exactly as ``embed_model`` embeds a cell::

      logits_c = W dropout(1/|G_c| sum_{i in G_c} H^{(L-1)}[c, i]) + b

  The encoder runs only up to that layer (``num_layers = L - 1``), so its last layer is unused.
- ``genes`` (Geneformer's gene classifier, e.g. dosage sensitivity): the head reads every token's
  hidden state of the **last** layer, ``logits_{c,i} = W dropout(H^{(L)}[c, i]) + b``.

The dropout rate is ``config.classifier_dropout``, else ``config.hidden_dropout_prob`` (BERT's rule);
the weights start at ``N(0, initializer_range^2)``, the bias at 0, as BERT's heads. A fine-tuned
classifier is saved as a directory: the encoder (``save_pretrained``: config, weights, gene
table), ``classification_head.safetensors`` and ``classification.json`` (target, class names).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import PartialState
from safetensors.torch import load_file, save_file
from torch import nn

from cellshift.models.config import CellshiftConfig
from cellshift.models.inputs import CellBatch, ModelCells
from cellshift.models.loading import load_encoder
from cellshift.models.modeling import CellshiftModel
from cellshift.models.pooling import mean_over_genes

TARGETS = ("cells", "genes")
HEAD_FILE = "classification_head.safetensors"
CLASSES_FILE = "classification.json"


class ClassificationHead(nn.Module):
    """``Linear(hidden_size, n_classes)`` after dropout: class logits of a cell or a token."""

    def __init__(self, config: CellshiftConfig, n_classes: int):
        super().__init__()
        rate = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(rate)
        self.linear = nn.Linear(config.hidden_size, n_classes)
        nn.init.normal_(self.linear.weight, std=config.initializer_range)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., n_classes)`` of hidden states ``(..., hidden_size)``."""
        return self.linear(self.dropout(hidden))


class CellshiftClassifier(nn.Module):
    """The encoder and a :class:`ClassificationHead` for ``target`` ``"cells"`` or ``"genes"``.

    Parameters
    ----------
    encoder
        A cellshift encoder with its gene table.
    classes
        Class names, in the order of the head's outputs.
    target
        ``"cells"``: one label per cell, from the penultimate layer's mean over gene tokens;
        ``"genes"``: one label per token, from the last layer.
    """

    def __init__(self, encoder: CellshiftModel, classes: Sequence[str], target: str):
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if len(classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {list(classes)}")
        self.encoder = encoder
        self.head = ClassificationHead(encoder.config, len(classes))
        self.classes = [str(name) for name in classes]
        self.target = target

    @property
    def config(self) -> CellshiftConfig:
        """The encoder's configuration."""
        return self.encoder.config

    def encoder_layers_used(self) -> int:
        """Encoder layers the head's input depends on: all but the last for cells, all for genes."""
        layers = self.config.num_hidden_layers
        return layers - 1 if self.target == "cells" else layers

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        values: torch.Tensor | None = None,
        species_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits: ``(batch, n_classes)`` for cells, ``(batch, length, n_classes)`` for gene tokens."""
        encoded = self.encoder(
            input_ids,
            attention_mask=attention_mask,
            values=values,
            species_ids=species_ids,
            num_layers=self.encoder_layers_used(),
        )
        hidden = encoded.last_hidden_state
        if self.target == "cells":
            hidden = mean_over_genes(hidden, input_ids, attention_mask, self.config.special_token_ids)
        return self.head(hidden)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the encoder (``save_pretrained``), the head's weights and the class names into ``directory``."""
        directory = Path(directory)
        self.encoder.save_pretrained(directory, overwrite=True)
        weights = {name: tensor.detach().contiguous().cpu() for name, tensor in self.head.state_dict().items()}
        save_file(weights, directory / HEAD_FILE)
        record = {"target": self.target, "classes": self.classes}
        (directory / CLASSES_FILE).write_text(json.dumps(record, indent=1) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> CellshiftClassifier:
        """A classifier saved by :meth:`save`, on the CPU, in eval mode."""
        directory = Path(directory)
        if not (directory / CLASSES_FILE).is_file():
            raise FileNotFoundError(f"{directory} holds no fine-tuned classifier ({CLASSES_FILE} is missing)")
        record = json.loads((directory / CLASSES_FILE).read_text())
        classifier = cls(load_encoder(directory), record["classes"], record["target"])
        classifier.head.load_state_dict(load_file(directory / HEAD_FILE))
        return classifier.eval()


@torch.no_grad()
def logits_in_batches(
    model: nn.Module, cells: ModelCells, rows: Sequence[int] | np.ndarray, *, batch_size: int, device: torch.device
) -> Iterator[tuple[np.ndarray, CellBatch, torch.Tensor]]:
    """Run ``model`` over cells ``rows`` without gradients, longest cells first so that padding stays small.

    The caller sets the model's mode (``eval()`` for predictions).

    Yields
    ------
    tuple
        ``(rows of the batch, the batch on the CPU, float32 logits on the CPU)``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    ordered = rows[np.argsort(-cells.lengths[rows], kind="stable")]
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start : start + batch_size]
        batch = cells.batch(chunk)
        logits = model(**batch.to(device).model_inputs())
        yield chunk, batch, logits.float().cpu()


def cell_probabilities(
    classifier: CellshiftClassifier, cells: ModelCells, *, batch_size: int = 64, device: str | None = None
) -> np.ndarray:
    """Class probabilities (softmax of the logits) of every cell: cells x classes, in ``classifier.classes`` order.

    The classifier is moved to ``device`` (``None``: accelerate's default, a GPU when one is
    visible) and put in eval mode; cells run in batches, longest first, without gradients.
    """
    device = torch.device(device) if device is not None else PartialState().device
    classifier = classifier.to(device).eval()
    probabilities = np.zeros((len(cells.lengths), len(classifier.classes)), dtype=np.float32)
    for rows, _, logits in logits_in_batches(
        classifier, cells, np.arange(len(cells.lengths)), batch_size=batch_size, device=device
    ):
        probabilities[rows] = torch.softmax(logits, dim=-1).numpy()
    return probabilities


def gene_probabilities(
    classifier: CellshiftClassifier, cells: ModelCells, *, batch_size: int = 64, device: str | None = None
) -> pd.DataFrame:
    """Each gene's class probabilities averaged over the cells whose tokens include it.

    For gene g and the cells C_g holding its token: ``p_g = 1/|C_g| sum_{c in C_g} softmax(logits_{c, g})``
    (a gene occurs at most once per cell). Special tokens and padding are left out. The classifier
    is moved to ``device`` and put in eval mode, as in :func:`cell_probabilities`.

    Returns
    -------
    pandas.DataFrame
        Genes seen in the cells (vocabulary tokens, e.g. Ensembl IDs) x classes.
    """
    device = torch.device(device) if device is not None else PartialState().device
    classifier = classifier.to(device).eval()
    vocab_size, n_classes = classifier.config.vocab_size, len(classifier.classes)
    sums = torch.zeros(vocab_size, n_classes, dtype=torch.float64)
    counts = torch.zeros(vocab_size, dtype=torch.float64)
    special = torch.as_tensor(classifier.config.special_token_ids)
    for _, batch, logits in logits_in_batches(
        classifier, cells, np.arange(len(cells.lengths)), batch_size=batch_size, device=device
    ):
        genes = batch.attention_mask.bool() & ~torch.isin(batch.input_ids, special)
        sums.index_add_(0, batch.input_ids[genes], torch.softmax(logits[genes], dim=-1).double())
        counts.index_add_(0, batch.input_ids[genes], torch.ones(int(genes.sum()), dtype=torch.float64))
    seen = torch.nonzero(counts).flatten()
    tokens = [classifier.encoder.gene_table.tokens[i] for i in seen.tolist()]
    means = (sums[seen] / counts[seen, None]).numpy()
    return pd.DataFrame(means, index=pd.Index(tokens, name="gene_id"), columns=classifier.classes)
