"""Log-normalised copies of raw counts, the input of every expression-space baseline and test.

``x_ig = log(1 + 1e4 * c_ig / sum_g' c_ig')``: each cell scaled to 10,000 counts, then ``log1p``.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scanpy as sc
from scipy import sparse

from cellshift.data.checks import check_raw_counts


def log_normalized(adata: ad.AnnData, *, layer: str | None = None) -> ad.AnnData:
    """Return a new AnnData holding the log-normalised counts of ``adata``.

    ``x_ig = log(1 + 1e4 * c_ig / sum_g' c_ig')`` (scanpy ``normalize_total(target_sum=1e4)``
    then ``log1p``), computed on a copy of the counts.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``X`` or in ``layers[layer]``.
    layer
        Layer holding the counts; ``None`` uses ``X``.

    Returns
    -------
    anndata.AnnData
        Same cells (``obs``) and genes (``var``), ``X`` = log-normalised float32 values.

    Raises
    ------
    KeyError
        If ``layer`` is not a layer of ``adata``.
    ValueError
        If the counts are not raw counts (negative, non-integer, NaN or infinite values), which
        every expression-space step that normalises counts itself refuses the same way.
    """
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"layer {layer!r} is not in adata.layers; available layers: {list(adata.layers) or '(none)'}")
    counts = adata.X if layer is None else adata.layers[layer]
    values = counts.data if sparse.issparse(counts) else np.asarray(counts)
    check_raw_counts(
        values, where="adata.X" if layer is None else f"adata.layers[{layer!r}]", layers=list(adata.layers)
    )
    counts = counts.astype(np.float32) if sparse.issparse(counts) else np.asarray(counts, dtype=np.float32)
    normalized = ad.AnnData(X=counts.copy(), obs=adata.obs.copy(), var=adata.var.copy())
    sc.pp.normalize_total(normalized, target_sum=1e4)
    sc.pp.log1p(normalized)
    return normalized
