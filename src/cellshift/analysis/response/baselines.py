"""Predictions that need no gene embedding: no change, the training mean, a linear model.

All take ``train``, a perturbations x genes DataFrame of changes (index = perturbed gene, NaN =
missing), and the labels of the perturbations to predict, and return a :class:`Prediction`.

Linear model (Ahlmann-Eltze, Huber & Anders 2024, "Deep-learning-based gene perturbation effect
prediction does not yet outperform simple linear baselines"): with ``Y`` the training changes as
genes x perturbations, ``b`` the row (gene) means and missing values set to them,

    Y - b  ~  G W P^T,   W = (G^T G + lambda I)^-1 G^T (Y - b) P (P^T P + lambda I)^-1

where ``G`` (genes x K) holds the gene scores of a PCA of ``Y - b`` (genes as observations) and
``P`` the rows of ``G`` of the training perturbations' target genes. A perturbation of gene ``t``
is predicted as ``b + G W G[t]^T``. Perturbations whose target gene is not among the measured
genes have no row in ``G``: they are left out of the fit and, when predicted, fall back to
``b`` (counted). Defaults ``K = 10``, ``lambda = 0.1`` as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA


@dataclass(frozen=True)
class Prediction:
    """Predicted changes of some perturbations.

    Attributes
    ----------
    values
        Perturbations x genes.
    fallback
        ``True`` where the prediction is the training mean because the method could not predict.
    parameters
        Settings chosen while fitting (e.g. ``{"n_neighbors": 10}``) and counts, for the record.
    """

    values: pd.DataFrame
    fallback: np.ndarray
    parameters: dict = field(default_factory=dict)


def training_mean(train: pd.DataFrame) -> pd.Series:
    """Mean change of every gene over the training perturbations, ignoring missing values (0 if none)."""
    return train.mean(axis=0, skipna=True).fillna(0.0)


def fill_missing(train: pd.DataFrame) -> pd.DataFrame:
    """Replace missing training values by the gene's training mean."""
    values = train.to_numpy(dtype=np.float64)
    filled = np.where(np.isnan(values), training_mean(train).to_numpy()[None, :], values)
    return pd.DataFrame(filled, index=train.index, columns=train.columns)


def predict_no_change(train: pd.DataFrame, genes: Sequence[str]) -> Prediction:
    """Predict zero change for every perturbation."""
    values = pd.DataFrame(0.0, index=pd.Index(genes, dtype=str), columns=train.columns)
    return Prediction(values, np.zeros(len(genes), dtype=bool))


def predict_training_mean(train: pd.DataFrame, genes: Sequence[str]) -> Prediction:
    """Predict the mean training change for every perturbation."""
    return Prediction(_repeat(training_mean(train), genes), np.zeros(len(genes), dtype=bool))


def predict_linear(
    train: pd.DataFrame, genes: Sequence[str], *, n_components: int = 10, ridge: float = 0.1
) -> Prediction:
    """Ahlmann-Eltze et al.'s linear model ``Y ~ G W P^T`` (formula in the module docstring).

    Parameters
    ----------
    train
        Training perturbations x genes.
    genes
        Perturbations (target genes) to predict.
    n_components
        ``K``, the PCA dimension (at most the number of training perturbations and genes).
    ridge
        ``lambda``, the ridge penalty on both sides.

    Returns
    -------
    Prediction
        ``parameters``: ``n_components``, ``ridge``, ``n_train`` (training perturbations in the fit).
    """
    mean = training_mean(train)
    centred = fill_missing(train) - mean
    n_used = min(n_components, centred.shape[0], centred.shape[1])
    gene_scores = PCA(n_components=n_used, svd_solver="full").fit_transform(centred.to_numpy().T)  # G
    gene_index = pd.Index(train.columns.astype(str))
    rows = gene_index.get_indexer(train.index.astype(str))
    fitted = rows >= 0
    targets = gene_index.get_indexer(pd.Index(genes, dtype=str))
    fallback = targets < 0
    prediction = _repeat(mean, genes)
    parameters = {"n_components": n_used, "ridge": ridge, "n_train": int(fitted.sum())}
    if not fitted.any():
        return Prediction(prediction, np.ones(len(genes), dtype=bool), parameters)
    perturbation_scores = gene_scores[rows[fitted]]  # P
    penalty = ridge * np.eye(n_used)
    left = np.linalg.solve(gene_scores.T @ gene_scores + penalty, gene_scores.T @ centred.to_numpy()[fitted].T)
    weights = np.linalg.solve(perturbation_scores.T @ perturbation_scores + penalty, (left @ perturbation_scores).T).T
    prediction.iloc[~fallback] += (gene_scores @ weights @ gene_scores[targets[~fallback]].T).T
    return Prediction(prediction, fallback, parameters)


def _repeat(row: pd.Series, genes: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(np.tile(row.to_numpy(), (len(genes), 1)), index=pd.Index(genes, dtype=str), columns=row.index)
