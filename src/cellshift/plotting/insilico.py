"""In-silico perturbation and GRN figures: the genes that move cells most, and precision-recall curves."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cellshift.plotting._save import finish, new_figure


def top_shifts(
    shifts: pd.DataFrame,
    path: str | os.PathLike | None = None,
    *,
    measure: str = "cosine_shift",
    n_genes: int = 20,
    overwrite: bool = False,
) -> Figure:
    """The ``n_genes`` perturbations with the largest mean ``measure``, beside their rank-matched null.

    Parameters
    ----------
    shifts
        ``InsilicoResult.shifts``: ``gene`` and ``<measure>_mean``, ``_sd``, ``_null_mean``, ``_fdr``.
    path
        Write the figure here as PNG.
    measure
        ``cosine_shift`` or ``shift_to_<state>``.
    n_genes
        Bars drawn.
    overwrite
        Replace an existing PNG.

    Returns
    -------
    matplotlib.figure.Figure
        Horizontal bars (mean +- sd over cells), the null mean as a black tick, FDR < 0.05 in colour.
    """
    top = shifts.nlargest(n_genes, f"{measure}_mean").iloc[::-1]
    figure = new_figure(6, 1.0 + 0.25 * len(top))
    panel = figure.subplots()
    positions = np.arange(len(top))
    significant = top[f"{measure}_fdr"].fillna(1.0).to_numpy() < 0.05
    colours = np.where(significant, "tab:red", "tab:gray")
    panel.barh(positions, top[f"{measure}_mean"], xerr=top[f"{measure}_sd"], color=colours, alpha=0.8)
    panel.scatter(top[f"{measure}_null_mean"], positions, marker="|", s=120, color="black", label="null mean")
    panel.set_yticks(positions, top["gene"], fontsize=8)
    panel.set_xlabel(f"{measure} (mean over cells; red: FDR < 0.05 vs rank-matched genes)")
    panel.legend(loc="lower right", fontsize=8)
    return finish(figure, path, overwrite)


def precision_recall_curves(
    curves: dict[tuple[str, str], pd.DataFrame],
    metrics: pd.DataFrame,
    path: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
) -> Figure:
    """One panel per reference network: the pooled precision-recall curve of every method.

    Parameters
    ----------
    curves
        ``(method, reference)`` -> ``precision, recall`` (``GrnResult.curves``).
    metrics
        ``GrnResult.metrics``, for the AUPRC in the legend, the circular marks and the random level.
    path
        Write the figure here as PNG.
    overwrite
        Replace an existing PNG.

    Returns
    -------
    matplotlib.figure.Figure
        The panels side by side; the dotted line is the share of true edges (random ranking).
    """
    references = list(dict.fromkeys(reference for _, reference in curves))
    figure = new_figure(4.5 * len(references), 4)
    panels = np.atleast_1d(figure.subplots(1, len(references)))
    indexed = metrics.set_index(["method", "reference"])
    for panel, reference in zip(panels, references, strict=True):
        for (method, name), curve in curves.items():
            if name != reference:
                continue
            row = indexed.loc[(method, name)]
            label = f"{method} (AUPRC {row['auprc']:.3f}{', circular' if row['circular'] else ''})"
            panel.plot(curve["recall"], curve["precision"], label=label, linestyle="--" if row["circular"] else "-")
        random_level = indexed.xs(reference, level="reference")["auprc_random"].iloc[0]
        panel.axhline(random_level, color="black", linestyle=":", linewidth=1)
        panel.set_xlabel("recall")
        panel.set_ylabel("precision")
        panel.set_yscale("log")
        panel.set_title(reference, fontsize=9)
        panel.legend(fontsize=7)
    return finish(figure, path, overwrite)
