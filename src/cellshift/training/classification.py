"""Classification fine-tuning: a linear head on the encoder, trained with it on labelled cells or genes.

Two entry points share one loop (:func:`cellshift.training.classification_loop.train_classifier`):

- :func:`finetune_cell_classifier`: one class per cell (Geneformer's cell classifier,
  GeneCompass's annotation head); the head reads the mean over gene tokens of the penultimate
  layer, the cell embedding of ``embed_model``;
- :func:`finetune_gene_classifier`: one class per gene (Geneformer's gene classifier, e.g.
  dosage sensitivity); every token of a training gene carries its gene's class, the head reads
  the last layer.

The head is :class:`cellshift.models.classification.CellshiftClassifier`; the labels, validation
share and batches come from :mod:`cellshift.training.classification_data`. Cells are tokenised in
memory with the model's own gene table (:func:`cellshift.models.inputs.encode_cells`), as
``embed_model`` tokenises the cells it embeds. A run writes into its own directory: the classifier
(encoder, head, class names; ``CellshiftClassifier.load(out)``) and ``training/`` (settings,
``loss.csv``, checkpoints).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch
from accelerate import Accelerator

from cellshift.models.classification import CellshiftClassifier
from cellshift.models.inputs import ModelCells, encode_cells
from cellshift.models.loading import load_encoder
from cellshift.models.modeling import CellshiftModel
from cellshift.training.classification_data import labelled_cells, labelled_gene_tokens
from cellshift.training.classification_loop import ClassifierResult, ClassifierSettings, train_classifier
from cellshift.training.loop import check_model_directories, mixed_precision, prepare_run_dir

__all__ = ["ClassifierResult", "ClassifierSettings", "finetune_cell_classifier", "finetune_gene_classifier"]


def finetune_cell_classifier(
    model: str | os.PathLike,
    adata: ad.AnnData,
    labels: str | Sequence[str],
    out: str | os.PathLike,
    *,
    settings: ClassifierSettings | None = None,
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    cpu: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> ClassifierResult:
    """Fine-tune a saved model with a linear head to classify cells.

    Parameters
    ----------
    model
        Directory of a pre-trained (or fine-tuned) cellshift model; only read.
    adata
        Cells with raw counts in ``X`` or ``layer``; every cell is trained or validated on.
    labels
        An ``obs`` column, or one class per cell in ``adata``'s order.
    out
        New directory: the classifier (:meth:`CellshiftClassifier.save`) plus ``training/``.
    settings
        :class:`ClassifierSettings`; default ``ClassifierSettings()``.
    layer, gene_key, species
        Where the counts are, the var column of gene names (default: var index), the species.
    cpu
        Train on the CPU even when a GPU is visible.
    resume, overwrite
        Continue from the newest checkpoint in ``out``, or start afresh over an existing run.
    progress
        Show a progress bar.

    Returns
    -------
    ClassifierResult
        The classifier loads with ``CellshiftClassifier.load(out)``.
    """
    settings = settings or ClassifierSettings()
    labels = np.asarray(adata.obs[labels] if isinstance(labels, str) else labels, dtype=object)
    if len(labels) != adata.n_obs or pd.isna(labels).any():
        raise ValueError(f"give one label per cell ({adata.n_obs}) and no missing labels")
    labels = labels.astype(str)
    record = {"target": "cells", "classes": sorted(set(labels)), "n_cells": adata.n_obs}
    accelerator, encoder = _start(model, out, settings, record, cpu=cpu, resume=resume, overwrite=overwrite)
    cells = _encode(adata, encoder, settings, accelerator, layer, gene_key, species)
    data = labelled_cells(cells, labels, validation_fraction=settings.validation_fraction, seed=settings.seed)
    torch.manual_seed(settings.seed)
    classifier = CellshiftClassifier(encoder, data.classes, "cells")
    return train_classifier(classifier, data, settings, accelerator, Path(out), resume=resume, progress=progress)


def finetune_gene_classifier(
    model: str | os.PathLike,
    adata: ad.AnnData,
    gene_labels: Mapping[str, str],
    out: str | os.PathLike,
    *,
    settings: ClassifierSettings | None = None,
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    cpu: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> ClassifierResult:
    """Fine-tune a saved model with a linear token head to classify genes, in the context of ``adata``'s cells.

    Parameters
    ----------
    gene_labels
        ``{gene token: class}`` of the training genes (tokens of the model's vocabulary, e.g.
        human Ensembl IDs); every token of these genes is labelled, all others are ignored.
    model, adata, out, settings, layer, gene_key, species, cpu, resume, overwrite, progress
        As in :func:`finetune_cell_classifier`.

    Returns
    -------
    ClassifierResult
        The classifier loads with ``CellshiftClassifier.load(out)``; see
        :func:`cellshift.models.classification.gene_probabilities` to predict genes.
    """
    settings = settings or ClassifierSettings()
    gene_labels = {str(gene): str(label) for gene, label in gene_labels.items()}
    record = {"target": "genes", "classes": sorted(set(gene_labels.values())), "genes": sorted(gene_labels)}
    accelerator, encoder = _start(model, out, settings, record, cpu=cpu, resume=resume, overwrite=overwrite)
    cells = _encode(adata, encoder, settings, accelerator, layer, gene_key, species)
    data = labelled_gene_tokens(
        cells,
        gene_labels,
        encoder.gene_table.tokens,
        validation_fraction=settings.validation_fraction,
        seed=settings.seed,
    )
    torch.manual_seed(settings.seed)
    classifier = CellshiftClassifier(encoder, data.classes, "genes")
    return train_classifier(classifier, data, settings, accelerator, Path(out), resume=resume, progress=progress)


def _start(
    model: str | os.PathLike,
    out: str | os.PathLike,
    settings: ClassifierSettings,
    record: dict,
    *,
    cpu: bool,
    resume: bool,
    overwrite: bool,
) -> tuple[Accelerator, CellshiftModel]:
    """Check the directories, record the run's settings (a resumed run must match), load the encoder."""
    model_dir, out = Path(model), Path(out)
    check_model_directories(model_dir, out)
    accelerator = Accelerator(cpu=cpu, mixed_precision=mixed_precision(settings.mixed_precision))
    if accelerator.is_main_process:
        run_settings = {"model": str(model_dir.resolve()), **record, **asdict(settings)}
        prepare_run_dir(out, run_settings, resume=resume, overwrite=overwrite)
    accelerator.wait_for_everyone()
    return accelerator, load_encoder(model_dir)


def _encode(
    adata: ad.AnnData,
    encoder: CellshiftModel,
    settings: ClassifierSettings,
    accelerator: Accelerator,
    layer: str | None,
    gene_key: str | None,
    species: str | None,
) -> ModelCells:
    """The cells tokenised for the encoder (padded to multiples of 8 on a GPU, for its tensor cores)."""
    pad_to = 8 if accelerator.device.type == "cuda" else None
    return encode_cells(
        adata,
        encoder,
        layer=layer,
        gene_key=gene_key,
        species=species,
        max_length=settings.max_length,
        pad_to_multiple_of=pad_to,
    )
