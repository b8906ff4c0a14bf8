"""Gene classification by fine-tuning (Geneformer's dosage-sensitivity fine-tuning): method ``model-finetuned``.

Scored exactly as the gene embeddings are (:mod:`cellshift.tasks.gene_classification`): the same
folds split by gene (:func:`cellshift.tasks.gene_cross_validation.cross_validate_genes`), AUROC and
AUPRC per fold. The genes scored are the labelled genes whose token occurs in at least one cell.
In each fold:

- **training** (:func:`cellshift.training.finetune_gene_classifier`): a token classification head
  on the last hidden layer, cross-entropy; every token of a training gene, in every cell that
  holds it, carries its gene's label, and all other tokens are ignored (label -100), so the label
  of a test gene never reaches the model. Early stopping holds out a share of the training genes
  and of the cells (see :mod:`cellshift.training.classification_data`);
- **prediction** (:func:`cellshift.models.classification.gene_probabilities`): a test gene's score
  is the mean, over the cells holding its token, of the positive-class probability at that token.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from cellshift.models.classification import CellshiftClassifier, gene_probabilities
from cellshift.models.inputs import encode_cells
from cellshift.models.loading import load_encoder
from cellshift.tasks.gene_cross_validation import FoldPredictor
from cellshift.tasks.gene_label_table import GeneLabels
from cellshift.training import ClassifierSettings, finetune_gene_classifier

FINETUNED = "model-finetuned"


def genes_in_cells(labels: GeneLabels, cells: ad.AnnData, model_dir: str | os.PathLike, max_length: int | None):
    """The rows of ``labels.table`` whose gene (human Ensembl ID) is a token of at least one cell, in its order.

    Parameters
    ----------
    labels
        Labelled genes.
    cells
        Raw-count cells, tokenised with the model's gene table.
    model_dir
        The pre-trained model's directory.
    max_length
        Tokens kept per cell (as in fine-tuning).

    Returns
    -------
    pandas.DataFrame
        The covered rows of ``labels.table``.
    """
    encoder = load_encoder(model_dir)
    tokens = encode_cells(cells, encoder, max_length=max_length).tokens.input_ids
    seen = set(np.asarray(encoder.gene_table.tokens)[np.unique(tokens)])
    return labels.table.loc[labels.table["gene"].isin(seen)].reset_index(drop=True)


def finetuning_predictor(
    genes: pd.DataFrame,
    positive: str,
    cells: ad.AnnData,
    model_dir: str | os.PathLike,
    settings: ClassifierSettings,
) -> FoldPredictor:
    """A fold predictor that fine-tunes the model on the fold's training genes and scores its test genes.

    Parameters
    ----------
    genes
        The scored genes (``gene``, ``label``), as rows are numbered by the folds.
    positive
        The positive class.
    cells
        Raw-count cells: the contexts of training and prediction.
    model_dir
        The pre-trained model's directory (only read).
    settings
        Fine-tuning settings.

    Returns
    -------
    FoldPredictor
        ``(train, test) -> P(positive)`` of the test genes.
    """

    def predict_fold(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        training_genes = dict(zip(genes["gene"].iloc[train], genes["label"].iloc[train], strict=True))
        with tempfile.TemporaryDirectory(prefix="cellshift-genes-") as folder:
            run = Path(folder) / "classifier"
            finetune_gene_classifier(model_dir, cells, training_genes, run, settings=settings, progress=False)
            classifier = CellshiftClassifier.load(run)
        tokenised = encode_cells(cells, classifier.encoder, max_length=settings.max_length)
        probabilities = gene_probabilities(classifier, tokenised)
        return probabilities.loc[genes["gene"].iloc[test], positive].to_numpy()

    return predict_fold


def finetuning_settings(settings: ClassifierSettings | None, seed: int) -> ClassifierSettings:
    """The fine-tuning settings of a gene classification run: given or default, with the run's seed."""
    return replace(settings or ClassifierSettings(), seed=seed)
