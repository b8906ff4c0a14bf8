"""Gene classification: Geneformer's dosage-sensitivity task as a linear probe on gene embeddings, or by fine-tuning.

Theodoris et al. 2023 (Geneformer) fine-tune the model to tell dosage-sensitive from
dosage-insensitive transcription factors (labels from Ni et al. 2019) and report AUROC 0.91 with
5-fold cross-validation. Here the embeddings are frozen and compared on equal terms, each gene
embedding of :func:`cellshift.embed.gene_embedding` in turn (``pca``, ``grn``, ``family``,
``random``, ``model``):

- **Split:** k-fold cross-validation stratified by label over the labelled genes the embedding
  covers (scikit-learn ``StratifiedKFold``, shuffled with the seed). A gene is in the test part of
  exactly one fold and never in the training and test part of one fold.
- **Classifier:** ``StandardScaler`` then ``LogisticRegression`` (L2 penalty, ``C = 1``, lbfgs),
  fitted on the training genes of each fold. A linear model on standardised dimensions keeps the
  comparison about what the embeddings hold rather than about the classifier's capacity. With
  ``finetune=True`` the model itself is also fine-tuned on each fold's training genes, as
  Geneformer does, and scored on the same folds as method ``model-finetuned``
  (:mod:`cellshift.tasks.gene_finetuning`).
- **Metrics per fold:** AUROC (``roc_auc_score``) and AUPRC (``average_precision_score``,
  ``sum_n (R_n - R_{n-1}) P_n``; a classifier at chance scores the positive fraction).
- **Summary:** the mean over the ``k`` folds and a two-sided t-interval,
  ``mean +- t_{(1 + confidence) / 2, k - 1} * s / sqrt(k)`` with ``s`` the standard deviation over
  folds (``ddof = 1``), clipped to [0, 1], the range of both scores. The folds share training
  genes, so their scores are not independent and the interval is narrower than the true
  uncertainty (Nadeau & Bengio 2003); read it as the spread over folds.

Each method is scored on the labelled genes it embeds: ``n_labelled``, ``n_embedded`` and
``positive_fraction`` say how many and how balanced they are. A method that covers a biased
subset (e.g. well-studied genes) is not comparable one to one with a method that covers all.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

from cellshift._validate import FOLDS, NON_NEGATIVE_INT, POSITIVE_INT, check_options
from cellshift.embed.gene_embeddings import GENE_EMBEDDINGS, gene_embedding
from cellshift.tasks.gene_cross_validation import FoldPredictor, cross_validate, cross_validate_genes, linear_probe
from cellshift.tasks.gene_finetuning import FINETUNED, finetuning_predictor, finetuning_settings, genes_in_cells
from cellshift.tasks.gene_label_table import GeneLabels, gene_labels
from cellshift.training import ClassifierSettings

__all__ = ["GeneClassification", "classify_genes", "cross_validate", "embedded_genes", "summarize", "t_interval"]

DEFAULT_METHODS = ("grn", "family", "random")
NEEDS_CELLS = ("pca", "model")


@dataclass(frozen=True)
class GeneClassification:
    """Cross-validated scores of gene embeddings on one gene classification task.

    Attributes
    ----------
    scores
        One row per method and fold: ``method, fold, n_train, n_test, n_test_positive, auroc, auprc``.
    summary
        One row per method: ``method, n_labelled, n_embedded, coverage`` (``n_embedded / n_labelled``),
        ``n_positive, positive_fraction`` (the AUPRC of chance), ``auroc_mean, auroc_ci_low,
        auroc_ci_high, auprc_mean, auprc_ci_low, auprc_ci_high``.
    predictions
        Out-of-fold predictions, one row per method and embedded gene: ``gene, symbol, method, fold,
        label, is_positive, probability`` (of the positive class, from the fold where the gene was tested).
    labels
        The labels used: genes, positive class, merged duplicates, unknown genes.
    """

    scores: pd.DataFrame
    summary: pd.DataFrame
    predictions: pd.DataFrame
    labels: GeneLabels


def classify_genes(
    labels: str | os.PathLike | pd.DataFrame | GeneLabels | None = None,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    cells: ad.AnnData | None = None,
    model_dir: str | os.PathLike | None = None,
    positive: str | None = None,
    n_folds: int = 5,
    seed: int = 0,
    n_components: int = 64,
    confidence: float = 0.95,
    finetune: bool = False,
    finetune_settings: ClassifierSettings | None = None,
) -> GeneClassification:
    """Score how well each gene embedding (and, with ``finetune``, the fine-tuned model) separates two classes of genes.

    See the module docstring for the split, classifier, metrics and interval.

    Parameters
    ----------
    labels
        Labelled genes: a ``gene,label`` CSV or DataFrame, a :class:`GeneLabels`, or ``None`` for the
        bundled dosage-sensitive transcription factors (see :func:`cellshift.tasks.gene_labels`).
    methods
        Gene embeddings by name (:data:`cellshift.embed.gene_embeddings.GENE_EMBEDDINGS`).
    cells
        Raw-count cells for ``pca`` (gene loadings) and ``model`` (contexts averaged over).
    model_dir
        Model checkpoint directory, for ``model``.
    positive
        Label of the positive class (``None``: the smaller class); ignored for a :class:`GeneLabels`.
    n_folds
        Number of cross-validation folds (each class needs at least this many embedded genes).
    seed
        Seed of the fold assignment and of the ``random`` embedding: same seed, same numbers.
    n_components
        Dimension of ``pca``, ``grn``, ``family`` and ``random``.
    confidence
        Coverage of the t-interval over folds.
    finetune
        Also fine-tune the model (``model_dir``) on each fold's training genes in the context of
        ``cells`` and score it as method ``model-finetuned`` (:mod:`cellshift.tasks.gene_finetuning`).
    finetune_settings
        Its settings (default ``ClassifierSettings()``); their seed is replaced by ``seed``.

    Returns
    -------
    GeneClassification
        Per-fold scores, the summary per method and the out-of-fold predictions.
    """
    _check_request(methods, cells, model_dir, n_folds, finetune)
    check_options(
        {"n_components": n_components, "seed": seed}, {"n_components": POSITIVE_INT, "seed": NON_NEGATIVE_INT}
    )
    if not isinstance(labels, GeneLabels):
        labels = gene_labels(labels, positive=positive)
    model_dir = None if model_dir is None else str(model_dir)
    inputs = {"cells": cells, "model_dir": model_dir, "n_components": n_components, "seed": seed}
    all_methods = [*dict.fromkeys(methods), *([FINETUNED] if finetune else [])]
    results = [_score_method(labels, method, n_folds, inputs, finetune_settings) for method in all_methods]
    scores = pd.concat([method_scores for method_scores, _ in results], ignore_index=True)
    predictions = pd.concat([method_predictions for _, method_predictions in results], ignore_index=True)
    predictions = predictions[["gene", "symbol", "method", "fold", "label", "is_positive", "probability"]]
    summary = summarize(scores, predictions, n_labelled=len(labels.table), confidence=confidence)
    return GeneClassification(scores, summary, predictions, labels)


def _score_method(
    labels: GeneLabels, method: str, n_folds: int, inputs: dict, settings: ClassifierSettings | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One method's per-fold scores and out-of-fold predictions (``method`` column first in the scores)."""
    embedded, predict_fold = _fold_predictor(labels, method, inputs, settings)
    is_positive = (embedded["label"] == labels.positive).to_numpy()
    _check_coverage(method, is_positive, n_folds)
    scores, folds, probabilities = cross_validate_genes(predict_fold, is_positive, n_folds=n_folds, seed=inputs["seed"])
    scores.insert(0, "method", method)
    predictions = embedded.assign(method=method, fold=folds, is_positive=is_positive, probability=probabilities)
    return scores, predictions


