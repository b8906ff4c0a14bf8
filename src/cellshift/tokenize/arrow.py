"""Arrow shard files of a corpus: the schema and a writer of bounded record batches.

Kept apart from :mod:`cellshift.tokenize.corpus` so that worker processes, which only write
shards, do not import Hugging Face ``datasets``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from cellshift.tokenize.rank import EncodedCells

MAX_BATCH_TOKENS = 2**26  # tokens per Arrow record batch (256 MiB of int32 IDs), far below the 2**31 limit


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

    def write(
        self, cells: EncodedCells, *, cell_ids: pd.Index, source: int, species: np.ndarray, obs: pd.DataFrame
    ) -> None:
        """Append cells in order; a new batch starts before a cell that would exceed the token bound.

        ``species`` holds each cell's species.
        """
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
            "species": pa.array(np.asarray(species[start:stop], dtype=str), pa.string()),
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
