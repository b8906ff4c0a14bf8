"""Exact non-zero gene medians of a corpus, in two streaming passes (``cellshift medians``).

The median of gene g is taken over the cells that express it, of ``x_cg / T_c * 10,000`` (the
normalised value the tokenizer divides by it; Geneformer's gene median table).

Pass 1 fills a histogram per gene over log10 value bins; from it the bin holding each gene's
middle order statistic(s) is known, with the number of values below it. Pass 2 keeps only the
values falling in those bins and picks the exact order statistics from them (the mean of the two
middle values when a gene has an even count, as ``numpy.median``). Memory: genes x bins int32
counts plus the values in the median bins, never the whole corpus.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cellshift.data.checks import check_raw_counts
from cellshift.data.reading import CountReader
from cellshift.tokenize.plan import plan_genes
from cellshift.tokenize.rank import TARGET_SUM

LOG10_RANGE = (-4.0, 5.0)


def compute_gene_medians(
    inputs: str | os.PathLike | ad.AnnData | Sequence[str | os.PathLike | ad.AnnData],
    *,
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    min_genes: int = 500,
    chunk_size: int = 2048,
    n_bins: int = 1024,
    progress: bool = True,
) -> pd.Series:
    """Non-zero median of normalised expression per gene over one or more raw-count inputs.

    Genes are keyed by human Ensembl ID (symbols and mouse genes mapped as in tokenising, with
    duplicates summed); cells expressing fewer than ``min_genes`` genes are skipped, as when
    tokenising. Build a gene table from the result with ``GeneTable.from_medians``.

    Returns
    -------
    Series of medians indexed by Ensembl ID, sorted by ID, genes never expressed left out.
    """
    sources = [inputs] if isinstance(inputs, (str, os.PathLike, ad.AnnData)) else list(inputs)
    readers = [CountReader(source, layer=layer) for source in sources]
    try:
        plans = [plan_genes(r.gene_names(gene_key), None, species=species, source=r.name) for r in readers]
        genes = sorted(set().union(*(plan.column_genes for plan in plans)))
        position = {g: i for i, g in enumerate(genes)}
        global_columns = [np.array([position[g] for g in plan.column_genes]) for plan in plans]
        edges = np.linspace(*LOG10_RANGE, n_bins + 1)

        def blocks(desc: str):
            total = sum(r.n_obs for r in readers)
            with tqdm(total=total, unit="cell", desc=desc, disable=not progress) as bar:
                for reader, plan, columns in zip(readers, plans, global_columns, strict=True):
                    for start, stop in reader.chunks(chunk_size):
                        yield _normalised_entries(reader, plan, columns, start, stop, min_genes, edges)
                        bar.update(stop - start)

        histogram = np.zeros((len(genes), n_bins), dtype=np.int32)
        for gene, bin_, _ in blocks("medians pass 1/2"):
            np.add.at(histogram.reshape(-1), gene * n_bins + bin_, 1)
        n_values = histogram.sum(axis=1, dtype=np.int64)
        expressed = n_values > 0
        low_rank, high_rank = (n_values - 1) // 2, n_values // 2
        cumulative = histogram.cumsum(axis=1, dtype=np.int64)
        low_bin = (cumulative <= low_rank[:, None]).sum(axis=1)
        high_bin = (cumulative <= high_rank[:, None]).sum(axis=1)
        below = np.where(low_bin > 0, cumulative[np.arange(len(genes)), np.maximum(low_bin - 1, 0)], 0)
        del histogram, cumulative

        kept_genes, kept_values = [], []
        for gene, bin_, value in blocks("medians pass 2/2"):
            inside = (bin_ >= low_bin[gene]) & (bin_ <= high_bin[gene])
            kept_genes.append(gene[inside])
            kept_values.append(value[inside])
        gene = np.concatenate(kept_genes) if kept_genes else np.zeros(0, dtype=np.int64)
        value = np.concatenate(kept_values) if kept_values else np.zeros(0)
        order = np.lexsort((value, gene))
        gene, value = gene[order], value[order]
        segment_start = np.searchsorted(gene, np.arange(len(genes)))
        medians = np.full(len(genes), np.nan)
        idx = np.flatnonzero(expressed)
        low = value[segment_start[idx] + low_rank[idx] - below[idx]]
        high = value[segment_start[idx] + high_rank[idx] - below[idx]]
        medians[idx] = (low + high) / 2
        return pd.Series(medians, index=pd.Index(genes, name="ensembl_id"), name="median")[expressed]
    finally:
        for reader in readers:
            reader.close()


def _normalised_entries(reader, plan, columns, start, stop, min_genes, edges):
    """Gene (global index), log10 bin and normalised value of every expressed entry of a block."""
    counts = reader.read_rows(start, stop)
    check_raw_counts(counts.data, where=f"counts of {reader.name}", layers=reader.layers)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    if "n_counts" in reader.obs.columns:
        totals = pd.to_numeric(reader.obs["n_counts"].iloc[start:stop]).to_numpy(np.float64)
    keep = (np.diff(counts.indptr) >= min_genes) & (totals > 0)
    summed = plan.to_columns(counts[keep])
    cell = np.repeat(np.arange(summed.shape[0]), np.diff(summed.indptr))
    value = summed.data / totals[keep][cell] * TARGET_SUM
    bin_ = np.clip(np.searchsorted(edges, np.log10(value), side="right") - 1, 0, len(edges) - 2)
    return columns[summed.indices], bin_, value
