"""Cross-validation over labelled genes: one split by gene, any way of predicting the test genes of a fold.

The split is stratified k-fold by label (scikit-learn ``StratifiedKFold``, shuffled with the seed):
a gene is in the test part of exactly one fold and never in the training and test part of one
fold. Each fold is scored with AUROC (``roc_auc_score``) and AUPRC (``average_precision_score``).
The predictor of a fold is either the linear probe on gene embeddings (:func:`cross_validate`) or
fine-tuning the model on the fold's training genes (:mod:`cellshift.tasks.gene_finetuning`); both
see the same folds for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FoldPredictor = Callable[
    [np.ndarray, np.ndarray], np.ndarray
]  # (train rows, test rows) -> P(positive) of the test rows


def cross_validate_genes(
    predict_fold: FoldPredictor, is_positive: np.ndarray, *, n_folds: int = 5, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Stratified k-fold scores of any predictor of genes.

    Parameters
    ----------
    predict_fold
        ``predict_fold(train, test)``: learns from the genes at rows ``train`` and returns the
        positive-class probability of the genes at rows ``test``.
    is_positive
        Whether each gene belongs to the positive class.
    n_folds
        Number of folds.
    seed
        Seed of the shuffled fold assignment.

    Returns
    -------
    scores : pandas.DataFrame
        One row per fold: ``fold, n_train, n_test, n_test_positive, auroc, auprc``.
    folds : numpy.ndarray
        The fold in which each gene was tested.
    probabilities : numpy.ndarray
        Each gene's out-of-fold probability of the positive class.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    folds = np.full(len(is_positive), -1)
    probabilities = np.full(len(is_positive), np.nan)
    rows = []
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(is_positive)), is_positive)):
        probabilities[test] = predict_fold(train, test)
        folds[test] = fold
        truth, predicted = is_positive[test], probabilities[test]
        auroc, auprc = roc_auc_score(truth, predicted), average_precision_score(truth, predicted)
        rows.append([fold, len(train), len(test), int(truth.sum()), auroc, auprc])
    columns = ["fold", "n_train", "n_test", "n_test_positive", "auroc", "auprc"]
    return pd.DataFrame(rows, columns=columns), folds, probabilities


def linear_probe(vectors: np.ndarray, is_positive: np.ndarray) -> FoldPredictor:
    """A fold predictor: ``StandardScaler`` then ``LogisticRegression`` (L2, ``C = 1``) fitted on the training genes."""
    is_positive = np.asarray(is_positive, dtype=bool)

    def predict_fold(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
        classifier.fit(vectors[train], is_positive[train])
        return classifier.predict_proba(vectors[test])[:, 1]

    return predict_fold


def cross_validate(
    vectors: np.ndarray, is_positive: np.ndarray, *, n_folds: int = 5, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Stratified k-fold scores of the :func:`linear_probe` on gene vectors (genes x dimensions).

    See :func:`cross_validate_genes` for the parameters and what is returned.
    """
    return cross_validate_genes(linear_probe(vectors, is_positive), is_positive, n_folds=n_folds, seed=seed)
