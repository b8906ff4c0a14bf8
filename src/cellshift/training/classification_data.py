"""What classification fine-tuning trains and validates on: labelled cells or labelled gene tokens.

Cells target: each cell has one class. The validation share is stratified: of each class's n
cells, ``min(max(1, round(validation_fraction * n)), n - 1)`` (seeded) are held out of training,
so that every class with two cells or more is validated on (macro-F1 weighs classes equally).

Genes target: each labelled gene has one class, and every token of a training gene, in every
cell that holds it, carries its gene's class; all other tokens (unlabelled genes, special tokens,
padding) carry -100 and are ignored by the loss. The validation share holds out genes (stratified
by class, as cells above) and cells (the same share of all cells, seeded): the
held-out genes are labelled only in the held-out cells and the training genes only in the training
cells, so validation asks about genes and cells that training never labelled. Cells without a
labelled token of their part are left out of it.

Batches: each epoch shuffles the training cells (``numpy.random.default_rng([seed, epoch])``) and
cuts them into ``ceil(n / batch_size)`` batches of near-equal size (no runt batch at the end).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cellshift.models.inputs import CellBatch, ModelCells
from cellshift.models.modeling import IGNORE_INDEX
from cellshift.training.pairs import VALIDATION_STREAM


@dataclass(frozen=True)
class LabelledCells:
    """Tokenised cells, their labels, and the rows trained and validated on.

    Attributes
    ----------
    cells
        The tokenised cells (:func:`cellshift.models.inputs.encode_cells`).
    classes
        Class names; labels are indices into this list.
    train_rows, validation_rows
        Positions of the training and validation cells among ``cells`` (``validation_rows`` may be empty).
    cell_labels
        Cells target: the class index of every cell; ``None`` for genes.
    train_token_labels, validation_token_labels
        Genes target: class index of every vocabulary token in training / validation (-100 for
        tokens that are not labelled there); ``None`` for cells.
    """

    cells: ModelCells
    classes: list[str]
    train_rows: np.ndarray
    validation_rows: np.ndarray
    cell_labels: np.ndarray | None = None
    train_token_labels: np.ndarray | None = None
    validation_token_labels: np.ndarray | None = None

    @property
    def has_validation(self) -> bool:
        """Whether cells were held out for validation."""
        return len(self.validation_rows) > 0

    def labels(self, rows: np.ndarray, batch: CellBatch, *, validation: bool = False) -> torch.Tensor:
        """Labels of a batch of ``rows``: ``(batch,)`` for cells, ``(batch, length)`` with -100 for gene tokens."""
        if self.cell_labels is not None:
            return torch.as_tensor(self.cell_labels[rows], dtype=torch.long)
        lookup = self.validation_token_labels if validation else self.train_token_labels
        return torch.as_tensor(lookup, dtype=torch.long)[batch.input_ids]


@dataclass(frozen=True)
class ShuffledBatches:
    """The training cells of each epoch, shuffled with ``(seed, epoch)`` and cut into near-equal batches."""

    rows: np.ndarray
    batch_size: int
    seed: int

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """The batches of epoch ``epoch`` (positions among the tokenised cells)."""
        shuffled = np.random.default_rng([self.seed, epoch]).permutation(self.rows)
        return np.array_split(shuffled, len(self))

    @property
    def smallest_batch(self) -> int:
        """Cells in the smallest batch of an epoch."""
        return len(self.rows) // len(self)


def labelled_cells(cells: ModelCells, labels: Sequence[str], *, validation_fraction: float, seed: int) -> LabelledCells:
    """Cells target: one class per cell, a stratified validation share held out.

    Parameters
    ----------
    cells
        The tokenised cells.
    labels
        The class of every cell, in the order of ``cells``.
    validation_fraction
        Share of each class's cells held out for validation (0 for none).
    seed
        Seed of the held-out share.
    """
    labels = np.asarray(labels, dtype=str)
    classes = sorted(set(labels))
    cell_labels = np.searchsorted(classes, labels)
    rng = np.random.default_rng([seed, VALIDATION_STREAM])
    held_out = [_share(rng, np.flatnonzero(cell_labels == k), validation_fraction) for k in range(len(classes))]
    validation_rows = np.sort(np.concatenate(held_out)).astype(np.int64)
    _check_validation(validation_fraction, validation_rows, "cells")
    train_rows = np.setdiff1d(np.arange(len(labels)), validation_rows)
    return LabelledCells(cells, classes, train_rows, validation_rows, cell_labels=cell_labels)


def labelled_gene_tokens(
    cells: ModelCells, gene_labels: Mapping[str, str], tokens: Sequence[str], *, validation_fraction: float, seed: int
) -> LabelledCells:
    """Genes target: every token of a labelled gene carries its gene's class; genes and cells held out for validation.

    Parameters
    ----------
    cells
        The tokenised cells.
    gene_labels
        ``{token: class}`` of the labelled genes (tokens of the model's vocabulary, e.g. Ensembl IDs).
    tokens
        The model's vocabulary, in token-ID order (``gene_table.tokens``).
    validation_fraction
        Share of each class's genes, and of the cells, held out for validation (0 for none).
    seed
        Seed of the held-out shares.
    """
    token_ids = {token: i for i, token in enumerate(tokens)}
    unknown = sorted(set(gene_labels) - set(token_ids))
    if unknown:
        raise ValueError(f"{len(unknown)} labelled genes are not in the model's vocabulary, e.g. {unknown[:3]}")
    genes = np.array(sorted(gene_labels), dtype=object)
    gene_classes = np.array([gene_labels[gene] for gene in genes], dtype=str)
    classes = sorted(set(gene_classes))
    class_index = np.searchsorted(classes, gene_classes)
    rng = np.random.default_rng([seed, VALIDATION_STREAM])
    held_out_genes = np.concatenate(
        [_share(rng, np.flatnonzero(class_index == k), validation_fraction) for k in range(len(classes))]
    )
    held_out_cells = _share(rng, np.arange(len(cells.lengths)), validation_fraction)
    _check_validation(validation_fraction, held_out_genes, "genes")
    validation_genes = np.zeros(len(genes), dtype=bool)
    validation_genes[held_out_genes.astype(np.int64)] = True
    ids = np.array([token_ids[gene] for gene in genes], dtype=np.int64)
    train_lookup, validation_lookup = (np.full(len(tokens), IGNORE_INDEX, dtype=np.int64) for _ in range(2))
    train_lookup[ids[~validation_genes]] = class_index[~validation_genes]
    validation_lookup[ids[validation_genes]] = class_index[validation_genes]
    in_validation = np.isin(np.arange(len(cells.lengths)), held_out_cells)
    train_rows = np.flatnonzero(~in_validation & _holds_a_label(cells, train_lookup))
    validation_rows = np.flatnonzero(in_validation & _holds_a_label(cells, validation_lookup))
    if not len(train_rows):
        raise ValueError("no training cell holds a token of a labelled training gene; check the genes and cells")
    _check_validation(validation_fraction, validation_rows, "cells that hold a held-out gene")
    return LabelledCells(cells, classes, train_rows, validation_rows, None, train_lookup, validation_lookup)


def _share(rng: np.random.Generator, rows: np.ndarray, fraction: float) -> np.ndarray:
    """``min(max(1, round(fraction * n)), n - 1)`` random rows of ``rows``, none for ``fraction = 0``."""
    if fraction == 0:
        return rows[:0]
    n_out = min(max(1, round(fraction * len(rows))), max(len(rows) - 1, 0))
    return rng.permutation(rows)[:n_out]


def _holds_a_label(cells: ModelCells, lookup: np.ndarray) -> np.ndarray:
    """Whether each cell holds at least one token labelled in ``lookup`` (every cell has a token)."""
    labelled = (lookup[cells.tokens.input_ids] != IGNORE_INDEX).astype(np.int64)
    return np.add.reduceat(labelled, cells.tokens.offsets[:-1]) > 0


def _check_validation(fraction: float, held_out: np.ndarray, what: str) -> None:
    """A validation share must hold something out; an empty one would silently switch early stopping off."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {fraction}")
    if fraction > 0 and len(held_out) == 0:
        raise ValueError(
            f"validation_fraction={fraction} holds out no {what}; "
            "use more data, a larger share, or validation_fraction=0 (no early stopping)"
        )
