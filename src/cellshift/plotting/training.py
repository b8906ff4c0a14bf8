"""Training curves."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from cellshift.plotting._save import finish, new_figure


def plot_loss_curve(
    loss_log: str | os.PathLike | pd.DataFrame,
    path: str | os.PathLike | None = None,
    *,
    margin: float | None = None,
    overwrite: bool = True,
) -> Figure:
    """Loss against optimizer step from a pre-training or contrastive fine-tuning loss log.

    Pre-training logs (``gene_loss``, ``value_loss`` columns): losses and the learning rate.
    Fine-tuning logs (``similar_loss``, ``dissimilar_loss``, ``similar_distance``,
    ``dissimilar_distance``): the loss and its two halves, the mean embedding distance of
    similar (control, control) and dissimilar (perturbed, control) pairs with the margin ``m``
    beside it (pairs closer than ``m`` are what the dissimilar term pushes apart), and the
    learning rate; dashed, the same on held-out validation pairs when the log has them.

    Parameters
    ----------
    loss_log
        ``training/loss.csv`` of a model directory, or that table.
    path
        Write the figure here as PNG.
    margin
        Margin of the contrastive loss, drawn with the pair distances (fine-tuning logs).
    overwrite
        Replace an existing PNG (a resumed run redraws its curve).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (pre-training) or three (fine-tuning).

    Raises
    ------
    KeyError
        If the log has neither kind of columns.
    """
    log = loss_log if isinstance(loss_log, pd.DataFrame) else pd.read_csv(Path(loss_log))
    finetuning = {"similar_loss", "dissimilar_loss", "similar_distance", "dissimilar_distance"} <= set(log.columns)
    if not finetuning and not {"gene_loss", "value_loss"} <= set(log.columns):
        raise KeyError(f"not a cellshift loss log (pre-training or fine-tuning); columns: {list(log.columns)}")
    figure = new_figure(13 if finetuning else 9, 3.5)
    panels = figure.subplots(1, 3 if finetuning else 2)
    losses, rate = panels[0], panels[-1]
    losses.plot(log["step"], log["loss"], label="total", color="black")
    if finetuning:
        losses.plot(log["step"], log["similar_loss"], label="similar pairs", color="tab:blue")
        losses.plot(log["step"], log["dissimilar_loss"], label="dissimilar pairs", color="tab:red")
        distances = panels[1]
        distances.plot(log["step"], log["similar_distance"], label="similar pairs", color="tab:blue")
        distances.plot(log["step"], log["dissimilar_distance"], label="dissimilar pairs", color="tab:red")
        if "validation_loss" in log.columns and log["validation_loss"].notna().any():
            losses.plot(log["step"], log["validation_loss"], label="validation", color="tab:purple", linestyle="--")
            for column, color in (("similar", "tab:blue"), ("dissimilar", "tab:red")):
                label = f"{column} pairs (validation)"
                distances.plot(log["step"], log[f"validation_{column}_distance"], label=label, color=color, ls="--")
        if margin is not None:
            distances.axhline(margin, color="black", linestyle="--", linewidth=0.8, label=f"margin {margin:g}")
        distances.set(xlabel="optimizer step", ylabel="mean embedding distance", title="pair distances")
        distances.legend(frameon=False)
    elif log["value_loss"].notna().any():
        losses.plot(log["step"], log["gene_loss"], label="masked gene (CE)", color="tab:blue")
        losses.plot(log["step"], log["value_loss"], label="masked value (MSE)", color="tab:orange")
    title = "contrastive fine-tuning loss" if finetuning else "pre-training loss"
    losses.set(xlabel="optimizer step", ylabel="training loss", yscale="log", title=title)
    losses.legend(frameon=False)
    rate.plot(log["step"], log["learning_rate"], color="tab:green")
    rate.set(xlabel="optimizer step", ylabel="learning rate", title="schedule")
    return finish(figure, path, overwrite)
