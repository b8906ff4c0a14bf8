"""Figures without pyplot state, saved as PNG atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path

from matplotlib.figure import Figure

from cellshift._io import atomic_path, check_writable

DPI = 150


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout Figure that pyplot does not track (no global state, Agg when saved).

    Parameters
    ----------
    width, height
        Size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Empty figure; nothing keeps it alive once the caller drops it.
    """
    return Figure(figsize=(width, height), layout="constrained")


def save_png(figure: Figure, path: str | os.PathLike, *, overwrite: bool = False, dpi: int = DPI) -> Path:
    """Write ``figure`` to ``path`` as PNG atomically; refuse to replace a file unless ``overwrite``.

    Parameters
    ----------
    figure
        Figure to write.
    path
        Target file (``.png``).
    overwrite
        Replace an existing file.
    dpi
        Resolution in dots per inch.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = check_writable(path, overwrite, option="path")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return path


def png_bytes(figure: Figure, *, dpi: int = DPI) -> bytes:
    """Render ``figure`` to PNG bytes in memory (for embedding in a report)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def finish(figure: Figure, path: str | os.PathLike | None, overwrite: bool) -> Figure:
    """Save ``figure`` when ``path`` is given, and return it."""
    if path is not None:
        save_png(figure, path, overwrite=overwrite)
    return figure
