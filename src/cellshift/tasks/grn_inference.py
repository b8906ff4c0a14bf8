"""Gene regulatory networks from a foundation model, scored against reference networks beside baselines.

Every method gives one format, ranked edges ``tf, target, score``, for the TFs of the bundled
TF list (Lambert et al. 2018) expressed in the cells against every gene of the cells:

- ``model``: cosine between contextual gene embeddings averaged over the cells (Cole et al.);
- ``deletion``: delete the TF in silico and rank genes by the shift ``1 - cos`` of their
  contextual embeddings, averaged over cells (GeneCompass, Yang et al. 2024);
- ``correlation``: absolute Pearson correlation of log-normalised expression in the same cells
  (activation and repression both count as edges);
- ``random``: cosine between random Gaussian gene vectors (the floor);
- ``grn`` / ``family``: cosine between the prior-knowledge gene embeddings of
  :mod:`cellshift.embed.gene_embeddings`. The ``grn`` embedding is built from DoRothEA A-C and
  TRRUST, so its scores against those networks are circular and marked so.

A model pre-trained with the ``grn`` prior (``config.prior_dims``) has seen both bundled networks;
scoring its methods against them is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import torch
from scipy import sparse
from tqdm.auto import tqdm

from cellshift._validate import NON_NEGATIVE_INT, POSITIVE_INT, Bounds, CheckedSettings
from cellshift.datasets import gene_set
from cellshift.embed._inference import load_encoder
from cellshift.embed.gene_embeddings import family_gene_embedding, grn_gene_embedding, random_gene_embedding
from cellshift.models import CellshiftModel
from cellshift.tasks.cell_tokens import CellSource, load_cells, token_symbols
from cellshift.tasks.gene_contexts import contextual_sums, correlation, expression_matrix
from cellshift.tasks.grn_scoring import REFERENCES, candidate_pairs, load_reference, score_edges
from cellshift.tasks.insilico_plan import expressed_genes, presence_matrix
from cellshift.tasks.insilico_run import RunPlan, run_perturbations

GRN_METHODS = ("model", "deletion", "correlation", "random", "grn", "family")
MODEL_METHODS = ("model", "deletion")
CIRCULAR_PRIOR = "grn"  # the prior embedding built from the bundled networks
CELL_STREAM = 3


@dataclass(frozen=True)
class GrnSettings(CheckedSettings):
    """Options of :func:`infer_grn` (and of ``cellshift grn``); see its parameters."""

    methods: tuple[str, ...] = ("model", "correlation", "random", "grn", "family")
    references: tuple[str, ...] = REFERENCES
    confidence: str = "ABC"
    max_cells: int | None = 2000
    model_layer: int = -1
    n_components: int = 64
    deletion_cells: int = 50
    max_tfs: int | None = None
    batch_size: int = 64
    top_edges: int | None = 100_000
    seed: int = 0

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "max_cells": POSITIVE_INT,
        "n_components": POSITIVE_INT,
        "deletion_cells": POSITIVE_INT,
        "max_tfs": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "top_edges": POSITIVE_INT,
        "seed": NON_NEGATIVE_INT,
    }


@dataclass
class GrnResult:
    """Ranked edges and their scores against each reference.

    Attributes
    ----------
    edges
        ``method, tf, target, score``, best first within each method (the ``top_edges`` best).
    metrics
        One row per method and reference: ``circular``, ``n_tfs, n_candidates, n_true, n_scored,
        auroc, auprc, auprc_random, epr``, ``median_tf_auroc``.
    per_tf
        ``method, reference, tf, n_candidates, n_true, auroc, auprc``.
    curves
        ``(method, reference)`` -> pooled precision-recall curve.
    """

    edges: pd.DataFrame
    metrics: pd.DataFrame
    per_tf: pd.DataFrame
    curves: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)


def infer_grn(
    data: ad.AnnData | str | os.PathLike | Sequence[ad.AnnData | str | os.PathLike],
    model: str | os.PathLike | CellshiftModel,
    *,
    settings: GrnSettings | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> GrnResult:
    """Infer TF -> target edges by every method and score them against the reference networks.

    Parameters
    ----------
    data
        Raw-count cells or corpus directories (one or several), tokenised with the model's gene table.
    model
        A model directory or a loaded model with its gene table (it also tokenises AnnData inputs).
    settings
        :class:`GrnSettings` (default: its defaults): methods (:data:`GRN_METHODS`), references
        (``dorothea``, ``trrust`` or CSV files with ``tf,target``), DoRothEA ``confidence``
        levels, ``max_cells`` per input (seeded subsample), hidden ``model_layer``,
        ``n_components`` of the random and prior embeddings, ``deletion_cells`` and ``max_tfs``
        for the deletion route, batch size, ``top_edges`` kept per method in the edge table, seed.
    device, progress
        Default device: a GPU when visible; progress bars.

    Returns
    -------
    GrnResult
        Edges, metrics per method and reference, per-TF scores, PR curves.
    """
    settings = settings or GrnSettings()
    unknown = set(settings.methods) - set(GRN_METHODS)
    if unknown:
        raise ValueError(f"unknown GRN methods {sorted(unknown)}; choose from {', '.join(GRN_METHODS)}")
    encoder = load_encoder(model, device)
    _refuse_circular_model(encoder, settings)
    inputs = list(data) if isinstance(data, list | tuple) else [data]
    sources = [load_cells(item, encoder) for item in inputs]
    rows = [_subsample(len(s.obs), settings, k) for k, s in enumerate(sources)]
    symbols = _data_genes(encoder, sources, rows)
    known_tfs = set(gene_set("tf"))
    tfs = [g for g in symbols if g in known_tfs]
    if not tfs:
        raise ValueError("no TF of the bundled TF list is expressed in the cells")
    edges = {}
    for method in tqdm(settings.methods, desc="GRN methods", disable=not progress):
        edges[method] = _edges(method, encoder, sources, rows, symbols, tfs, settings)
    return _score(edges, list(symbols), tfs, settings)


def _refuse_circular_model(encoder: CellshiftModel, settings: GrnSettings) -> None:
    """A model pre-trained with the grn prior cannot be scored against the networks the prior was built from."""
    priors = encoder.config.prior_dims or {}
    bundled = [r for r in settings.references if r in REFERENCES]
    model_methods = [m for m in settings.methods if m in MODEL_METHODS]
    if CIRCULAR_PRIOR in priors and bundled and model_methods:
        raise ValueError(
            f"the model was pre-trained with the '{CIRCULAR_PRIOR}' prior (config.prior_dims = {sorted(priors)}), "
            "built from DoRothEA A-C and TRRUST: scoring its methods "
            f"{model_methods} against {bundled} would be circular; score it against another network "
            "(a CSV file with tf,target) or use a model pre-trained without that prior"
        )


def _data_genes(encoder: CellshiftModel, sources: list[CellSource], rows: list[np.ndarray]) -> pd.Series:
    """Token -> symbol of every gene expressed in the chosen cells (genes without a symbol left out)."""
    expressed = [expressed_genes(presence_matrix(s, r)) for s, r in zip(sources, rows, strict=True)]
    tokens = np.unique(np.concatenate(expressed))
    tokens = tokens[~np.isin(tokens, encoder.config.special_token_ids)]
    symbols = pd.Series(token_symbols(encoder, tokens), index=tokens)
    return symbols[~symbols.str.startswith("ENSG") & ~symbols.duplicated()]


def _subsample(n_cells: int, settings: GrnSettings, index: int) -> np.ndarray:
    """At most ``max_cells`` cells of an input, drawn with the seed."""
    rows = np.arange(n_cells)
    if settings.max_cells is None or n_cells <= settings.max_cells:
        return rows
    rng = np.random.default_rng([settings.seed, CELL_STREAM, index])
    return np.sort(rng.choice(rows, settings.max_cells, replace=False))


def _edges(method, encoder, sources, rows, symbols, tfs, settings) -> pd.DataFrame:
    """One method's ``tf, target, score`` edges."""
    if method == "model":
        return embedding_edges(_contextual_means(encoder, sources, rows, symbols, settings), tfs)
    if method == "correlation":
        return _correlation_edges(sources, rows, symbols, tfs, encoder.config.vocab_size)
    if method == "deletion":
        return _deletion_edges(encoder, sources, rows, symbols, tfs, settings)
    if method == "random":
        table = random_gene_embedding(list(symbols), n_components=settings.n_components, seed=settings.seed)
    elif method == "grn":
        table = grn_gene_embedding(n_components=settings.n_components)
    else:
        table = family_gene_embedding(n_components=settings.n_components)
    return embedding_edges(table.loc[table.index.isin(symbols)], tfs)


