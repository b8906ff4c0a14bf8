"""``tokenize``: raw-count AnnData files -> a rank-value-encoded Arrow corpus (Geneformer's rank-value encoding).

The cells of every input are split into tasks of consecutive cells. Each task reads its cells in
blocks of ``chunk_size`` rows, encodes them and writes its own Arrow shard, so memory does not
grow with the number of cells and nothing but a row count goes back to this process. Tasks run in
this process, in spawned worker processes, or on Ray (:mod:`cellshift.tokenize.pool`); the
shards are listed in task order, which is input cell order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from itertools import chain

import anndata as ad
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import cellshift
from cellshift.data.gene_table import GeneTable
from cellshift.data.reading import CountReader
from cellshift.data.vocabulary import check_vocabulary
from cellshift.tokenize.arrow import corpus_schema
from cellshift.tokenize.corpus import Corpus, CorpusWriter, arrow_type_of
from cellshift.tokenize.encode import DROP_REASONS, TokenizeSettings
from cellshift.tokenize.plan import plan_input
from cellshift.tokenize.pool import resolve_workers, run_tasks
from cellshift.tokenize.shards import InputJob, RunSpec, ShardTask, encode_shard, forget_readers, init_worker

Input = str | os.PathLike | ad.AnnData
RESERVED_COLUMNS = ("cell_id", "source", "input_ids", "values", "length", "species")
KERNEL_MIN_CELLS = 20_000  # kernel="auto" uses numba from this many cells on
TASKS_PER_WORKER = 4  # tasks (shards) per worker when several run, so that they finish together


def tokenize(
    inputs: Input | Sequence[Input],
    out_dir: str | os.PathLike,
    *,
    gene_table: str | os.PathLike | GeneTable = "geneformer-gc30M",
    max_length: int = 2048,
    special_tokens: bool = False,
    values: bool = False,
    obs_keys: Sequence[str] = (),
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    species_key: str | None = None,
    vocabulary: str | None = None,
    min_genes: int = 500,
    workers: int | str = 1,
    backend: str = "local",
    kernel: str = "auto",
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
    values
        Also store each token's value ``log1p(normalised count)`` (column ``values``), which
        models pre-trained with values read; models of token IDs only do not need it.
    obs_keys
        obs columns copied into the corpus.
    layer
        Layer holding raw counts (default ``X``).
    gene_key
        var column with gene identifiers (default: the var index).
    species
        ``human`` or ``mouse``; detected from the gene identifiers when ``None``.
    species_key
        obs column holding each cell's species (``human`` / ``mouse``), for inputs that mix
        species (instead of ``species``); each cell's genes are mapped as its species' genes.
    vocabulary
        ``ortholog`` (mouse genes as their human orthologs, Geneformer-compatible) or ``joint``
        (mouse genes keep tokens of their own, GeneCompass; see :mod:`cellshift.data.vocabulary`).
        It is the gene table's: ``None`` takes it from the table, and a different one is refused.
        Either way each cell's species is stored (column ``species``).
    min_genes
        Drop cells expressing fewer input genes (Zhao et al. 2025 used 500; lower it for small
        gene panels). Dropped cells are counted in the metadata.
    workers
        Processes encoding and writing shards in parallel, or ``"auto"``: one per 50,000 cells, at
        most one per CPU. In-memory AnnData inputs are always encoded by this process; a script
        that uses several workers must call ``tokenize`` under ``if __name__ == "__main__":``.
    backend
        ``local`` (this machine) or ``ray`` (a Ray pool of ``workers`` actors on the Ray instance
        ``ray.init`` connected to; inputs and ``out_dir`` on a shared filesystem).
    kernel
        ``auto``, ``numba`` or ``numpy``: the rank-value encoding implementation (identical
        output; see :func:`~cellshift.tokenize.rank.rank_value_encode`). ``auto`` takes numba
        from 20,000 cells on (loading its compiled code costs ~0.5 s per process) when installed.
    chunk_size
        Cells read and encoded at a time.
    shard_size
        Most cells per Arrow shard (with several workers, shards are smaller so that every worker
        gets several).
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
    _check_table_vocabulary(table, vocabulary)
    special_ids = _special_ids(table, special_tokens)
    settings = TokenizeSettings(max_length, special_tokens, min_genes, values=values)
    if max_length < (3 if special_tokens else 1):
        raise ValueError(f"max_length {max_length} leaves no room for a gene")
    clashing = set(obs_keys) & set(RESERVED_COLUMNS)
    if clashing:
        raise ValueError(f"obs keys {sorted(clashing)} clash with corpus columns {RESERVED_COLUMNS}; rename them")
    if chunk_size < 1 or shard_size < 1:
        raise ValueError(f"chunk_size and shard_size must be >= 1, got {chunk_size} and {shard_size}")

    readers = [CountReader(source, layer=layer) for source in sources]
    try:
        for reader in readers:
            reader.check_first_rows(chunk_size)
        jobs = [
            _prepare_input(reader, i, table, obs_keys, gene_key, species, species_key)
            for i, reader in enumerate(readers)
        ]
        n_cells = sum(r.n_obs for r in readers)
        n_workers = resolve_workers(workers, n_cells)
        if kernel == "auto" and n_cells < KERNEL_MIN_CELLS:
            kernel = "numpy"
        schema = corpus_schema({key: arrow_type_of(readers[0].obs[key]) for key in obs_keys}, with_values=values)
        writer = CorpusWriter(out_dir, overwrite=overwrite)
        try:
            spec = RunSpec(
                jobs, settings, special_ids, kernel, chunk_size, tuple(obs_keys), schema, str(writer.work_dir)
            )
            results = _encode_all(readers, spec, shard_size, n_workers, backend, progress)
            per_input = _count_per_input(readers, results)
            if sum(p["kept"] for p in per_input) == 0:
                raise ValueError(_nothing_kept_message(per_input, min_genes, readers))
            metadata = _metadata(
                table,
                settings,
                jobs,
                per_input,
                layer=layer,
                gene_key=gene_key,
                species_key=species_key,
                obs_keys=obs_keys,
            )
            metadata["settings"]["chunk_size"] = chunk_size
            shards = [{"file": r["file"], "n_cells": r["n_cells"]} for r in results if r["n_cells"]]
            return writer.finish(metadata, table, shards, schema)
        except BaseException:
            writer.abort()
            raise
    finally:
        for reader in readers:
            reader.close()


def _encode_all(readers, spec: RunSpec, shard_size: int, workers: int, backend: str, progress: bool) -> list[dict]:
    """Run every shard task; return their results in shard order.

    Files go to the workers (or Ray); in-memory AnnData inputs are encoded here, with this
    process's readers, as are all inputs when one local worker is asked for.
    """
    tasks = _plan_shards([r.n_obs for r in readers], shard_size, workers)
    elsewhere = workers > 1 or backend != "local"
    remote = [t for t in tasks if elsewhere and spec.jobs[t.source].path is not None]
    here = [t for t in tasks if not (elsewhere and spec.jobs[t.source].path is not None)]
    results = chain(
        run_tasks(encode_shard, remote, workers=workers, backend=backend, initializer=init_worker, initargs=(spec,))
        if remote
        else [],
        run_tasks(encode_shard, here, workers=1, initializer=init_worker, initargs=(spec, dict(enumerate(readers)))),
    )
    done = []
    with tqdm(total=sum(r.n_obs for r in readers), unit="cell", desc="tokenize", disable=not progress) as bar:
        for result in results:
            done.append(result)
            bar.update(result["cells"])
    forget_readers()
    return sorted(done, key=lambda r: r["index"])


def _plan_shards(n_cells: list[int], shard_size: int, workers: int) -> list[ShardTask]:
    """Tasks of at most ``shard_size`` consecutive cells of one input; ~4 per worker when several run."""
    size = shard_size
    if workers > 1:
        size = min(shard_size, max(1, math.ceil(sum(n_cells) / (TASKS_PER_WORKER * workers))))
    tasks = []
    for source, n in enumerate(n_cells):
        for start in range(0, n, size):
            tasks.append(ShardTask(len(tasks), source, start, min(n, start + size)))
    return tasks


def _count_per_input(readers: list[CountReader], results: list[dict]) -> list[dict]:
    per_input = [{"cells": r.n_obs, "kept": 0, "dropped": dict.fromkeys(DROP_REASONS, 0)} for r in readers]
    for result in results:
        counts = per_input[result["source"]]
        counts["kept"] += result["n_cells"]
        for reason, n in result["dropped"].items():
            counts["dropped"][reason] += n
    return per_input


def _metadata(table, settings, jobs, per_input, **options) -> dict:
    return {
        "cellshift_version": cellshift.__version__,
        "gene_table": {
            "name": table.name,
            "sha256": table.sha256,
            "n_tokens": len(table),
            "special_tokens": table.special_tokens,
            "vocabulary": table.vocabulary,
        },
        "settings": {**settings.as_dict(), **options, "obs_keys": list(options["obs_keys"])},
        "inputs": [
            {"source": job.name, **job.genes.report(), **counts} for job, counts in zip(jobs, per_input, strict=True)
        ],
        "n_cells_kept": sum(p["kept"] for p in per_input),
        "n_cells_dropped": sum(sum(p["dropped"].values()) for p in per_input),
    }


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
    species_key: str | None,
) -> InputJob:
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
    genes = plan_input(
        reader.gene_names(gene_key), reader.obs, table, species=species, species_key=species_key, source=reader.name
    )
    path = str(reader.path) if reader.path else None
    return InputJob(path, reader.layer, genes, reader.layers, f"{reader.name} [{index}]" if path is None else path)


def _check_table_vocabulary(table: GeneTable, vocabulary: str | None) -> None:
    """Refuse a vocabulary that is not the gene table's (``None`` accepts the table's)."""
    if vocabulary is None:
        return
    check_vocabulary(vocabulary)
    if vocabulary != table.vocabulary:
        raise ValueError(
            f"vocabulary {vocabulary!r} was asked for, but gene table {table.name!r} holds the {table.vocabulary} "
            f"vocabulary; make a {vocabulary} table with `cellshift medians ... --vocabulary {vocabulary}`"
        )


def _nothing_kept_message(per_input: list[dict], min_genes: int, readers: list[CountReader]) -> str:
    dropped = {reason: sum(p["dropped"][reason] for p in per_input) for reason in DROP_REASONS}
    panel = min(r.n_vars for r in readers)
    hint = (
        f" The smallest input has only {panel} genes: lower min_genes (--min-genes)."
        if dropped["too_few_genes"]
        else ""
    )
    return f"all cells were dropped ({dropped}); min_genes={min_genes}.{hint}"
