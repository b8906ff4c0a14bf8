"""Figures of the response-prediction benchmark (:func:`cellshift.analysis.response.benchmark`).

- :func:`l2_boxplot`: L2 error of every test prediction per method, as in Cole et al.; methods
  sorted by median, the training mean's median as a dashed line, the experimental-error bound
  in grey.
- :func:`rank_plot`: rank of every method by median L2 within each split, one line per method,
  to show whether an ordering holds across splits.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cellshift.analysis.response.evaluation import EXPERIMENTAL_ERROR, TRAINING_MEAN, method_ranks
from cellshift.analysis.response.protocol import BASELINES
from cellshift.plotting._save import finish, new_figure

BASELINE_COLOR = "#9ecae1"
EMBEDDING_COLOR = "#fdae6b"
ERROR_COLOR = "#d9d9d9"


def l2_boxplot(
    scores: pd.DataFrame, *, title: str | None = None, path: str | os.PathLike | None = None, overwrite: bool = False
) -> Figure:
    """Box plot of the L2 error per method (all splits' test perturbations together).

    Parameters
    ----------
    scores
        Tidy scores (``split, method, perturbation, fallback, metric, value``).
    title
        Figure title.
    path
        Save the figure there as PNG when given.
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        Methods on the x axis (lowest median first), L2 on the y axis.
    """
    l2 = scores.loc[scores["metric"] == "l2"]
    if l2.empty:
        raise ValueError("the scores hold no 'l2' rows; pass the tidy scores of the response benchmark")
    order = l2.groupby("method")["value"].median().sort_values(kind="stable").index.tolist()
    figure = new_figure(0.6 * len(order) + 2.5, 4.5)
    axes = figure.add_subplot()
    boxes = axes.boxplot(
        [l2.loc[l2["method"] == method, "value"].to_numpy() for method in order],
        patch_artist=True,
        widths=0.6,
        medianprops={"color": "black"},
        flierprops={"markersize": 3},
    )
    for patch, method in zip(boxes["boxes"], order, strict=True):
        patch.set_facecolor(_color(method))
    axes.set_xticks(np.arange(1, len(order) + 1), order, rotation=40, ha="right")
    if TRAINING_MEAN in order:
        axes.axhline(l2.loc[l2["method"] == TRAINING_MEAN, "value"].median(), color="grey", linestyle="--", lw=1)
    axes.set_ylabel("L2 norm of (predicted - measured) change")
    n_splits = l2["split"].nunique()
    axes.set_title(title or f"Error per test perturbation, {n_splits} splits (dashed: training mean's median)")
    return finish(figure, path, overwrite)


def rank_plot(
    scores: pd.DataFrame, *, title: str | None = None, path: str | os.PathLike | None = None, overwrite: bool = False
) -> Figure:
    """Rank of every method by its median L2 within each split (1 = best), one line per method.

    Parameters
    ----------
    scores
        Tidy scores (``split, method, perturbation, fallback, metric, value``).
    title
        Figure title.
    path
        Save the figure there as PNG when given.
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        Splits on the x axis, rank on the y axis (best at the top); legend sorted by mean rank.
    """
    ranks = method_ranks(scores)
    if ranks.empty:
        raise ValueError("the scores hold no 'l2' rows of predicting methods")
    order = ranks.groupby("method")["rank"].mean().sort_values(kind="stable").index
    figure = new_figure(6.5, 4.0)
    axes = figure.add_subplot()
    for method in order:
        line = ranks.loc[ranks["method"] == method].sort_values("split")
        style = "--" if method in BASELINES else "-"
        axes.plot(line["split"], line["rank"], style, marker="o", label=method)
    axes.set_xticks(sorted(ranks["split"].unique()))
    axes.set_yticks(np.arange(1, ranks["rank"].max() + 1))
    axes.invert_yaxis()
    axes.set_xlabel("split")
    axes.set_ylabel("rank by median L2 (1 = lowest)")
    axes.set_title(title or "Response prediction: method ranks across splits (dashed: baselines)")
    axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return finish(figure, path, overwrite)


def _color(method: str) -> str:
    if method == EXPERIMENTAL_ERROR:
        return ERROR_COLOR
    return BASELINE_COLOR if method in BASELINES else EMBEDDING_COLOR
