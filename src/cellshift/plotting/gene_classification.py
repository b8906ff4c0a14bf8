"""Figure of gene classification (:func:`cellshift.tasks.classify_genes`): one ROC curve per gene embedding.

Each curve pools a method's out-of-fold predictions (every embedded gene scored by the classifier
that did not see it) and is labelled with its area, the pooled AUROC; the per-fold mean and
interval are in the summary table. Each legend entry also gives how many labelled genes the
method covers, since methods are scored on the genes they embed.
"""

from __future__ import annotations

import os

import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from cellshift.plotting._save import finish, new_figure


def gene_classification_roc(
    predictions: pd.DataFrame,
    *,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """Out-of-fold ROC curve of each method, with the chance diagonal.

    Parameters
    ----------
    predictions
        Out-of-fold predictions (``method, is_positive, probability``), as in
        :attr:`cellshift.tasks.GeneClassification.predictions`.
    title
        Figure title.
    path
        Save the figure there as PNG when given.
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        False-positive rate on the x axis, true-positive rate on the y axis; methods in the legend
        sorted by pooled AUROC (highest first).
    """
    if predictions.empty:
        raise ValueError("no predictions to plot; pass the predictions of cellshift.tasks.classify_genes")
    curves = []
    for method, genes in predictions.groupby("method", sort=False):
        false_positive_rate, true_positive_rate, _ = roc_curve(genes["is_positive"], genes["probability"])
        pooled_auroc = roc_auc_score(genes["is_positive"], genes["probability"])
        curves.append((pooled_auroc, method, len(genes), false_positive_rate, true_positive_rate))
    curves.sort(key=lambda curve: -curve[0])
    figure = new_figure(5.5, 4.5)
    axes = figure.add_subplot()
    for pooled_auroc, method, n_genes, false_positive_rate, true_positive_rate in curves:
        label = f"{method}: AUROC {pooled_auroc:.2f} ({n_genes} genes)"
        axes.plot(false_positive_rate, true_positive_rate, lw=1.5, label=label)
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", lw=1)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_aspect("equal")
    axes.set_xlabel("false-positive rate")
    axes.set_ylabel("true-positive rate")
    axes.set_title(title or "Gene classification: out-of-fold ROC per embedding")
    axes.legend(loc="lower right", fontsize="small", frameon=False)
    return finish(figure, path, overwrite)
