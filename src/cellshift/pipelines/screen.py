"""``cellshift screen``: a whole screen analysis, from counts to an HTML report.

Steps, each written into the run directory as it finishes:

1. DEGs and on-target knock-down per perturbation (``degs.csv``, ``degs.genes.csv``);
2. split by perturbation (``split.json``): training perturbations (>= ``min_degs`` DEGs), held-out
   test perturbations, the 0-DEG pool, control cells split by cell;
3. optional contrastive fine-tuning of a pre-trained model on the training perturbations
   (``finetuned_model/``), or a model fine-tuned before (``finetuned=``, whose saved split is
   then used so that its held-out perturbations stay unseen);
4. cell embeddings: baselines (PCA, HVG, scVI), embeddings already in ``obsm``
   (``settings.embeddings``) and the models (pre-trained, fine-tuned);
5. distances of every perturbation to control per embedding, z-scored against a
   size-calibrated control null (``scores/<embedding>.csv``, null draws in
   ``scores/<embedding>.nulls.csv``), and between the perturbations held out from fine-tuning
   (``scores/<embedding>.pairs.csv``; the paper's Figure 5, second half);
   per-cell scores and responder calls (``scores/<embedding>.cells.csv``, the fraction of
   responders in the scores) and on-target knock-down in responders vs non-responders
   (``responders_knockdown.csv``);
6. 0-DEG enrichment of essential / cell-cycle genes among the top-ranked perturbations
   (``enrichment.csv``);
7. optionally, response prediction of unseen knock-downs from gene embeddings
   (``response/``, :func:`cellshift.analysis.response.benchmark`);
8. the medians table (``medians.csv``), figures (``figures/*.png``) and one self-contained
   ``report.html``; the settings and the seconds of each step in ``run.json``.

The run is written into a hidden sibling folder and moved to the run directory when complete
(:mod:`cellshift._io`): a failed run leaves nothing behind, and a run repeated with
``overwrite`` replaces the earlier one whole, so a run directory never mixes two runs' files.

The steps are in :mod:`cellshift.pipelines.screen_steps` and :mod:`cellshift.pipelines.screen_report`;
each fills its fields of one :class:`~cellshift.pipelines.screen_run.ScreenRun`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import anndata as ad
import numpy as np

from cellshift._io import check_writable, partial_dir, swap_into_place, write_text_atomic
from cellshift.analysis.enrichment import load_gene_set
from cellshift.analysis.screen_input import validate_screen
from cellshift.embed.registry import BASELINES
from cellshift.metrics import get_metric
from cellshift.pipelines.screen_report import draw_figures, write_report
from cellshift.pipelines.screen_run import ScreenRun, ScreenSettings
from cellshift.pipelines.screen_steps import (
    add_embeddings,
    check_responders,
    enrich_zero_deg_pool,
    find_degs_and_split,
    predict_responses,
    score_embeddings,
    summarise_medians,
)
from cellshift.pipelines.split import finetuned_split

RUN_FILE = "run.json"


def run_screen(
    adata: ad.AnnData,
    out: str | os.PathLike,
    settings: ScreenSettings,
    *,
    model: str | os.PathLike | None = None,
    finetuned: str | os.PathLike | None = None,
    notes: dict[str, str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> ScreenRun:
    """Run every step (see the module docstring) and write everything into ``out``.

    Parameters
    ----------
    adata
        The screen: cells x genes with raw counts, ``obs[settings.perturbation_key]``.
    out
        Run directory: new, empty, or an earlier run (replaced whole, only with ``overwrite``).
    settings
        :class:`~cellshift.pipelines.screen_run.ScreenSettings`.
    model
        A pre-trained cellshift model directory; its embeddings are added, and it is fine-tuned
        contrastively on the training perturbations when ``settings.finetune_steps > 0``.
    finetuned
        A model fine-tuned before (``cellshift finetune``): embedded as the fine-tuned model
        instead of fine-tuning ``model``; the split saved with it (``training/split.json``) is
        used, so its held-out perturbations stay unseen.
    notes
        Lines added to the report's summary (e.g. what the model was pre-trained on).
    overwrite, progress
        Replace an existing run; show progress bars.

    Returns
    -------
    ScreenRun
        Every table, figure and path of the run (see :class:`~cellshift.pipelines.screen_run.ScreenRun`).

    Notes
    -----
    The embeddings are computed into ``adata`` itself, not into a copy (a screen can be too big
    to hold twice), so that they can be reused or scored again afterwards. Written:

    - ``adata.obsm[key]`` for each baseline (``X_pca``, ``X_hvg``, ``X_scvi_linear``,
      ``X_scvi_5l``) and model (``X_cellshift_pretrained``, ``X_cellshift_finetuned``) of the run,
      replacing entries of the same key (see :mod:`cellshift.embed.registry`);
    - ``adata.uns['X_hvg']`` (the genes of the HVG embedding), ``adata.uns['scvi'][key]`` (scVI
      settings) and ``adata.uns['X_cellshift_pretrained']``, ``adata.uns['X_cellshift_finetuned']``
      (model embedding settings).

    Nothing else of ``adata`` changes.
    """
    out = Path(out)
    check_screen_dir(out, overwrite, [model, finetuned])
    _check_inputs(adata, settings)
    saved_split = finetuned_split(finetuned, adata, settings.perturbation_key) if finetuned is not None else None
    work = partial_dir(out)
    try:
        for folder in (work / "scores", work / "figures"):
            folder.mkdir()
        run = ScreenRun(work, settings)
        find_degs_and_split(run, adata, saved_split)
        add_embeddings(run, adata, model, finetuned, progress)
        score_embeddings(run, adata)
        check_responders(run, adata)
        enrich_zero_deg_pool(run)
        if settings.response:
            predict_responses(run, adata, model)
        summarise_medians(run)
        draw_figures(run, adata)
        write_report(run, adata.n_obs, notes or {})
        summary = {"settings": asdict(settings), "seconds": run.seconds}
        write_text_atomic(work / RUN_FILE, json.dumps(summary, indent=2))
        swap_into_place(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _moved(run, work, out)


def check_screen_dir(out: Path, overwrite: bool, models: list[str | os.PathLike | None]) -> None:
    """``out`` must be new, empty, or (with ``overwrite``) an earlier run that no model given lies in.

    A run folder holds one run only: an earlier run is replaced whole, never mixed with the new
    one, so a folder that is not a run (no ``report.html`` or ``run.json``) is never replaced.
    """
    check_writable(out / "report.html", overwrite, option="--out")
    if not out.exists():
        return
    is_run = (out / "report.html").exists() or (out / RUN_FILE).exists()
    if any(out.iterdir()) and not is_run:
        raise FileExistsError(f"--out {out} holds other files and no earlier run; give a new or empty folder")
    inside = [
        str(model) for model in models if model is not None and Path(model).resolve().is_relative_to(out.resolve())
    ]
    if inside:
        raise ValueError(f"model {inside[0]} lies in --out {out}, which this run replaces; copy it elsewhere first")


def _moved(run: ScreenRun, work: Path, out: Path) -> ScreenRun:
    """The run's paths, moved from the folder it was written in (``work``) to ``out``."""
    run.out = out
    run.report = out / run.report.relative_to(work)
    if run.finetuned_model is not None and run.finetuned_model.is_relative_to(work):
        run.finetuned_model = out / run.finetuned_model.relative_to(work)
    return run


