"""A tokenised corpus on disk: Arrow shards readable by Hugging Face ``datasets``, plus metadata.

Layout of a corpus directory::

    shard-00000.arrow ...     Arrow IPC streams, one row per cell; read in the order listed in
                              the metadata, they give the cells in input order
    gene_table.tsv.gz         the vocabulary and medians used (token_id = row number)
    cellshift_corpus.json     settings, gene-table hash, inputs, cells kept and dropped, shards

Columns: ``cell_id`` (obs name), ``source`` (input index), ``input_ids`` (int32 list),
``values`` (float32 list, log1p of normalised expression; only when tokenised with values),
``length``, ``species`` and any requested obs keys. Each shard is written by one task (in
parallel, possibly on other machines) in record batches of bounded size. The directory is
written under a temporary name and renamed when complete, so a crashed run never leaves a half
corpus under the final name.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from datasets import Dataset, concatenate_datasets

from cellshift.data.gene_table import GeneTable
from cellshift.tokenize.rank import EncodedCells

METADATA_FILE = "cellshift_corpus.json"
GENE_TABLE_FILE = "gene_table.tsv.gz"
FORMAT_VERSION = 1
MAX_BATCH_TOKENS = 2**26  # tokens per Arrow record batch (256 MiB of int32 IDs), far below the 2**31 limit


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

    def gene_table(self) -> GeneTable:
        """The gene table the corpus was tokenised with."""
        return GeneTable.load(self.path / GENE_TABLE_FILE)

    def dataset(self):
        """All shards as one memory-mapped ``datasets.Dataset``, rows in input cell order."""
        shards = [Dataset.from_file(str(self.path / s["file"])) for s in self.metadata["shards"]]
        return concatenate_datasets(shards) if len(shards) > 1 else shards[0]


def load_corpus(path: str | os.PathLike):
    """Load a tokenised corpus as one ``datasets.Dataset`` (memory-mapped, input cell order)."""
    return Corpus.open(path).dataset()


def corpus_schema(obs_columns: dict[str, pa.DataType], *, with_values: bool) -> pa.Schema:
    """Arrow schema of a corpus: the fixed columns (``values`` only when asked for), then obs columns."""
    fields = [("cell_id", pa.string()), ("source", pa.int32()), ("input_ids", pa.list_(pa.int32()))]
    if with_values:
        fields.append(("values", pa.list_(pa.float32())))
    fields += [("length", pa.int32()), ("species", pa.string())]
    return pa.schema(fields + list(obs_columns.items()))


class ShardWriter:
    """Writes cells into one Arrow shard file, in record batches of at most ``max_batch_tokens`` tokens.

    (Default :data:`MAX_BATCH_TOKENS`; a single cell with more tokens gets a batch of its own.)

    Arrow list columns index their elements with 32-bit offsets, so one batch must hold fewer than
    2**31 tokens; bounded batches keep any shard size, and any ``chunk_size``, far from that limit.
    """

    def __init__(self, path: Path, schema: pa.Schema, *, max_batch_tokens: int | None = None) -> None:
        self.path = path
        self.schema = schema
        self.max_batch_tokens = MAX_BATCH_TOKENS if max_batch_tokens is None else max_batch_tokens
        self.n_cells = 0
        self._sink = pa.OSFile(str(path), "wb")
        self._stream = pa.ipc.new_stream(self._sink, schema)

    def write(self, cells: EncodedCells, *, cell_ids: pd.Index, source: int, species: str, obs: pd.DataFrame) -> None:
        """Append cells in order; a new batch starts before a cell that would exceed the token bound."""
        start = 0
        while start < len(cell_ids):
            limit = cells.offsets[start] + self.max_batch_tokens
            stop = max(start + 1, int(np.searchsorted(cells.offsets, limit, side="right")) - 1)
            stop = min(stop, len(cell_ids))
            self._stream.write_batch(self._batch(cells, cell_ids, source, species, obs, start, stop))
            self.n_cells += stop - start
            start = stop

    def _batch(self, cells, cell_ids, source, species, obs, start, stop) -> pa.RecordBatch:
        offsets = cells.offsets[start : stop + 1]
        window = slice(int(offsets[0]), int(offsets[-1]))
        local = pa.array((offsets - offsets[0]).astype(np.int32))
        n = stop - start
        columns = {
            "cell_id": pa.array(np.asarray(cell_ids[start:stop], dtype=str), pa.string()),
            "source": pa.array(np.full(n, source, dtype=np.int32)),
            "input_ids": pa.ListArray.from_arrays(local, pa.array(cells.input_ids[window])),
            "length": pa.array(np.diff(offsets).astype(np.int32)),
            "species": pa.array([species] * n, pa.string()),
        }
        if "values" in self.schema.names:
            columns["values"] = pa.ListArray.from_arrays(local, pa.array(cells.values[window]))
        for name in obs.columns:
            field_type = self.schema.field(name).type
            values = obs[name].iloc[start:stop]
            values = values.astype(str) if field_type == pa.string() else values
            columns[name] = pa.array(values.to_numpy(), field_type)
        return pa.RecordBatch.from_arrays([columns[name] for name in self.schema.names], schema=self.schema)

    def close(self) -> None:
        """Finish the file."""
        self._stream.close()
        self._sink.close()


class CorpusWriter:
    """Owns a corpus directory while it is written: shards go to a temporary directory, renamed when done."""

    def __init__(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> None:
        self.out_dir = Path(out_dir).absolute()
        if self.out_dir.exists() and not overwrite:
            raise FileExistsError(
                f"{self.out_dir} already exists; choose another --out or pass overwrite=True (--overwrite)"
            )
        self.work_dir = self.out_dir.with_name(f".{self.out_dir.name}.partial-{os.getpid()}")
        if self.work_dir.exists():
            shutil.rmtree(self.work_dir)
        self.work_dir.mkdir(parents=True)

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
        if self.out_dir.exists():
            old = self.out_dir.with_name(f".{self.out_dir.name}.old-{os.getpid()}")
            os.replace(self.out_dir, old)
            os.replace(self.work_dir, self.out_dir)
            shutil.rmtree(old)
        else:
            os.replace(self.work_dir, self.out_dir)
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
