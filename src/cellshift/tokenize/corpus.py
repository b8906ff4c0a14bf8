"""A tokenised corpus on disk: Arrow shards readable by Hugging Face ``datasets``, plus metadata.

Layout of a corpus directory::

    shard-00000.arrow ...     Arrow IPC streams, one row per cell; read in the order listed in
                              the metadata, they give the cells in input order
    gene_table.tsv.gz         the vocabulary and medians used (token_id = row number)
    cellshift_corpus.json     settings, gene-table hash, inputs, cells kept and dropped, shards

Columns: ``cell_id`` (obs name), ``source`` (input index), ``input_ids`` (int32 list),
``values`` (float32 list, log1p of normalised expression; only when tokenised with values),
``length``, ``species`` (each cell's) and any requested obs keys. Each shard is written by one task (in
parallel, possibly on other machines) in record batches of bounded size. The directory is
written under a temporary name and renamed when complete, so a crashed run never leaves a half
corpus under the final name; the temporary folders of killed runs are removed by the next run
into the same folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
from datasets import Dataset, concatenate_datasets

from cellshift._io import check_writable, partial_dir, swap_into_place
from cellshift.data.gene_table import GeneTable
from cellshift.tokenize.arrow import ShardWriter

METADATA_FILE = "cellshift_corpus.json"
GENE_TABLE_FILE = "gene_table.tsv.gz"
FORMAT_VERSION = 1


@dataclass
class Corpus:
    """A tokenised corpus directory."""

    path: Path
    metadata: dict

    @classmethod
    def open(cls, path: str | os.PathLike) -> Corpus:
        """Open a corpus directory written by :func:`cellshift.tokenize.tokenize`."""
        path = Path(path)
        meta_file = path / METADATA_FILE
        if not meta_file.exists():
            raise FileNotFoundError(
                f"{path} is not a cellshift corpus (no {METADATA_FILE}); make one with `cellshift tokenize`"
            )
        metadata = json.loads(meta_file.read_text())
        for shard in metadata["shards"]:
            if not (path / shard["file"]).exists():
                raise FileNotFoundError(f"corpus {path} is incomplete: shard {shard['file']} is missing")
        return cls(path, metadata)

    @property
    def n_cells(self) -> int:
        """Number of tokenised cells."""
        return int(self.metadata["n_cells_kept"])

    @property
    def vocabulary(self) -> str:
        """``ortholog`` or ``joint`` (:mod:`cellshift.data.vocabulary`); older corpora are ``ortholog``."""
        return self.metadata["gene_table"].get("vocabulary", "ortholog")

    def gene_table(self) -> GeneTable:
        """The gene table the corpus was tokenised with."""
        return GeneTable.load(self.path / GENE_TABLE_FILE)

    def dataset(self):
        """All shards as one memory-mapped ``datasets.Dataset``, rows in input cell order."""
        shards = [Dataset.from_file(str(self.path / s["file"])) for s in self.metadata["shards"]]
        return concatenate_datasets(shards) if len(shards) > 1 else shards[0]


def load_corpus(paths: str | os.PathLike | Sequence[str | os.PathLike]):
    """Load one tokenised corpus, or several, as one ``datasets.Dataset`` (memory-mapped, cells in order).

    Several corpora must share one vocabulary and gene table (:func:`check_same_vocabulary`);
    their rows follow each other in the order given, with the columns they all have.
    """
    if isinstance(paths, (str, os.PathLike)):
        return Corpus.open(paths).dataset()
    corpora = [Corpus.open(path) for path in paths]
    if not corpora:
        raise ValueError("no corpus given; make one with `cellshift tokenize`")
    check_same_vocabulary(corpora)
    datasets = [corpus.dataset() for corpus in corpora]
    common = set.intersection(*(set(d.column_names) for d in datasets))
    datasets = [d.select_columns([c for c in d.column_names if c in common]) for d in datasets]
    return concatenate_datasets(datasets) if len(datasets) > 1 else datasets[0]


def check_same_vocabulary(corpora: Sequence[Corpus]) -> None:
    """Refuse corpora tokenised with different vocabularies or gene tables, naming both.

    Raises
    ------
    ValueError
        When a corpus's vocabulary (``ortholog`` / ``joint``) or gene table differs from the first's.
    """
    first = corpora[0]
    first_table = first.gene_table().sha256
    for corpus in corpora[1:]:
        if corpus.vocabulary != first.vocabulary:
            raise ValueError(
                f"{corpus.path} was tokenised with the {corpus.vocabulary} vocabulary but {first.path} with the "
                f"{first.vocabulary} vocabulary; tokenise all corpora of one model with one --gene-table "
                "(and --vocabulary)"
            )
        if corpus.gene_table().sha256 != first_table:
            raise ValueError(
                f"{corpus.path} was tokenised with another gene table than {first.path}; tokenise all "
                "corpora of one model with the same --gene-table"
            )


class CorpusWriter:
    """Owns a corpus directory while it is written: shards go to a temporary directory, renamed when done."""

    def __init__(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> None:
        self.out_dir = check_writable(Path(out_dir).absolute(), overwrite)
        self.work_dir = partial_dir(self.out_dir)

    def finish(self, metadata: dict, table: GeneTable, shards: list[dict], schema: pa.Schema) -> Corpus:
        """Write metadata and the gene table, then move the corpus to its final name.

        ``shards`` lists ``{"file", "n_cells"}`` in input cell order; a corpus without cells gets
        one empty shard.
        """
        if not shards:
            ShardWriter(self.work_dir / "shard-00000.arrow", schema).close()
            shards = [{"file": "shard-00000.arrow", "n_cells": 0}]
        table.save(self.work_dir / GENE_TABLE_FILE)
        metadata = {**metadata, "format_version": FORMAT_VERSION, "shards": shards, "columns": schema.names}
        (self.work_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        swap_into_place(self.work_dir, self.out_dir)
        return Corpus(self.out_dir, metadata)

    def abort(self) -> None:
        """Remove the partial output after a failure."""
        shutil.rmtree(self.work_dir, ignore_errors=True)


def arrow_type_of(column: pd.Series) -> pa.DataType:
    """Arrow type for an obs column: numbers and booleans keep their type, the rest become strings."""
    if pd.api.types.is_bool_dtype(column):
        return pa.bool_()
    if pd.api.types.is_integer_dtype(column):
        return pa.int64()
    if pd.api.types.is_float_dtype(column):
        return pa.float64()
    return pa.string()
