"""Several tokenised corpora as one training set, with a seeded split of held-out cells."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import concatenate_datasets

from cellshift._io import write_text_atomic
from cellshift.data.gene_table import GeneTable
from cellshift.tokenize import Corpus
from cellshift.tokenize.corpus import check_same_vocabulary

SPLIT_FILE = "heldout_cells.json"


@dataclass
class TrainingCells:
    """Cells of one or more corpora, concatenated in the order given.

    Attributes
    ----------
    dataset
        A ``datasets.Dataset`` over all cells.
    gene_table
        The vocabulary shared by every corpus.
    corpora
        ``[{"path", "n_cells", "offset"}]``, one per corpus; cell ``i`` of corpus ``c`` is row
        ``offset + i`` of ``dataset``.
    """

    dataset: object
    gene_table: GeneTable
    corpora: list[dict]
    cls_eos_tokens: bool = False

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per cell."""
        return np.asarray(self.dataset["length"])


def open_corpora(paths: list[str | os.PathLike]) -> TrainingCells:
    """Open corpora written by :func:`cellshift.tokenize.tokenize`; they must share one vocabulary and gene table."""
    if not paths:
        raise ValueError("no corpus given; make one with `cellshift tokenize`")
    opened = [Corpus.open(path) for path in paths]
    check_same_vocabulary(opened)
    table = opened[0].gene_table()
    special = {bool(corpus.metadata["settings"]["special_tokens"]) for corpus in opened}
    if len(special) > 1:
        raise ValueError("some corpora were tokenised with --special-tokens and some without; use one setting")
    datasets = [corpus.dataset() for corpus in opened]
    common = set.intersection(*(set(d.column_names) for d in datasets))
    datasets = [d.select_columns([c for c in d.column_names if c in common]) for d in datasets]
    offsets = np.cumsum([0] + [len(d) for d in datasets])
    corpora = [
        {"path": str(Path(corpus.path).resolve()), "n_cells": len(d), "offset": int(offset)}
        for corpus, d, offset in zip(opened, datasets, offsets, strict=False)
    ]
    dataset = concatenate_datasets(datasets) if len(datasets) > 1 else datasets[0]
    return TrainingCells(dataset, table, corpora, special.pop())


def split_heldout(cells: TrainingCells, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows for training and held-out rows: a seeded ``fraction`` of each corpus, at least one cell."""
    if not 0 <= fraction < 1:
        raise ValueError(f"held-out fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    heldout = []
    for corpus in cells.corpora:
        n_heldout = int(round(fraction * corpus["n_cells"]))
        if fraction > 0:
            n_heldout = max(n_heldout, 1)
        heldout.append(corpus["offset"] + np.sort(rng.choice(corpus["n_cells"], n_heldout, replace=False)))
    heldout_rows = np.concatenate(heldout).astype(np.int64)
    train_rows = np.setdiff1d(np.arange(len(cells.dataset)), heldout_rows)
    return train_rows, heldout_rows


def save_split(path: Path, cells: TrainingCells, heldout_rows: np.ndarray) -> None:
    """Record, per corpus, which of its cells were held out of training."""
    record = []
    for corpus in cells.corpora:
        start, stop = corpus["offset"], corpus["offset"] + corpus["n_cells"]
        mine = heldout_rows[(heldout_rows >= start) & (heldout_rows < stop)] - start
        record.append({"path": corpus["path"], "n_cells": corpus["n_cells"], "heldout": mine.tolist()})
    write_text_atomic(path, json.dumps(record))


def heldout_rows_of(
    split_path: Path,
    corpus_path: str | os.PathLike,
    n_cells: int,
    cell_ids: Callable[[], Sequence[str]] | None = None,
) -> np.ndarray | None:
    """Held-out cells of ``corpus_path`` from a model's split file; ``None`` if it was not a training corpus.

    A corpus is recognised by its path, or, for an entry that lists ``heldout_cell_ids`` (a model
    packaged with cellshift, whose corpora were made elsewhere), by its number of cells and the IDs
    of its held-out cells among ``cell_ids()`` (the corpus's ``cell_id`` column; read only then).
    """
    if not split_path.exists():
        return None
    resolved = str(Path(corpus_path).resolve())
    for corpus in json.loads(split_path.read_text()):
        if corpus["n_cells"] != n_cells:
            continue
        if corpus.get("path") == resolved:
            return np.asarray(corpus["heldout"], dtype=np.int64)
        if corpus.get("heldout_cell_ids") and cell_ids is not None:
            rows = pd.Index(list(cell_ids())).get_indexer(corpus["heldout_cell_ids"])
            if (rows >= 0).all():
                return np.sort(rows).astype(np.int64)
    return None
    resolved = str(Path(corpus_path).resolve())
    for corpus in json.loads(split_path.read_text()):
        if corpus["path"] == resolved and corpus["n_cells"] == n_cells:
            return np.asarray(corpus["heldout"], dtype=np.int64)
    return None
