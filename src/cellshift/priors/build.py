"""Build a priors directory: one genes x dim matrix per source, keyed by human Ensembl ID, plus a manifest.

Sources (GeneCompass's four kinds of prior knowledge):

- ``grn``: TF -> target networks (:mod:`cellshift.priors.grn`), embedded as a graph;
- ``family``: gene x group membership (:mod:`cellshift.priors.families`), embedded as a graph;
- ``coexpression``: gene pairs correlated over a corpus (:mod:`cellshift.priors.coexpression`),
  embedded as a graph;
- ``promoter``: a table of promoter vectors or k-mer profiles of a FASTA (:mod:`cellshift.priors.promoter`).

Graphs are embedded by :func:`cellshift.priors.graph.embed_graph` (random walks + PPMI-SVD by
default). Mouse genes reach the rows through their one-to-one human orthologs. The result depends
only on the inputs and the settings (the seed included); the directory is written under a
temporary name and renamed when complete, so a failed build leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from cellshift._io import check_writable
from cellshift._validate import NON_NEGATIVE_INT, OPEN_FRACTION, POSITIVE_INT, Bounds, CheckedSettings, at_least
from cellshift.priors._genes import file_sha256, human_ensembl_lookup
from cellshift.priors.cells import corpus_files
from cellshift.priors.coexpression import coexpression_pairs
from cellshift.priors.families import family_graph
from cellshift.priors.graph import GRAPH_METHODS, GeneGraph, embed_graph
from cellshift.priors.grn import grn_graph
from cellshift.priors.promoter import promoter_prior
from cellshift.priors.store import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    check_prior_table,
    write_manifest,
    write_prior_table,
)
from cellshift.tokenize.corpus import METADATA_FILE


@dataclass
class PriorSettings(CheckedSettings):
    """Settings of a priors build.

    Attributes
    ----------
    dim
        Dimension of every source's vectors (GeneCompass: 768).
    method
        Graph embedding: ``walk`` (random walks + PPMI-SVD) or ``spectral``.
    seed
        Seed of the walks, SVDs and PCAs.
    confidence
        DoRothEA confidence levels kept (A-E; ``ABC`` as DoRothEA recommends).
    min_correlation
        Least Pearson correlation of a co-expression pair (GeneCompass: 0.8).
    min_cells
        Least cells expressing a gene, and both genes of a co-expression pair.
    coexpression_cells
        Cells a correlation is taken over: ``all`` or ``expressed`` (both genes, GeneCompass).
    max_genes
        Most genes tested for co-expression (memory: ``32 * max_genes^2`` bytes).
    chunk_size
        Cells read at a time for co-expression.
    layer, gene_key
        Layer holding raw counts and ``var`` column holding gene names of ``.h5ad`` inputs.
    """

    dim: int = 128
    method: str = "walk"
    seed: int = 0
    confidence: str = "ABC"
    min_correlation: float = 0.8
    min_cells: int = 30
    coexpression_cells: str = "all"
    max_genes: int = 4000
    chunk_size: int = 2048
    layer: str | None = None
    gene_key: str | None = None

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "dim": POSITIVE_INT,
        "seed": NON_NEGATIVE_INT,
        "min_correlation": OPEN_FRACTION,
        "min_cells": POSITIVE_INT,
        "max_genes": at_least(2, "co-expression needs at least 2 genes"),
        "chunk_size": POSITIVE_INT,
    }


@dataclass(frozen=True)
class PriorBuild:
    """What :func:`build_priors` wrote: the directory, the manifest and its SHA-256."""

    path: Path
    manifest: dict
    sha256: str


def build_priors(
    out: str | os.PathLike,
    *,
    grn: list[str] | None = None,
    families: str | None = None,
    coexpression: str | os.PathLike | None = None,
    promoter: str | os.PathLike | None = None,
    settings: PriorSettings | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> PriorBuild:
    """Build prior-knowledge gene vectors from tables into the directory ``out``.

    Parameters
    ----------
    out
        Directory to create (layout: :mod:`cellshift.priors.store`).
    grn
        Networks: bundled names (``dorothea``, ``dorothea_mm``, ``trrust``) and/or CSV/TSV files.
    families
        ``"hgnc"`` or a CSV/TSV file with ``gene`` and ``family`` columns.
    coexpression
        A raw-count ``.h5ad``, a folder of them, or a tokenised corpus made with values.
    promoter
        A CSV/TSV table of promoter vectors or a FASTA file of promoter sequences.
    settings
        :class:`PriorSettings`; default ``PriorSettings()``.
    overwrite
        Replace an existing ``out``.
    progress
        Show progress bars.

    Returns
    -------
    PriorBuild
        ``out``, the manifest (``sources.<name>``: ``file``, ``sha256``, ``n_genes``, ``dim``,
        ``inputs`` and what the source held) and the manifest's SHA-256.
    """
    settings = settings or PriorSettings()
    out = Path(out).absolute()
    _check_request(out, overwrite, settings, grn, families, coexpression, promoter)
    work = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        sources = {}
        if grn:
            graph, inputs = grn_graph(list(grn), confidence=settings.confidence)
            sources["grn"] = _graph_source(graph, inputs, settings)
        if families:
            graph, inputs = family_graph(families)
            sources["family"] = _graph_source(graph, inputs, settings)
        if promoter:
            table, record = promoter_prior(promoter, dim=settings.dim, seed=settings.seed)
            sources["promoter"] = (table, {"inputs": [record]})
        if coexpression:
            sources["coexpression"] = _coexpression_source(Path(coexpression), settings, progress)
        described = {name: _write_source(work, name, *source) for name, source in sources.items()}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "settings": asdict(settings),
            "sources": described,
        }
        sha256 = write_manifest(work, manifest)
        _replace_dir(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return PriorBuild(out, manifest, sha256)


def _check_request(out: Path, overwrite: bool, settings: PriorSettings, grn, families, coexpression, promoter) -> None:
    """Refuse a build that cannot succeed, before any work: no source, bad settings, missing inputs, existing out."""
    if not (grn or families or coexpression or promoter):
        raise ValueError("no prior source given; pass at least one of --grn, --families, --coexpression, --promoter")
    if settings.method not in GRAPH_METHODS:
        raise ValueError(f"unknown graph embedding {settings.method!r}; choose from {', '.join(GRAPH_METHODS)}")
    if settings.coexpression_cells not in ("all", "expressed"):
        raise ValueError(f"coexpression_cells must be 'all' or 'expressed', got {settings.coexpression_cells!r}")
    if isinstance(grn, str):
        raise TypeError("grn must be a list of network names or files, e.g. ['dorothea', 'trrust']")
    check_writable(out, overwrite)
    if out.exists() and not (out / MANIFEST).is_file():
        raise ValueError(f"{out} exists and is not a priors directory; --overwrite replaces only a priors directory")
    for option, path in (("--coexpression", coexpression), ("--promoter", promoter)):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{option} {path} does not exist")


def _graph_source(graph: GeneGraph, inputs: list[dict], settings: PriorSettings) -> tuple[pd.DataFrame, dict]:
    table = embed_graph(graph, method=settings.method, dim=settings.dim, seed=settings.seed)
    description = {
        "method": settings.method,
        "graph": {"kind": graph.kind, "edges": len(graph.edges), "genes": len(graph.genes)},
        "inputs": inputs,
    }
    return table, description


def _coexpression_source(corpus: Path, settings: PriorSettings, progress: bool) -> tuple[pd.DataFrame, dict]:
    pairs = coexpression_pairs(
        corpus,
        min_correlation=settings.min_correlation,
        min_cells=settings.min_cells,
        cells=settings.coexpression_cells,
        max_genes=settings.max_genes,
        chunk_size=settings.chunk_size,
        layer=settings.layer,
        gene_key=settings.gene_key,
        progress=progress,
    )
    if pairs.edges.empty:
        raise ValueError(
            f"no gene pair of {corpus} has correlation >= {settings.min_correlation} over >= {settings.min_cells} "
            f"co-expressing cells ({len(pairs.panel)} genes tested, {pairs.n_cells} cells); lower --min-correlation"
        )
    lookup = human_ensembl_lookup(pairs.panel)
    edges = pd.DataFrame({"source": pairs.edges["source"].map(lookup), "target": pairs.edges["target"].map(lookup)})
    graph = GeneGraph(edges.dropna(), "undirected")
    inputs = [
        {"name": path.name, "file": path.name, "sha256": file_sha256(path / METADATA_FILE if path.is_dir() else path)}
        for path in corpus_files(corpus)
    ]
    table, description = _graph_source(graph, inputs, settings)
    description.update(pairs=len(pairs.edges), genes_tested=len(pairs.panel), cells=pairs.n_cells)
    return table, description


def _write_source(folder: Path, name: str, table: pd.DataFrame, description: dict) -> dict:
    check_prior_table(table, name)
    file = f"{name}.tsv.gz"
    sha256 = write_prior_table(table, folder / file)
    return {"file": file, "sha256": sha256, "n_genes": table.shape[0], "dim": table.shape[1], **description}


def _replace_dir(work: Path, out: Path) -> None:
    """Move the finished ``work`` directory to ``out``, replacing an old ``out`` only once ``work`` is complete."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(work, out)
        shutil.rmtree(old)
    else:
        os.replace(work, out)