def _fold_predictor(
    labels: GeneLabels, method: str, inputs: dict, settings: ClassifierSettings | None
) -> tuple[pd.DataFrame, FoldPredictor]:
    """The labelled genes a method covers, and how it predicts the test genes of a fold from the training genes."""
    if method == FINETUNED:
        settings = finetuning_settings(settings, inputs["seed"])
        genes = genes_in_cells(labels, inputs["cells"], inputs["model_dir"], settings.max_length)
        return genes, finetuning_predictor(genes, labels.positive, inputs["cells"], inputs["model_dir"], settings)
    genes, vectors = embedded_genes(labels, method, **inputs)
    return genes, linear_probe(vectors, (genes["label"] == labels.positive).to_numpy())


def embedded_genes(labels: GeneLabels, method: str, **inputs) -> tuple[pd.DataFrame, np.ndarray]:
    """The labelled genes that an embedding covers, and their vectors.

    A gene's vector is the embedding's row of its Ensembl ID, or else of its symbol (``grn`` and
    ``family`` know symbols, a model and cells keyed by Ensembl ID know IDs).

    Parameters
    ----------
    labels
        Labelled genes.
    method
        Gene embedding name.
    **inputs
        Passed to :func:`cellshift.embed.gene_embedding` (``cells``, ``model_dir``, ``n_components``, ``seed``).

    Returns
    -------
    embedded : pandas.DataFrame
        The covered rows of ``labels.table``, in its order.
    vectors : numpy.ndarray
        Their vectors, genes x dimensions.
    """
    table = labels.table
    embedding = gene_embedding(method, [*table["gene"], *table["symbol"]], **inputs)
    rows, covered = [], []
    for gene, symbol in zip(table["gene"], table["symbol"], strict=True):
        if gene in embedding.index:
            rows.append(gene)
        elif symbol in embedding.index:
            rows.append(symbol)
        covered.append(gene in embedding.index or symbol in embedding.index)
    vectors = embedding.loc[rows].to_numpy(dtype=np.float64)
    return table.loc[np.array(covered, dtype=bool)].reset_index(drop=True), vectors


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: ``mean +- t_{(1 + confidence) / 2, n - 1} * s / sqrt(n)`` of ``n >= 2`` values."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    half_width = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - float(half_width), mean + float(half_width)


