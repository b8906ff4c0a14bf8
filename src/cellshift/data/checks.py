"""Checks that input really holds raw counts, with errors that say what to do instead."""

from __future__ import annotations

import numpy as np


def check_raw_counts(values: np.ndarray, *, where: str, layers: list[str] | None = None) -> None:
    """Raise a clear ``ValueError`` unless ``values`` (the stored entries of a count matrix) are raw counts.

    Raw counts are finite, non-negative integers. Negative values mean scaled data
    (``sc.pp.scale``); non-integer values mean normalised or log-transformed data.

    Parameters
    ----------
    values
        Stored entries of (a chunk of) the matrix.
    where
        What was read, for the message (e.g. ``"X of pbmc.h5ad"``).
    layers
        Layers the input has, offered as alternatives in the message.
    """
    if values.size == 0:
        return
    hint = _layer_hint(layers)
    if not np.isfinite(values).all():
        n_bad = int((~np.isfinite(values)).sum())
        raise ValueError(f"{where} holds {n_bad} NaN or infinite values, so it is not raw counts. {hint}")
    minimum = float(values.min())
    if minimum < 0:
        raise ValueError(
            f"{where} holds negative values (min {minimum:.3g}): it looks scaled or centred, not raw counts. {hint}"
        )
    fractional = values != np.round(values)
    if fractional.any():
        example = float(values[fractional][0])
        raise ValueError(
            f"{where} holds non-integer values (e.g. {example:.4g}; max {float(values.max()):.4g}): it "
            f"looks log-normalised, not raw counts. {hint}"
        )


def _layer_hint(layers: list[str] | None) -> str:
    if layers:
        preferred = [name for name in ("counts", "raw_counts", "umi", "spliced") if name in layers]
        suggestion = preferred[0] if preferred else layers[0]
        return f"Pass the layer with raw counts, e.g. layer={suggestion!r} (--layer {suggestion}); layers: {layers}."
    return "Pass raw UMI counts (keep them in a layer, e.g. adata.layers['counts'], before normalising)."
