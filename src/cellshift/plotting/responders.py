"""Figure of per-cell responder calls: fraction of responders per perturbation and their knock-down.

Left: per perturbation, the fraction of its cells called responders (bar, Benjamini-Hochberg at the
run's FDR) and Storey's estimate of the responding fraction (open circle), which also counts
cells too weakly shifted to be called one by one. Right (when targets are measured): on-target
expression relative to control in non-responders and responders, one row per perturbation;
responders should sit further left (their target is knocked down), escapers nearer 1.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cellshift.plotting._save import finish, new_figure

RESPONDER_COLOR, OTHER_COLOR = "#d62728", "#7f7f7f"


def responder_fractions(
    summary: pd.DataFrame,
    *,
    knockdown: pd.DataFrame | None = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """Fractions of responders per perturbation and, when given, knock-down by response.

    Parameters
    ----------
    summary
        ``uns['<key>_response']['summary']`` of :func:`cellshift.analysis.score_cells`
        (``perturbation, fraction_responders, responding_fraction_storey``).
    knockdown
        Table of :func:`cellshift.analysis.responders.responder_knockdown`; a second panel when
        it has rows.
    path, overwrite
        Where to save the PNG, and whether an existing file may be replaced.

    Returns
    -------
    matplotlib.figure.Figure
    """
    has_knockdown = knockdown is not None and not knockdown.empty
    ordered = summary.sort_values(["fraction_responders", "responding_fraction_storey"], kind="stable")
    height = max(3.0, 0.22 * len(ordered) + 1.2)
    figure = new_figure(10.0 if has_knockdown else 6.0, height)
    axes = figure.subplots(1, 2 if has_knockdown else 1, squeeze=False)[0]
    positions = np.arange(len(ordered))
    bars = axes[0]
    bars.barh(positions, ordered["fraction_responders"], color=RESPONDER_COLOR, label="called (FDR)")
    bars.scatter(
        ordered["responding_fraction_storey"],
        positions,
        facecolors="none",
        edgecolors="black",
        zorder=3,
        label="estimated (Storey)",
    )
    bars.set_yticks(positions, ordered["perturbation"].astype(str), fontsize=8)
    bars.set_xlim(0, 1)
    bars.set_xlabel("fraction of the perturbation's cells")
    bars.set_title("Responders per perturbation")
    bars.legend(loc="lower right", fontsize=8)
    if has_knockdown:
        _knockdown_panel(axes[1], knockdown)
    return finish(figure, path, overwrite)


def _knockdown_panel(axis: Axes, knockdown: pd.DataFrame) -> None:
    """Target expression over control per perturbation: non-responders (grey) and responders (red) on one row."""
    ordered = knockdown.sort_values("knockdown_non_responders", kind="stable")
    positions = np.arange(len(ordered))
    for position, row in zip(positions, ordered.itertuples(), strict=True):
        axis.plot([row.knockdown_non_responders, row.knockdown_responders], [position] * 2, color="#bbbbbb", zorder=1)
    axis.scatter(ordered["knockdown_non_responders"], positions, color=OTHER_COLOR, zorder=2, label="non-responders")
    axis.scatter(ordered["knockdown_responders"], positions, color=RESPONDER_COLOR, zorder=2, label="responders")
    axis.axvline(1.0, color="black", linestyle="--", linewidth=0.8)
    axis.set_yticks(positions, ordered["perturbation"].astype(str), fontsize=8)
    axis.set_xlim(left=0)
    axis.set_xlabel("target expression / control (1 = no knock-down)")
    axis.set_title("On-target knock-down")
    axis.legend(loc="best", fontsize=8)
