"""The settings of a screen run and the run object its steps fill (:func:`cellshift.pipelines.screen.run_screen`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd
from matplotlib.figure import Figure

from cellshift._validate import (
    GROUP_CELLS,
    NON_NEGATIVE_INT,
    NULL_DRAWS,
    OPEN_FRACTION,
    POSITIVE,
    POSITIVE_INT,
    Bounds,
    CheckedSettings,
)
from cellshift.analysis.split import PerturbationSplit


@dataclass
class ScreenSettings(CheckedSettings):
    """Options of a screen run (the CLI flags of ``cellshift screen``).

    Attributes
    ----------
    perturbation_key, control
        ``obs`` column of the perturbation labels and the label of control cells.
    min_cells, exclude
        Groups below ``min_cells`` cells are reported, not scored; ``exclude`` labels are
        neither scored nor used as controls.
    baselines
        Baseline embeddings among ``pca``, ``hvg``, ``scvi-linear``, ``scvi-5l``.
    embeddings
        ``obsm`` keys of embeddings computed elsewhere, scored under their key.
    metrics, n_null, null_size
        Distances to compute and the control null (see :func:`cellshift.analysis.score_perturbations`).
    min_degs
        DEGs a perturbation needs to be used for fine-tuning.
    gene_sets, top, permutations
        0-DEG enrichment: bundled set names or files, the top-n values, the permutations.
    finetune_steps, finetune_lr, finetune_batch_size
        Contrastive fine-tuning: optimizer steps (0: none), AdamW learning rate (Zhao et al.:
        1e-5), pairs per batch.
    umap_perturbations
        Perturbations shown in the UMAP figure (default: the top 2 and the top 0-DEG ones).
    seed
        Seed of everything random.
    layer
        Layer with the raw counts (default: ``X``).
    batch_key
        ``obs`` column of batches: E-distances within batches (see
        :func:`cellshift.analysis.score_perturbations`); needs E-distance metrics only.
    per_cell, fdr
        Also score every perturbed cell against held-out controls in each embedding and call
        responders at this FDR (:func:`cellshift.analysis.score_cells`).
    response
        Also benchmark response prediction of unseen knock-downs from gene embeddings and add
        its section to the report.
    """

    perturbation_key: str
    control: str
    min_cells: int = 20
    exclude: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ("pca", "hvg")
    embeddings: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("edistance", "cosine_edistance", "wasserstein")
    n_null: int = 200
    null_size: int | None = None
    min_degs: int = 20
    gene_sets: tuple[str, ...] = ("essential", "cell_cycle")
    top: tuple[int, ...] = (3, 5, 10)
    permutations: int = 10_000
    finetune_steps: int = 200
    finetune_lr: float = 1e-5
    finetune_batch_size: int = 16
    umap_perturbations: tuple[str, ...] = ()
    seed: int = 0
    layer: str | None = None
    batch_key: str | None = None
    per_cell: bool = True
    fdr: float = 0.05
    response: bool = False

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "min_cells": GROUP_CELLS,
        "n_null": NULL_DRAWS,
        "null_size": GROUP_CELLS,
        "min_degs": NON_NEGATIVE_INT,
        "permutations": POSITIVE_INT,
        "finetune_steps": NON_NEGATIVE_INT,
        "finetune_lr": POSITIVE,
        "finetune_batch_size": POSITIVE_INT,
        "seed": NON_NEGATIVE_INT,
        "fdr": OPEN_FRACTION,
    }


@dataclass
class ScreenRun:
    """One screen run: its settings and what its steps produced, each written into ``out`` too.

    The steps of :func:`cellshift.pipelines.screen.run_screen` fill the fields in this order;
    a field is empty (``None`` or ``{}``) until its step has run. Tables per embedding are keyed
    by the embedding's name (e.g. ``pca``, ``pretrained``, ``finetuned``, or an ``obsm`` key).

    Attributes
    ----------
    out
        Run directory.
    settings
        The settings of the run.
    degs, degs_per_gene
        DEGs per perturbation (``degs.csv``) and per (perturbation, gene) (``degs.genes.csv``).
    split
        Split by perturbation (``split.json``).
    embeddings
        Embedding name -> ``obsm`` key, in the order they are scored.
    finetuned_model
        Directory of the fine-tuned model (``finetuned_model/``, or the one given); ``None`` without one.
    scores, nulls, pairs
        Per embedding: distances to control (``scores/<name>.csv``), the null draws
        (``scores/<name>.nulls.csv``) and the distances between held-out perturbations
        (``scores/<name>.pairs.csv``; only with two or more of them and an E-distance metric).
    cells, responder_knockdown
        Per embedding, the per-cell scores and responder calls (``scores/<name>.cells.csv``), and
        on-target knock-down in responders vs non-responders of the ranking embedding
        (``responders_knockdown.csv``); empty without ``settings.per_cell``.
    enrichment
        0-DEG enrichment (``enrichment.csv``); ``None`` when the 0-DEG pool is too small.
    response, response_figure
        Response-prediction summary (``response/summary.csv``, scores in ``response/scores.csv``)
        and its L2 box plot (``figures/response_l2.png``); ``None`` unless ``settings.response``.
    medians
        Median normalised distance per embedding and pool (``medians.csv``).
    figures
        Report section title -> figure (``figures/*.png``).
    seconds
        Step -> seconds it took (``run.json``, with the settings).
    report
        The HTML report (``report.html``).
    """

    out: Path
    settings: ScreenSettings
    degs: pd.DataFrame | None = None
    degs_per_gene: pd.DataFrame | None = None
    split: PerturbationSplit | None = None
    embeddings: dict[str, str] = field(default_factory=dict)
    finetuned_model: Path | None = None
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)
    nulls: dict[str, pd.DataFrame] = field(default_factory=dict)
    pairs: dict[str, pd.DataFrame] = field(default_factory=dict)
    cells: dict[str, pd.DataFrame] = field(default_factory=dict)
    responder_knockdown: pd.DataFrame | None = None
    enrichment: pd.DataFrame | None = None
    response: pd.DataFrame | None = None
    response_figure: Figure | None = None
    medians: pd.DataFrame | None = None
    figures: dict[str, Figure] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    report: Path | None = None

    @property
    def ranking_model(self) -> str:
        """The embedding whose ranking the report shows: the fine-tuned model's, else the first scored."""
        return "finetuned" if "finetuned" in self.scores else next(iter(self.scores))


@contextmanager
def timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    """Record the seconds the ``with`` block takes as ``seconds[step]``."""
    started = time.perf_counter()
    yield
    seconds[step] = time.perf_counter() - started