def embedding_edges(table: pd.DataFrame, tfs: list[str]) -> pd.DataFrame:
    """``tf, target, score`` with the cosine between the TF's row and every other gene's row of ``table``."""
    values = table.to_numpy(dtype=np.float64)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    unit = np.divide(values, norms, out=np.zeros_like(values), where=norms > 0)
    present = [tf for tf in tfs if tf in table.index]
    positions = table.index.get_indexer(present)
    scores = unit[positions] @ unit.T
    return _edge_table(present, list(table.index), scores)


def _edge_table(tfs: list[str], genes: list[str], scores: np.ndarray) -> pd.DataFrame:
    """Long ``tf, target, score`` from a TFs x genes matrix, self pairs dropped."""
    edges = pd.DataFrame(
        {"tf": np.repeat(tfs, len(genes)), "target": np.tile(genes, len(tfs)), "score": scores.ravel()}
    )
    return edges[edges["tf"] != edges["target"]]


def _contextual_means(encoder, sources: list[CellSource], rows, symbols: pd.Series, settings) -> pd.DataFrame:
    """Genes (symbols) x hidden: contextual embeddings averaged over the cells of every input."""
    sums, counts = 0.0, 0.0
    for source, chosen in zip(sources, rows, strict=True):
        s, c = contextual_sums(encoder, source, chosen, layer=settings.model_layer, batch_size=settings.batch_size)
        sums, counts = sums + s, counts + c
    tokens = symbols.index.to_numpy()
    means = sums[tokens] / np.maximum(counts[tokens], 1.0)[:, None]
    return pd.DataFrame(means, index=symbols.to_numpy())


