"""Cell-type annotation figures: a confusion matrix per method."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cellshift.plotting._save import finish, new_figure


def confusion_matrices(
    confusion: dict[str, pd.DataFrame],
    path: str | os.PathLike | None = None,
    *,
    macro_f1: dict[str, float] | None = None,
    overwrite: bool = False,
) -> Figure:
    """One panel per method: the share of each true label's cells given each predicted label.

    Rows are normalised to 1 (each row shows where one true type's cells went); the cell counts
    are written in the squares. True labels the classifier does not know are the last rows.

    Parameters
    ----------
    confusion
        Method -> true x predicted cell counts (``AnnotationResult.confusion``).
    path
        Write the figure here as PNG.
    macro_f1
        Method -> macro-F1, shown in the panel titles.
    overwrite
        Replace an existing PNG.

    Returns
    -------
    matplotlib.figure.Figure
        The panels side by side.
    """
    if not confusion:
        raise ValueError("no confusion matrix to draw: the predicted cells have no true labels")
    largest = max(max(table.shape) for table in confusion.values())
    side = 1.2 + 0.45 * largest
    figure = new_figure(side * len(confusion) + 0.8, side)
    panels = np.atleast_1d(figure.subplots(1, len(confusion)))
    for panel, (method, counts) in zip(panels, confusion.items(), strict=True):
        shares = counts.div(counts.sum(axis=1).replace(0, 1), axis=0)
        image = panel.imshow(shares.to_numpy(), cmap="Blues", vmin=0, vmax=1)
        for (row, column), count in np.ndenumerate(counts.to_numpy()):
            color = "white" if shares.iloc[row, column] > 0.6 else "black"
            panel.text(column, row, str(count), ha="center", va="center", fontsize=7, color=color)
        panel.set_xticks(range(counts.shape[1]), counts.columns, rotation=45, ha="right", fontsize=8)
        panel.set_yticks(range(counts.shape[0]), counts.index, fontsize=8)
        panel.set_xlabel("predicted")
        panel.set_ylabel("true")
        score = f" (macro-F1 {macro_f1[method]:.2f})" if macro_f1 and method in macro_f1 else ""
        panel.set_title(f"{method}{score}", fontsize=9)
    figure.colorbar(image, ax=panels.tolist(), shrink=0.7, label="share of the true label's cells")
    return finish(figure, path, overwrite)