def summarize(
    scores: pd.DataFrame, predictions: pd.DataFrame, *, n_labelled: int, confidence: float = 0.95
) -> pd.DataFrame:
    """One row per method: coverage, and the mean and t-interval (clipped to [0, 1]) of AUROC and AUPRC over folds.

    Parameters
    ----------
    scores
        Per-fold scores (``method, fold, auroc, auprc``).
    predictions
        Out-of-fold predictions (``method, is_positive``), one row per embedded gene.
    n_labelled
        Number of labelled genes (the denominator of ``coverage``).
    confidence
        Coverage of the t-interval.

    Returns
    -------
    pandas.DataFrame
        The ``summary`` of :class:`GeneClassification`, methods in the order of ``scores``.
    """
    rows = []
    for method, folds in scores.groupby("method", sort=False):
        embedded = predictions.loc[predictions["method"] == method, "is_positive"]
        row = {
            "method": method,
            "n_labelled": n_labelled,
            "n_embedded": len(embedded),
            "coverage": len(embedded) / n_labelled,
            "n_positive": int(embedded.sum()),
            "positive_fraction": float(embedded.mean()),
        }
        for metric in ("auroc", "auprc"):
            mean, low, high = t_interval(folds[metric], confidence)
            row.update({f"{metric}_mean": mean, f"{metric}_ci_low": max(low, 0.0), f"{metric}_ci_high": min(high, 1.0)})
        rows.append(row)
    return pd.DataFrame(rows)


def _check_request(
    methods: Sequence[str], cells: ad.AnnData | None, model_dir: str | os.PathLike | None, n_folds: int, finetune: bool
) -> None:
    """Refuse unknown methods, missing inputs and too few folds before any embedding is computed."""
    if finetune and (cells is None or model_dir is None):
        raise ValueError(
            "fine-tuning needs raw-count cells (cells=, --cells) and a model directory (model_dir=, --model)"
        )
    if not methods and not finetune:
        raise ValueError(f"no gene embedding given; choose from {', '.join(GENE_EMBEDDINGS)}")
    unknown = [method for method in methods if method not in GENE_EMBEDDINGS]
    if unknown:
        raise ValueError(f"unknown gene embedding(s) {', '.join(unknown)}; choose from {', '.join(GENE_EMBEDDINGS)}")
    if cells is None and any(method in NEEDS_CELLS for method in methods):
        raise ValueError("the pca and model gene embeddings need raw-count cells (cells=, --cells)")
    if model_dir is None and "model" in methods:
        raise ValueError("the model gene embedding needs a model checkpoint directory (model_dir=, --model)")
    FOLDS.check(n_folds, "n_folds")


def _check_coverage(method: str, is_positive: np.ndarray, n_folds: int) -> None:
    """Each class needs one embedded gene per fold at least, so that every test fold has both classes."""
    n_positive, n_negative = int(is_positive.sum()), int((~is_positive).sum())
    if min(n_positive, n_negative) < n_folds:
        raise ValueError(
            f"the {method} embedding covers {n_positive} positive and {n_negative} negative labelled genes; "
            f"{n_folds}-fold cross-validation needs at least {n_folds} of each"
        )
