"""Baseline embeddings from raw counts: PCA and highly variable genes (Zhao et al. 2025's baselines).

Both start from the same log-normalised copy of the counts,
``x_ig = log(1 + 1e4 * c_ig / sum_g' c_ig')``; ``adata.X`` is never modified.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scanpy as sc
from scipy import sparse

from cellshift.data import log_normalized


def embed_pca(
    adata: ad.AnnData,
    *,
    n_comps: int = 200,
    layer: str | None = None,
    key_added: str | None = None,
    copy: bool = False,
) -> ad.AnnData | None:
    """Embed cells by the top principal components of their log-normalised counts.

    The number of components is ``min(n_comps, n_genes - 1, n_cells - 1)``; the genes are
    centred (not scaled) and the PCA is computed by scanpy (ARPACK, ``random_state=0``).

    Parameters
    ----------
    adata
        Cells x genes with raw counts.
    n_comps
        Number of components asked for (Zhao et al. 2025: 200).
    layer
        Layer holding the counts; ``None`` uses ``X``.
    key_added
        Key in ``obsm``; defaults to ``"X_pca"``.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    anndata.AnnData or None
        ``adata`` (or a copy when ``copy=True``, else ``None``) with
        ``adata.obsm['X_pca']``: cells x components, float32.
    """
    adata = adata.copy() if copy else adata
    key = key_added or "X_pca"
    n_used = min(n_comps, adata.n_vars - 1, adata.n_obs - 1)
    if n_used < 1:
        raise ValueError(f"PCA needs at least 2 cells and 2 genes, got {adata.n_obs} x {adata.n_vars}")
    normalized = log_normalized(adata, layer=layer)
    sc.pp.pca(normalized, n_comps=n_used, random_state=0)
    adata.obsm[key] = np.asarray(normalized.obsm["X_pca"], dtype=np.float32)
    return adata if copy else None


def embed_hvg(
    adata: ad.AnnData,
    *,
    n_top_genes: int = 300,
    layer: str | None = None,
    key_added: str | None = None,
    copy: bool = False,
) -> ad.AnnData | None:
    """Embed cells by their log-normalised expression of the most highly variable genes.

    Genes are ranked by the normalised dispersion of scanpy ``highly_variable_genes`` (flavour
    ``"seurat"``, on log-normalised data) over the whole dataset and exactly ``n_top_genes`` are
    kept, in their original order; when there are no more genes than that, all are used.

    Parameters
    ----------
    adata
        Cells x genes with raw counts.
    n_top_genes
        Number of genes kept (Zhao et al. 2025: 300).
    layer
        Layer holding the counts; ``None`` uses ``X``.
    key_added
        Key in ``obsm``; defaults to ``"X_hvg"``.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    anndata.AnnData or None
        ``adata`` (or a copy when ``copy=True``, else ``None``) with
        ``adata.obsm['X_hvg']``: cells x genes, dense float32; and
        ``adata.uns['X_hvg']['genes']``: the names of those genes, in column order.
    """
    adata = adata.copy() if copy else adata
    key = key_added or "X_hvg"
    normalized = log_normalized(adata, layer=layer)
    if adata.n_vars > n_top_genes:
        table = sc.pp.highly_variable_genes(normalized, flavor="seurat", inplace=False)
        dispersion = table["dispersions_norm"].fillna(-np.inf).to_numpy()
        top = np.sort(np.argsort(-dispersion, kind="stable")[:n_top_genes])  # ties: first genes win
        normalized = normalized[:, top]
    values = normalized.X.toarray() if sparse.issparse(normalized.X) else np.asarray(normalized.X)
    adata.obsm[key] = values.astype(np.float32)
    adata.uns[key] = {"genes": list(map(str, normalized.var_names))}
    return adata if copy else None