def _correlation_edges(sources, rows, symbols: pd.Series, tfs: list[str], vocab_size: int) -> pd.DataFrame:
    """``|r|`` of log-normalised expression (the cells' token values) of each TF with every gene."""
    matrix = sparse.vstack([expression_matrix(s, r, vocab_size) for s, r in zip(sources, rows, strict=True)]).tocsr()
    by_symbol = pd.Series(symbols.index, index=symbols.to_numpy())
    r = correlation(matrix, by_symbol[tfs].to_numpy(), symbols.index.to_numpy())
    return _edge_table(tfs, list(symbols), np.abs(r))


def _deletion_edges(encoder, sources, rows_per_input, symbols: pd.Series, tfs, settings) -> pd.DataFrame:
    """Delete each TF in silico; a gene's score is its contextual-embedding shift, averaged over the cells.

    In every input, up to ``deletion_cells`` of the chosen cells expressing at least one of the TFs
    are perturbed (seeded); each TF is deleted in the cells that express it.
    """
    chosen = tfs[: settings.max_tfs] if settings.max_tfs else tfs
    token_of = pd.Series(symbols.index, index=symbols.to_numpy())
    tokens = np.asarray([token_of[tf] for tf in chosen])
    plan = RunPlan(
        perturbations={i: (int(t),) for i, t in enumerate(tokens)},
        operation="delete",
        shift=0.25,
        n_null=0,
        null_window=0.05,
        excluded=tokens,
        absent_pool=tokens,
        states={},
        affected=True,
        batch_size=settings.batch_size,
        cell_layer=-2,
        gene_layer=settings.model_layer,
        seed=settings.seed,
    )
    tables = []
    for index, (source, rows) in enumerate(zip(sources, rows_per_input, strict=True)):
        presence = presence_matrix(source, rows)
        inside = tokens[tokens < presence.shape[1]]
        expressing = rows[np.asarray(presence[:, inside].sum(axis=1)).ravel() > 0]
        if len(expressing) == 0:
            continue  # no chosen TF is expressed in this input's cells
        rng = np.random.default_rng([settings.seed, CELL_STREAM, 100 + index])
        cells = np.sort(rng.permutation(expressing)[: settings.deletion_cells])
        affected = run_perturbations(encoder, source, cells, plan).affected
        tables.append(affected.assign(weighted=affected["shift"] * affected["n_cells"]))
    joined = pd.concat(tables).groupby(["perturbation", "affected_token"], as_index=False)[["weighted", "n_cells"]]
    joined = joined.sum()
    joined = joined[joined["affected_token"].isin(symbols.index)]
    return pd.DataFrame(
        {
            "tf": np.asarray(chosen)[joined["perturbation"].to_numpy()],
            "target": symbols[joined["affected_token"]].to_numpy(),
            "score": (joined["weighted"] / joined["n_cells"]).to_numpy(),
        }
    )


def _score(edges: dict[str, pd.DataFrame], genes: list[str], tfs: list[str], settings: GrnSettings) -> GrnResult:
    """Score every method against every reference on the same candidate pairs."""
    metrics, per_tf, curves = [], [], {}
    for name in settings.references:
        reference = load_reference(name, confidence=settings.confidence)
        candidates = candidate_pairs(tfs, genes, reference)
        for method, table in edges.items():
            scored = score_edges(table, candidates)
            circular = method == CIRCULAR_PRIOR and str(name) in REFERENCES
            metrics.append({"method": method, "reference": reference.name, "circular": circular, **scored.summary})
            metrics[-1]["median_tf_auroc"] = scored.per_tf["auroc"].median() if len(scored.per_tf) else np.nan
            per_tf.append(scored.per_tf.assign(method=method, reference=reference.name))
            curves[(method, reference.name)] = scored.curve
    ranked = [
        t.sort_values("score", ascending=False, kind="stable").head(settings.top_edges).assign(method=m)
        for m, t in edges.items()
    ]
    edge_table = pd.concat(ranked, ignore_index=True)[["method", "tf", "target", "score"]]
    per_tf_table = pd.concat(per_tf, ignore_index=True)
    columns = ["method", "reference", *[c for c in per_tf_table.columns if c not in ("method", "reference")]]
    return GrnResult(edge_table, pd.DataFrame(metrics), per_tf_table[columns], curves)
