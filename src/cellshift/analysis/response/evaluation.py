"""Scoring predicted changes against measured ones, per perturbation, and summarising methods.

For a perturbation with measured change ``y`` and prediction ``y_hat`` over the genes ``G`` where
``y`` is not missing (NaN values of ``y`` are masked out of every metric):

- ``l2 = sqrt(sum_{g in G} (y_hat_g - y_g)^2)``, the primary metric (Cole et al.);
- ``pearson``: Pearson correlation of ``y_hat`` and ``y`` over ``G`` (NaN when either is constant,
  e.g. the no-change baseline);
- ``mse = mean_{g in G} (y_hat_g - y_g)^2``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("l2", "pearson", "mse")
TRAINING_MEAN = "training_mean"
EXPERIMENTAL_ERROR = "experimental_error"


def response_metrics(predicted: np.ndarray, truth: np.ndarray) -> pd.DataFrame:
    """``l2``, ``pearson`` and ``mse`` of every row (perturbation), over the genes measured in ``truth``.

    Parameters
    ----------
    predicted
        Perturbations x genes, finite.
    truth
        Perturbations x genes, NaN where missing.

    Returns
    -------
    pandas.DataFrame
        One row per perturbation (same order), columns ``l2, pearson, mse, n_genes``.
    """
    predicted, truth = np.asarray(predicted, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if predicted.shape != truth.shape:
        raise ValueError(f"predictions {predicted.shape} and measured changes {truth.shape} differ in shape")
    observed = np.isfinite(truth)
    n_genes = observed.sum(axis=1)
    error = np.where(observed, predicted - truth, 0.0)
    squared = (error**2).sum(axis=1)
    centred_pred = np.where(observed, predicted - _row_mean(predicted, observed), 0.0)
    centred_true = np.where(observed, truth - _row_mean(truth, observed), 0.0)
    spread = np.sqrt((centred_pred**2).sum(axis=1) * (centred_true**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        pearson = np.where(spread > 1e-12, (centred_pred * centred_true).sum(axis=1) / spread, np.nan)
        mse = np.where(n_genes > 0, squared / n_genes, np.nan)
    return pd.DataFrame({"l2": np.sqrt(squared), "pearson": pearson, "mse": mse, "n_genes": n_genes})


def summarize_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per method: median L2 (the headline), other metrics, fall-backs, comparison with the mean.

    Parameters
    ----------
    scores
        Tidy scores (``split, method, perturbation, fallback, metric, value``) from
        :func:`cellshift.analysis.response.benchmark`.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``median_l2``: ``method, n_predictions, n_fallback, median_l2, mean_l2,
        median_pearson, median_mse, win_rate_vs_mean, mean_l2_gain_vs_mean``. The last two compare
        with the training mean on the same split and perturbation, over the predictions that did
        not fall back: the fraction with a lower L2, and the mean of ``L2(mean) - L2(method)``
        (positive: better than the mean).
    """
    wide = scores.pivot(index=["split", "method", "perturbation", "fallback"], columns="metric", values="value")
    wide = wide.reset_index()
    mean_l2 = wide.loc[wide["method"] == TRAINING_MEAN].set_index(["split", "perturbation"])["l2"]
    wide["mean_l2_same"] = mean_l2.reindex(pd.MultiIndex.from_frame(wide[["split", "perturbation"]])).to_numpy()
    rows = []
    for method, group in wide.groupby("method", sort=False):
        covered = group.loc[~group["fallback"].astype(bool)]
        compare = method not in (TRAINING_MEAN, EXPERIMENTAL_ERROR) and len(covered) > 0
        gain = covered["mean_l2_same"] - covered["l2"]
        rows.append(
            {
                "method": method,
                "n_predictions": len(group),
                "n_fallback": int(group["fallback"].astype(bool).sum()),
                "median_l2": _median(group["l2"]),
                "mean_l2": group["l2"].mean(),
                "median_pearson": _median(group["pearson"]),
                "median_mse": _median(group["mse"]),
                "win_rate_vs_mean": (gain > 0).mean() if compare else np.nan,
                "mean_l2_gain_vs_mean": gain.mean() if compare else np.nan,
            }
        )
    return pd.DataFrame(rows).sort_values("median_l2", kind="stable").reset_index(drop=True)


def method_ranks(scores: pd.DataFrame) -> pd.DataFrame:
    """Rank of every predicting method within each split by its median L2 (1 = lowest).

    The experimental-error bound is not a prediction and is not ranked.

    Parameters
    ----------
    scores
        Tidy scores as in :func:`summarize_scores`.

    Returns
    -------
    pandas.DataFrame
        ``split, method, median_l2, rank`` (ties share the lowest rank).
    """
    l2 = scores.loc[(scores["metric"] == "l2") & (scores["method"] != EXPERIMENTAL_ERROR)]
    medians = l2.groupby(["split", "method"], as_index=False)["value"].median().rename(columns={"value": "median_l2"})
    medians["rank"] = medians.groupby("split")["median_l2"].rank(method="min").astype(int)
    return medians


def _median(values: pd.Series) -> float:
    """Median of the defined values; NaN (without a warning) when there are none."""
    values = values.dropna()
    return float(values.median()) if len(values) else np.nan


def _row_mean(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    counts = np.maximum(observed.sum(axis=1, keepdims=True), 1)
    return np.where(observed, values, 0.0).sum(axis=1, keepdims=True) / counts
