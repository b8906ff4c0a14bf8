"""Exact non-zero gene medians of a corpus, in two streaming passes (``cellshift medians``).

The median of gene g is taken over the cells that express it, of ``x_cg / T_c * 10,000`` (the
normalised value the tokenizer divides by it; Geneformer's gene median table). Genes are keyed
as in the vocabulary asked for (:mod:`cellshift.data.vocabulary`): by human Ensembl ID, mouse
genes through their human orthologs (``ortholog``), or with mouse genes under tokens of their
own (``joint``); each cell's genes are mapped as its species' genes.

Pass 1 fills a histogram per gene over log10 value bins; from it the bin holding each gene's
middle order statistic(s) is known, with the number of values below it. Pass 2 keeps only the
values falling in those bins and picks the exact order statistics from them (the mean of the two
middle values when a gene has an even count, as ``numpy.median``). Memory: genes x bins int32
counts plus the values in the median bins, never the whole corpus.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import chain

import anndata as ad
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cellshift.data.checks import check_raw_counts
from cellshift.data.reading import CountReader
from cellshift.tokenize.plan import InputGenes, plan_input
from cellshift.tokenize.pool import resolve_workers, run_tasks
from cellshift.tokenize.rank import TARGET_SUM

LOG10_RANGE = (-4.0, 5.0)
TASKS_PER_WORKER = 4


@dataclass(frozen=True)
class _MedianSpec:
    """What every task shares: inputs, gene plans, bins and, in pass 2, each gene's median bins.

    ``global_columns[i][species]`` is the position, among all genes, of each column of input
    ``i``'s plan for ``species``.
    """

    paths: list[str | None]
    layer: str | None
    plans: list[InputGenes]
    global_columns: list[dict[str, np.ndarray]]
    n_genes: int
    min_genes: int
    edges: np.ndarray
    chunk_size: int
    low_bin: np.ndarray | None = None
    high_bin: np.ndarray | None = None


def compute_gene_medians(
    inputs: str | os.PathLike | ad.AnnData | Sequence[str | os.PathLike | ad.AnnData],
    *,
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    species_key: str | None = None,
    vocabulary: str = "ortholog",
    min_genes: int = 500,
    chunk_size: int = 2048,
    n_bins: int = 1024,
    workers: int | str = 1,
    backend: str = "local",
    progress: bool = True,
) -> pd.Series:
    """Non-zero median of normalised expression per gene over one or more raw-count inputs.

    Genes are keyed by their vocabulary key (symbols and mouse genes mapped as in tokenising,
    with duplicates summed); cells expressing fewer than ``min_genes`` genes are skipped, as when
    tokenising. Build a gene table from the result with ``GeneTable.from_medians``. Both passes
    are a map over ranges of cells (``workers`` processes or Ray actors on ``backend``, as in
    :func:`~cellshift.tokenize.tokenize`) and a sum of their small results here.

    ``species`` (one species for every input; detected when ``None``) or ``species_key`` (the obs
    column naming each cell's species, for inputs that mix species) set how genes are mapped;
    ``vocabulary`` is ``ortholog`` (human Ensembl IDs for both species) or ``joint`` (mouse genes
    keyed ``mouse:<symbol>``).

    Returns
    -------
    Series of medians indexed by vocabulary key (human Ensembl ID or mouse token), sorted, genes
    never expressed left out.

    Raises
    ------
    ValueError
        When no gene is expressed in any cell that is kept (e.g. every cell has fewer than
        ``min_genes`` genes): the medians would make an empty gene table.
    """
    sources = [inputs] if isinstance(inputs, (str, os.PathLike, ad.AnnData)) else list(inputs)
    readers = [CountReader(source, layer=layer) for source in sources]
    try:
        for reader in readers:
            reader.check_first_rows(chunk_size)
        plans = [
            plan_input(
                r.gene_names(gene_key),
                r.obs,
                None,
                species=species,
                species_key=species_key,
                vocabulary=vocabulary,
                source=r.name,
            )
            for r in readers
        ]
        genes = sorted({g for genes in plans for plan in genes.plans.values() for g in plan.column_genes})
        position = {g: i for i, g in enumerate(genes)}
        spec = _MedianSpec(
            paths=[str(r.path) if r.path else None for r in readers],
            layer=layer,
            plans=plans,
            global_columns=[
                {name: np.array([position[g] for g in plan.column_genes]) for name, plan in genes.plans.items()}
                for genes in plans
            ],
            n_genes=len(genes),
            min_genes=min_genes,
            edges=np.linspace(*LOG10_RANGE, n_bins + 1),
            chunk_size=chunk_size,
        )
        n_workers = resolve_workers(workers, sum(r.n_obs for r in readers))

        def run_pass(function, spec: _MedianSpec, desc: str):
            return _map(function, spec, readers, n_workers, backend, desc, progress)

        histogram = np.zeros(len(genes) * n_bins, dtype=np.int64)
        for bins, counts in run_pass(_histogram_task, spec, "medians pass 1/2"):
            histogram[bins] += counts
        histogram = histogram.reshape(len(genes), n_bins)
        n_values = histogram.sum(axis=1)
        if not n_values.any():
            raise ValueError(
                f"no gene is expressed in a kept cell of {', '.join(r.name for r in readers)}: every cell has fewer "
                f"than min_genes={min_genes} expressed genes or no counts; lower --min-genes (min_genes)"
            )
        low_rank, high_rank = (n_values - 1) // 2, n_values // 2
        cumulative = histogram.cumsum(axis=1)
        low_bin = (cumulative <= low_rank[:, None]).sum(axis=1)
        high_bin = (cumulative <= high_rank[:, None]).sum(axis=1)
        below = np.where(low_bin > 0, cumulative[np.arange(len(genes)), np.maximum(low_bin - 1, 0)], 0)
        del histogram, cumulative

        kept = list(run_pass(_median_bin_task, replace(spec, low_bin=low_bin, high_bin=high_bin), "medians pass 2/2"))
        gene = np.concatenate([g for g, _ in kept]) if kept else np.zeros(0, dtype=np.int64)
        value = np.concatenate([v for _, v in kept]) if kept else np.zeros(0)
        medians = _pick_medians(gene, value, n_values, low_rank, high_rank, below)
        expressed = n_values > 0
        index = pd.Index(genes, name="ensembl_id" if vocabulary == "ortholog" else "token")
        return pd.Series(medians, index=index, name="median")[expressed]
    finally:
        for reader in readers:
            reader.close()


def _pick_medians(gene, value, n_values, low_rank, high_rank, below) -> np.ndarray:
    """Exact medians from the values in each gene's median bins (the ``below`` values precede them)."""
    order = np.lexsort((value, gene))
    gene, value = gene[order], value[order]
    segment_start = np.searchsorted(gene, np.arange(len(n_values)))
    medians = np.full(len(n_values), np.nan)
    idx = np.flatnonzero(n_values > 0)
    low = value[segment_start[idx] + low_rank[idx] - below[idx]]
    high = value[segment_start[idx] + high_rank[idx] - below[idx]]
    medians[idx] = (low + high) / 2
    return medians


def _map(function, spec: _MedianSpec, readers, workers: int, backend: str, desc: str, progress: bool):
    """Yield ``function``'s result for every range of cells; files may go to workers, AnnData stays here."""
    size = max(spec.chunk_size, math.ceil(sum(r.n_obs for r in readers) / (TASKS_PER_WORKER * workers)))
    tasks = [
        (source, start, min(reader.n_obs, start + size))
        for source, reader in enumerate(readers)
        for start in range(0, reader.n_obs, size)
    ]
    elsewhere = workers > 1 or backend != "local"
    remote = [t for t in tasks if elsewhere and spec.paths[t[0]] is not None]
    here = [t for t in tasks if t not in remote]
    results = chain(
        run_tasks(function, remote, workers=workers, backend=backend, initializer=_init_worker, initargs=(spec,))
        if remote
        else [],
        run_tasks(function, here, workers=1, initializer=_init_worker, initargs=(spec, dict(enumerate(readers)))),
    )
    with tqdm(total=sum(r.n_obs for r in readers), unit="cell", desc=desc, disable=not progress) as bar:
        for cells, result in results:
            bar.update(cells)
            yield result
    _WORKER_STATE.clear()


# --- worker side -----------------------------------------------------------------------------
_WORKER_STATE: dict = {}  # the pass's spec and open readers, per process


def _init_worker(spec: _MedianSpec, readers: dict[int, CountReader] | None = None) -> None:
    _WORKER_STATE.update(spec=spec, readers={} if readers is None else readers)


def _blocks(task):
    """Entries (global gene, log10 bin, normalised value) of a task's cells, block by block."""
    spec: _MedianSpec = _WORKER_STATE["spec"]
    source, first, last = task
    readers = _WORKER_STATE["readers"]
    if source not in readers:
        readers[source] = CountReader(spec.paths[source], layer=spec.layer)
    for start in range(first, last, spec.chunk_size):
        stop = min(last, start + spec.chunk_size)
        yield _normalised_entries(readers[source], spec, source, start, stop)


def _histogram_task(task) -> tuple[int, tuple[np.ndarray, np.ndarray]]:
    """Pass 1: the task's (gene, bin) histogram, as flat indices and counts of its non-zero cells."""
    spec: _MedianSpec = _WORKER_STATE["spec"]
    n_bins = len(spec.edges) - 1
    histogram = np.zeros(spec.n_genes * n_bins, dtype=np.int32)
    for gene, bin_, _ in _blocks(task):
        np.add.at(histogram, gene * n_bins + bin_, 1)
    filled = np.flatnonzero(histogram)
    return task[2] - task[1], (filled, histogram[filled])


def _median_bin_task(task) -> tuple[int, tuple[np.ndarray, np.ndarray]]:
    """Pass 2: genes and values of the task's entries that fall in their gene's median bins."""
    spec: _MedianSpec = _WORKER_STATE["spec"]
    kept_genes, kept_values = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for gene, bin_, value in _blocks(task):
        inside = (bin_ >= spec.low_bin[gene]) & (bin_ <= spec.high_bin[gene])
        kept_genes.append(gene[inside])
        kept_values.append(value[inside])
    return task[2] - task[1], (np.concatenate(kept_genes), np.concatenate(kept_values))


def _normalised_entries(reader: CountReader, spec: _MedianSpec, source: int, start: int, stop: int):
    """Gene (global index), log10 bin and normalised value of every expressed entry of a block."""
    counts = reader.read_rows(start, stop)
    check_raw_counts(counts.data, where=f"counts of {reader.name}", layers=reader.layers)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    if "n_counts" in reader.obs.columns:
        totals = pd.to_numeric(reader.obs["n_counts"].iloc[start:stop]).to_numpy(np.float64)
    keep = (np.diff(counts.indptr) >= spec.min_genes) & (totals > 0)
    species = spec.plans[source].species_of(reader.obs, start, stop)
    genes, values = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for name, plan in spec.plans[source].plans.items():
        rows = np.flatnonzero(keep & (species == name))
        summed = plan.to_columns(counts[rows])
        cell = np.repeat(np.arange(summed.shape[0]), np.diff(summed.indptr))
        values.append(summed.data / totals[rows][cell] * TARGET_SUM)
        genes.append(spec.global_columns[source][name][summed.indices])
    value = np.concatenate(values)
    bin_ = np.clip(np.searchsorted(spec.edges, np.log10(value), side="right") - 1, 0, len(spec.edges) - 2)
    return np.concatenate(genes), bin_, value
