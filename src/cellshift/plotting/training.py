"""Training curves."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from cellshift.plotting._save import finish, new_figure


def plot_loss_curve(
    loss_log: str | os.PathLike | pd.DataFrame, path: str | os.PathLike | None = None, *, overwrite: bool = True
) -> Figure:
    """Loss against optimizer step from a pre-training loss log, with the learning rate beside it.

    Parameters
    ----------
    loss_log
        ``training/loss.csv`` of a model directory, or that table (columns ``step``, ``loss``,
        ``gene_loss``, ``value_loss``, ``learning_rate``).
    path
        Write the figure here as PNG.
    overwrite
        Replace an existing PNG (a resumed run redraws its curve).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: losses (log scale) and learning rate.
    """
    log = loss_log if isinstance(loss_log, pd.DataFrame) else pd.read_csv(Path(loss_log))
    figure = new_figure(9, 3.5)
    losses, rate = figure.subplots(1, 2)
    losses.plot(log["step"], log["loss"], label="total", color="black")
    if log["value_loss"].notna().any():
        losses.plot(log["step"], log["gene_loss"], label="masked gene (CE)", color="tab:blue")
        losses.plot(log["step"], log["value_loss"], label="masked value (MSE)", color="tab:orange")
    losses.set(xlabel="optimizer step", ylabel="training loss", yscale="log", title="pre-training loss")
    losses.legend(frameon=False)
    rate.plot(log["step"], log["learning_rate"], color="tab:green")
    rate.set(xlabel="optimizer step", ylabel="learning rate", title="schedule")
    return finish(figure, path, overwrite)
