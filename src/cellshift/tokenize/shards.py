"""One tokenising task: a range of cells of one input file -> one Arrow shard (runs in any worker).

A worker receives the run's :class:`RunSpec` once (``init_worker``), then tasks. For each task it
reads the cells in blocks of ``chunk_size`` rows (opening the input file itself, once per
worker), encodes them (:func:`~cellshift.tokenize.encode.encode_block`) and appends them to its
shard; only counts go back to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from cellshift.data.reading import CountReader
from cellshift.tokenize.arrow import ShardWriter
from cellshift.tokenize.encode import DROP_REASONS, TokenizeSettings, encode_species_block
from cellshift.tokenize.plan import InputGenes


@dataclass(frozen=True)
class InputJob:
    """What a worker needs to know about one input (picklable)."""

    path: str | None
    layer: str | None
    genes: InputGenes
    layers: list[str]
    name: str


@dataclass(frozen=True)
class RunSpec:
    """What every task of a run shares (picklable; sent once to each worker)."""

    jobs: list[InputJob]
    settings: TokenizeSettings
    special_ids: tuple[int, int] | None
    kernel: str
    chunk_size: int
    obs_keys: tuple[str, ...]
    schema: pa.Schema
    work_dir: str


@dataclass(frozen=True)
class ShardTask:
    """Cells ``start:stop`` of input ``source``, written to shard number ``index``."""

    index: int
    source: int
    start: int
    stop: int


_WORKER_STATE: dict = {}  # the run's spec and open readers, per process


def init_worker(spec: RunSpec, readers: dict[int, CountReader] | None = None) -> None:
    """Keep the run's spec; ``readers`` are this process's (workers open their own files)."""
    _WORKER_STATE.update(spec=spec, readers={} if readers is None else readers)


def encode_shard(task: ShardTask) -> dict:
    """Encode cells ``task.start:task.stop`` block by block into shard ``task.index``; return counts."""
    spec: RunSpec = _WORKER_STATE["spec"]
    job = spec.jobs[task.source]
    readers = _WORKER_STATE["readers"]
    if task.source not in readers:
        readers[task.source] = CountReader(job.path, layer=job.layer)
    reader = readers[task.source]
    where = f"{'X' if job.layer is None else 'layer ' + repr(job.layer)} of {job.name}"
    file = f"shard-{task.index:05d}.arrow"
    shard = ShardWriter(Path(spec.work_dir) / file, spec.schema)
    dropped = dict.fromkeys(DROP_REASONS, 0)
    try:
        for start in range(task.start, task.stop, spec.chunk_size):
            stop = min(task.stop, start + spec.chunk_size)
            species = job.genes.species_of(reader.obs, start, stop)
            block = encode_species_block(
                reader.read_rows(start, stop, as_stored=True),
                job.genes,
                species,
                spec.settings,
                special_ids=spec.special_ids,
                totals=cell_totals(reader, start, stop),
                where=where,
                layers=job.layers,
                kernel=spec.kernel,
            )
            kept = block.kept_rows + start
            cells_obs = reader.obs.iloc[kept]
            shard.write(
                block.cells,
                cell_ids=cells_obs.index,
                source=task.source,
                species=species[block.kept_rows],
                obs=cells_obs[list(spec.obs_keys)],
            )
            for reason, n in block.dropped.items():
                dropped[reason] += n
    finally:
        shard.close()
    if shard.n_cells == 0:
        shard.path.unlink()
    return {
        "index": task.index,
        "source": task.source,
        "file": file,
        "n_cells": shard.n_cells,
        "dropped": dropped,
        "cells": task.stop - task.start,
    }


def forget_readers() -> None:
    """Drop this process's task state (the caller closes its own readers)."""
    _WORKER_STATE.clear()


def cell_totals(reader: CountReader, start: int, stop: int) -> np.ndarray | None:
    """Cell totals from ``obs['n_counts']`` when present (Geneformer's convention), else ``None``."""
    if "n_counts" not in reader.obs.columns:
        return None
    return pd.to_numeric(reader.obs["n_counts"].iloc[start:stop]).to_numpy(np.float64)
