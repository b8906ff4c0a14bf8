"""How often each gene occurs in training cells: the evaluation's baseline and the gene head's first bias."""

from __future__ import annotations

import numpy as np
import torch

from cellshift.models import CellshiftForMaskedGeneModeling
from cellshift.training.corpora import TrainingCells


def gene_frequency(dataset, rows: np.ndarray, vocab_size: int) -> np.ndarray:
    """Occurrences of every token over the cells ``rows`` of ``dataset``."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(rows), 4096):
        tokens = dataset.select_columns(["input_ids"])[rows[start : start + 4096].tolist()]["input_ids"]
        counts += np.bincount(np.concatenate([np.asarray(t) for t in tokens]), minlength=vocab_size)
    return counts


def start_from_gene_frequencies(
    model: CellshiftForMaskedGeneModeling,
    cells: TrainingCells,
    train_rows: np.ndarray,
    seed: int,
    max_cells: int = 100_000,
) -> None:
    """Set the gene head's output bias to the log-frequency of each gene in (a sample of) the training cells.

    With bias ``b_g = log((n_g + 1) / (N + V))`` an untrained model already ranks genes like the
    gene-frequency baseline, and training spends its steps on what the context of a cell adds
    (the usual initialisation of a classifier's bias to the log class priors). Special tokens
    keep the floor value.
    """
    rows = train_rows
    if len(rows) > max_cells:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_cells, replace=False))
    counts = gene_frequency(cells.dataset, rows, model.config.vocab_size).astype(np.float64)
    counts[model.config.special_token_ids] = 0
    bias = np.log((counts + 1) / (counts.sum() + len(counts)))
    with torch.no_grad():
        model.gene_head.decoder.bias.copy_(torch.as_tensor(bias, dtype=model.gene_head.decoder.bias.dtype))
