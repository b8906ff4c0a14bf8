"""``tokenize``: raw-count AnnData files -> a rank-value-encoded Arrow corpus (Geneformer's rank-value encoding).

Cells are read, checked and encoded in blocks of ``chunk_size`` rows, by ``workers`` processes
that each open the input file themselves, so memory does not grow with the number of cells.
Blocks are written back in input order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import cellshift
from cellshift.data.gene_table import GeneTable
from cellshift.data.reading import CountReader
from cellshift.tokenize.corpus import Corpus, CorpusWriter, arrow_type_of
from cellshift.tokenize.encode import DROP_REASONS, EncodedBlock, TokenizeSettings, encode_block
from cellshift.tokenize.plan import GenePlan, plan_genes

Input = str | os.PathLike | ad.AnnData
RESERVED_COLUMNS = ("cell_id", "source", "input_ids", "values", "length", "species")


@dataclass(frozen=True)
class _InputJob:
    """What a worker needs to know about one input (picklable)."""

    path: str | None
    layer: str | None
    plan: GenePlan
    layers: list[str]
    name: str


def tokenize(
    inputs: Input | Sequence[Input],
    out_dir: str | os.PathLike,
    *,
    gene_table: str | os.PathLike | GeneTable = "geneformer-gc30M",
    max_length: int = 2048,
    special_tokens: bool = False,
    obs_keys: Sequence[str] = (),
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    min_genes: int = 500,
    workers: int = 1,
    chunk_size: int = 2048,
    shard_size: int = 100_000,
    overwrite: bool = False,
    progress: bool = True,
) -> Corpus:
    """Tokenise raw-count AnnData inputs into a sharded Arrow corpus.

    Parameters
    ----------
    inputs
        One or more ``.h5ad`` paths or AnnData objects holding raw counts.
    out_dir
        Corpus directory to create (must not exist unless ``overwrite``).
    gene_table
        ``geneformer-gc30M``, ``geneformer-gc95M``, a gene-table TSV (``cellshift medians``) or a
        :class:`~cellshift.data.GeneTable`.
    max_length
        Maximum tokens per cell, special tokens included.
    special_tokens
        Add ``<cls>`` first and ``<eos>`` last (the table must have them).
    obs_keys
        obs columns copied into the corpus.
    layer
        Layer holding raw counts (default ``X``).
    gene_key
        var column with gene identifiers (default: the var index).
    species
        ``human`` or ``mouse``; detected from the gene identifiers when ``None``.
    min_genes
        Drop cells expressing fewer input genes (Zhao et al. 2025 used 500; lower it for small
        gene panels). Dropped cells are counted in the metadata.
    workers
        Processes encoding blocks in parallel.
    chunk_size
        Cells per block.
    shard_size
        Cells per Arrow shard.
    overwrite
        Replace an existing ``out_dir``.
    progress
        Show a progress bar.

    Returns
    -------
    The written :class:`~cellshift.tokenize.corpus.Corpus`; ``corpus.dataset()`` gives the rows.
    """
    sources = [inputs] if isinstance(inputs, (str, os.PathLike, ad.AnnData)) else list(inputs)
    if not sources:
        raise ValueError("no inputs given: pass at least one .h5ad path or AnnData")
    table = gene_table if isinstance(gene_table, GeneTable) else GeneTable.load(gene_table)
    special_ids = _special_ids(table, special_tokens)
    settings = TokenizeSettings(max_length, special_tokens, min_genes)
    if max_length < (3 if special_tokens else 1):
        raise ValueError(f"max_length {max_length} leaves no room for a gene")
    clashing = set(obs_keys) & set(RESERVED_COLUMNS)
    if clashing:
        raise ValueError(f"obs keys {sorted(clashing)} clash with corpus columns {RESERVED_COLUMNS}; rename them")

    readers = [CountReader(source, layer=layer) for source in sources]
    jobs = [_prepare_input(reader, i, table, obs_keys, gene_key, species) for i, reader in enumerate(readers)]
    obs_types = {key: arrow_type_of(readers[0].obs[key]) for key in obs_keys}
    writer = CorpusWriter(out_dir, obs_columns=obs_types, shard_size=shard_size, overwrite=overwrite)
    tasks = (
        (i, start, stop, _totals(reader, start, stop), None if job.path else reader.read_rows(start, stop))
        for i, (reader, job) in enumerate(zip(readers, jobs, strict=True))
        for start, stop in reader.chunks(chunk_size)
    )
    per_input = [{"cells": r.n_obs, "kept": 0, "dropped": dict.fromkeys(DROP_REASONS, 0)} for r in readers]
    try:
        with tqdm(total=sum(r.n_obs for r in readers), unit="cell", desc="tokenize", disable=not progress) as bar:
            for i, start, stop, block in _run(tasks, jobs, settings, special_ids, workers):
                reader = readers[i]
                kept = block.kept_rows + start
                writer.write(
                    block.cells,
                    cell_ids=reader.obs.index[kept],
                    source=i,
                    species=jobs[i].plan.species,
                    obs=reader.obs.iloc[kept][list(obs_keys)],
                )
                per_input[i]["kept"] += len(kept)
                for reason, n in block.dropped.items():
                    per_input[i]["dropped"][reason] += n
                bar.update(stop - start)
        n_kept = sum(p["kept"] for p in per_input)
        if n_kept == 0:
            raise ValueError(_nothing_kept_message(per_input, min_genes, readers))
        metadata = {
            "cellshift_version": cellshift.__version__,
            "gene_table": {
                "name": table.name,
                "sha256": table.sha256,
                "n_tokens": len(table),
                "special_tokens": table.special_tokens,
            },
            "settings": {
                **settings.as_dict(),
                "layer": layer,
                "gene_key": gene_key,
                "obs_keys": list(obs_keys),
                "chunk_size": chunk_size,
            },
            "inputs": [
                {"source": job.name, **job.plan.report(), **counts} for job, counts in zip(jobs, per_input, strict=True)
            ],
            "n_cells_kept": n_kept,
            "n_cells_dropped": sum(sum(p["dropped"].values()) for p in per_input),
        }
        return writer.finish(metadata, table)
    except BaseException:
        writer.abort()
        raise
    finally:
        for reader in readers:
            reader.close()


def _special_ids(table: GeneTable, special_tokens: bool) -> tuple[int, int] | None:
    if not special_tokens:
        return None
    specials = table.special_tokens
    if "<cls>" not in specials or "<eos>" not in specials:
        raise ValueError(
            f"gene table {table.name} has no <cls>/<eos> tokens (it has {sorted(specials)}); use "
            "geneformer-gc95M or a table from `cellshift medians`, or drop special_tokens"
        )
    return specials["<cls>"], specials["<eos>"]


def _prepare_input(
    reader: CountReader,
    index: int,
    table: GeneTable,
    obs_keys: Sequence[str],
    gene_key: str | None,
    species: str | None,
) -> _InputJob:
    if reader.n_obs == 0 or reader.n_vars == 0:
        raise ValueError(f"{reader.name} is empty ({reader.n_obs} cells x {reader.n_vars} genes); nothing to tokenise")
    missing = [key for key in obs_keys if key not in reader.obs.columns]
    if missing:
        raise KeyError(f"obs keys {missing} not found in {reader.name}; obs columns: {list(reader.obs.columns)}")
    if "n_counts" in reader.obs.columns:
        totals = pd.to_numeric(reader.obs["n_counts"], errors="coerce").to_numpy(np.float64)
        if not np.isfinite(totals).all() or (totals < 0).any():
            raise ValueError(
                f"obs['n_counts'] of {reader.name} holds non-numeric, infinite or negative values; fix or drop "
                "the column (totals are then summed from the counts)"
            )
    plan = plan_genes(reader.gene_names(gene_key), table, species=species, source=reader.name)
    path = str(reader.path) if reader.path else None
    return _InputJob(path, reader.layer, plan, reader.layers, f"{reader.name} [{index}]" if path is None else path)


def _totals(reader: CountReader, start: int, stop: int) -> np.ndarray | None:
    """Cell totals from ``obs['n_counts']`` when present (Geneformer's convention), else ``None``."""
    if "n_counts" not in reader.obs.columns:
        return None
    return pd.to_numeric(reader.obs["n_counts"].iloc[start:stop]).to_numpy(np.float64)


# --- worker side -----------------------------------------------------------------------------
_WORKER_STATE: dict = {}


def _init_worker(jobs: list[_InputJob], settings: TokenizeSettings, special_ids) -> None:
    _WORKER_STATE.update(jobs=jobs, settings=settings, special_ids=special_ids, readers={})


def _encode_task(task) -> tuple[int, int, int, EncodedBlock]:
    i, start, stop, totals, block = task
    job: _InputJob = _WORKER_STATE["jobs"][i]
    if block is None:
        readers = _WORKER_STATE["readers"]
        if i not in readers:
            readers[i] = CountReader(job.path, layer=job.layer)
        block = readers[i].read_rows(start, stop)
    where = f"{'X' if job.layer is None else 'layer ' + repr(job.layer)} of {job.name}"
    encoded = encode_block(
        block,
        job.plan,
        _WORKER_STATE["settings"],
        special_ids=_WORKER_STATE["special_ids"],
        totals=totals,
        where=where,
        layers=job.layers,
    )
    return i, start, stop, encoded


def _run(tasks, jobs, settings, special_ids, workers: int):
    """Encode tasks in order, in this process or in a pool of ``workers`` processes."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1:
        _init_worker(jobs, settings, special_ids)
        try:
            yield from map(_encode_task, tasks)
        finally:
            for reader in _WORKER_STATE.pop("readers", {}).values():
                reader.close()
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(jobs, settings, special_ids)) as pool:
        yield from pool.imap(_encode_task, tasks)


def _nothing_kept_message(per_input: list[dict], min_genes: int, readers: list[CountReader]) -> str:
    dropped = {reason: sum(p["dropped"][reason] for p in per_input) for reason in DROP_REASONS}
    panel = min(r.n_vars for r in readers)
    hint = (
        f" The smallest input has only {panel} genes: lower min_genes (--min-genes)."
        if dropped["too_few_genes"]
        else ""
    )
    return f"all cells were dropped ({dropped}); min_genes={min_genes}.{hint}"