def _check_inputs(adata: ad.AnnData, settings: ScreenSettings) -> None:
    """Refuse, before any work, what a later step would refuse.

    Unknown baselines, metrics or gene sets, embeddings missing from ``obsm``, screens that cannot
    be scored and UMAP perturbations that are not scored.
    """
    unknown = [name for name in settings.baselines if name not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {', '.join(BASELINES)}")
    for metric in settings.metrics:
        get_metric(metric)
    for spec in settings.gene_sets:
        load_gene_set(spec)
    missing = [key for key in settings.embeddings if key not in adata.obsm]
    if missing:
        raise KeyError(f"embeddings {missing} are not in adata.obsm; available keys: {list(adata.obsm)}")
    screen = validate_screen(
        adata,
        perturbation_key=settings.perturbation_key,
        control=settings.control,
        min_cells=settings.min_cells,
        exclude=settings.exclude,
    )
    screen.require_groups()
    not_scored = sorted(set(settings.umap_perturbations) - set(screen.groups))
    if not_scored:
        raise ValueError(
            f"UMAP perturbation(s) {not_scored} (--umap) are not scored (unknown, excluded or below --min-cells); "
            f"scored: {', '.join(screen.groups[:20])}"
        )


def pick_cells(adata: ad.AnnData, key: str, *, max_per_group: int, seed: int, always: Sequence[str] = ()) -> ad.AnnData:
    """At most ``max_per_group`` random cells of every group (labels in ``always`` kept whole).

    Parameters
    ----------
    adata
        Cells with ``obs[key]``.
    key
        ``obs`` column of the groups.
    max_per_group
        Most cells kept per group.
    seed
        Seed of the draw.
    always
        Labels whose groups are kept whole (e.g. the control label).

    Returns
    -------
    anndata.AnnData
        A copy with the kept cells, in their original order.
    """
    rng = np.random.default_rng(seed)
    keep = []
    for label, rows in adata.obs.groupby(key, observed=True).indices.items():
        if label in always or len(rows) <= max_per_group:
            keep.append(rows)
        else:
            keep.append(np.sort(rng.choice(rows, max_per_group, replace=False)))
    return adata[np.sort(np.concatenate(keep))].copy()
