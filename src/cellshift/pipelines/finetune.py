"""Contrastive fine-tuning on a screen: DEGs, the split by perturbation, then training on the training perturbations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import anndata as ad
import pandas as pd

from cellshift.analysis.split import PerturbationSplit
from cellshift.pipelines.split import degs_and_split
from cellshift.plotting.training import plot_loss_curve
from cellshift.training import FinetuneResult, FinetuneSettings, finetune
from cellshift.training.contrastive import check_finetune_dirs


@dataclass
class ScreenFinetuneResult:
    """What :func:`finetune_on_screen` did.

    Attributes
    ----------
    degs
        DEG summary per perturbation the split was made from (computed, or the one given).
    split
        The split; it is also saved with the model (``training/split.json``).
    training
        The fine-tuning run: model directory, loss log, steps, pairs seen, seconds.
    loss_curve
        PNG of the loss curve, beside the loss log (``training/loss.png``).
    """

    degs: pd.DataFrame
    split: PerturbationSplit
    training: FinetuneResult
    loss_curve: Path


def finetune_on_screen(
    model: str | os.PathLike,
    adata: ad.AnnData,
    out: str | os.PathLike,
    *,
    perturbation_key: str,
    control: str,
    settings: FinetuneSettings | None = None,
    min_degs: int = 20,
    test_fraction: float = 0.2,
    min_cells: int = 20,
    exclude: Sequence[str] = (),
    layer: str | None = None,
    degs: pd.DataFrame | None = None,
    split: PerturbationSplit | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> ScreenFinetuneResult:
    """Fine-tune a pre-trained model contrastively on the perturbations of a screen with enough DEGs.

    DEGs per perturbation (unless ``degs`` is given), the split by perturbation (unless
    ``split`` is given; seeded by ``settings.seed``), then :func:`cellshift.training.finetune`
    on the training perturbations and the training control cells; the validation control cells
    are used when ``settings.validation_fraction > 0``. The test perturbations are never seen.

    Parameters
    ----------
    model
        Directory of a pre-trained model (``cellshift pretrain``); only read.
    adata
        The screen: cells x genes with raw counts, ``obs[perturbation_key]``.
    out
        Directory of the fine-tuned model.
    perturbation_key, control
        ``obs`` column of the perturbation labels and the label of control cells.
    settings
        Fine-tuning settings (default: :class:`~cellshift.training.FinetuneSettings` ``()``).
    min_degs, test_fraction
        DEGs a perturbation needs to be trained on; share of those held out as test perturbations.
    min_cells, exclude
        Groups below ``min_cells`` cells get no DEGs; ``exclude`` labels are neither trained on nor controls.
    layer, gene_key, species
        Layer with the raw counts (default: ``X``), ``var`` column of the gene names (default:
        the index), species (default: detected).
    degs
        A DEG summary computed before (``degs.csv`` of ``cellshift degs``).
    split
        A split made before, used as it is.
    resume, overwrite
        Continue from the newest checkpoint in ``out``; start afresh in an ``out`` that holds a run.
    progress
        Show a progress bar.

    Returns
    -------
    ScreenFinetuneResult
        The DEGs, the split, the training run and its loss curve. Writes the model into ``out``
        (with ``training/loss.csv``, ``training/split.json``, checkpoints) and ``training/loss.png``.
    """
    settings = settings or FinetuneSettings()
    check_finetune_dirs(model, out, settings, resume=resume, overwrite=overwrite)
    chosen = degs_and_split(
        adata,
        perturbation_key=perturbation_key,
        control=control,
        min_cells=min_cells,
        exclude=exclude,
        layer=layer,
        min_degs=min_degs,
        test_fraction=test_fraction,
        seed=settings.seed,
        degs=degs,
        split=split,
    )
    training = finetune(
        model,
        adata,
        out,
        perturbation_key=perturbation_key,
        perturbations=chosen.split.train,
        control_cells=chosen.split.control_train,
        validation_controls=chosen.split.control_validation if settings.validation_fraction > 0 else (),
        settings=settings,
        layer=layer,
        gene_key=gene_key,
        species=species,
        split=asdict(chosen.split),
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )
    loss_curve = training.loss_log.with_suffix(".png")
    plot_loss_curve(training.loss_log, loss_curve, margin=settings.margin)
    return ScreenFinetuneResult(chosen.degs, chosen.split, training, loss_curve)
