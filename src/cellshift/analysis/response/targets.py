"""What response prediction predicts: the change of every gene's expression per perturbation.

Two sources, both giving an AnnData of perturbations x genes (``obs`` index = perturbation label,
i.e. the perturbed gene; ``X`` = change, float64, NaN where a value is missing):

- :func:`response_targets`: pseudobulk change from raw-count cells. With
  ``x_ig = log(1 + 1e4 c_ig / sum_g' c_ig')``, perturbation ``p`` and batches ``b`` (all cells one
  batch when no batch key is given)::

      delta_pg = sum_b (n_pb / n_p) * (mean_{i in p, b} x_ig - mean_{i in control, b} x_ig)

  i.e. the per-batch differences averaged with the perturbation's cell counts as weights, which
  compares every perturbed cell with the controls of its own batch (gem group). Perturbed cells in
  batches without control cells cannot be compared and are dropped (counted in ``uns``); ``n_p``
  counts the cells used.
- :func:`mask_deltas`: changes computed elsewhere (e.g. log fold-changes of a DE fit), with
  values at or beyond ``+-clip`` (glmGamPoi clips log2 fold-changes at +-10 where a group has
  no counts) and non-finite values set to NaN, so that they are left out of the metrics.
"""

from __future__ import annotations

from collections.abc import Iterable

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from cellshift.analysis.screen_input import obs_labels, validate_screen
from cellshift.data import log_normalized


class PseudobulkDesign:
    """Log-normalised cells of a screen grouped by perturbation and batch, for pseudobulk changes.

    Parameters
    ----------
    adata
        Cells x genes with raw counts.
    perturbation_key
        ``obs`` column with the perturbation labels.
    control
        Label of the control cells.
    batch_key
        ``obs`` column with the batch (gem group) of each cell; ``None``: one batch.
    layer
        Layer holding the counts; ``None`` uses ``X``.
    exclude
        Labels neither predicted nor used as controls.
    """

    def __init__(
        self,
        adata: ad.AnnData,
        *,
        perturbation_key: str,
        control: str,
        batch_key: str | None = None,
        layer: str | None = None,
        exclude: Iterable[str] = (),
    ):
        screen = validate_screen(
            adata, perturbation_key=perturbation_key, control=control, min_cells=1, exclude=exclude
        )
        batches = obs_labels(adata, batch_key, "batch key") if batch_key else np.zeros(adata.n_obs, dtype=str)
        batch_names, batch_codes = np.unique(batches, return_inverse=True)
        has_control = np.bincount(batch_codes[screen.control_mask], minlength=len(batch_names)) > 0
        in_groups = screen.in_groups(screen.groups)
        compared = in_groups & has_control[batch_codes]
        keep = compared | screen.control_mask
        self.perturbations = screen.groups
        self.n_batches = len(batch_names)
        dropped = pd.Series(screen.labels[in_groups & ~compared]).value_counts()
        self.dropped = {str(label): int(n) for label, n in dropped.items()}
        values = log_normalized(adata[keep], layer=layer).X
        self.values = values.tocsr() if sparse.issparse(values) else np.asarray(values)
        self.gene_names = pd.Index(adata.var_names.astype(str))
        labels = screen.labels[keep]
        # group code: perturbation index for perturbed cells, len(perturbations) + batch for controls
        perturbation_codes = pd.Index(self.perturbations).get_indexer(labels)
        self.group = np.where(labels == control, len(self.perturbations) + batch_codes[keep], perturbation_codes)
        self.batch = batch_codes[keep]
        n_groups = len(self.perturbations) + self.n_batches
        self.group_sizes = np.bincount(self.group, minlength=n_groups)
        pert_cells = self.group < len(self.perturbations)
        counts = np.zeros((len(self.perturbations), self.n_batches))
        np.add.at(counts, (self.group[pert_cells], self.batch[pert_cells]), 1.0)
        self.n_cells = counts.sum(axis=1)
        self.batch_weights = counts / np.maximum(self.n_cells, 1.0)[:, None]

    def changes(self, multiplicity: np.ndarray | None = None) -> np.ndarray:
        """Pseudobulk change of every perturbation (rows) and gene (columns).

        Parameters
        ----------
        multiplicity
            How many times each cell counts (a bootstrap draw keeps every group's size);
            ``None``: once.

        Returns
        -------
        numpy.ndarray
            ``delta_pg`` of the module docstring, perturbations x genes.
        """
        weight = np.ones(len(self.group)) if multiplicity is None else multiplicity.astype(np.float64)
        n_groups = len(self.group_sizes)
        indicator = sparse.csr_matrix((weight, (self.group, np.arange(len(self.group)))), shape=(n_groups, len(weight)))
        sums = indicator @ self.values
        sums = sums.toarray() if sparse.issparse(sums) else np.asarray(sums)
        means = sums / np.maximum(self.group_sizes, 1)[:, None]
        n_pert = len(self.perturbations)
        return means[:n_pert] - self.batch_weights @ means[n_pert:]

    def bootstrap_multiplicity(self, rng: np.random.Generator) -> np.ndarray:
        """Resample the cells of every group (perturbation, or control of a batch) with replacement.

        Parameters
        ----------
        rng
            Random generator.

        Returns
        -------
        numpy.ndarray
            How many times each cell was drawn; every group keeps its size.
        """
        order = np.argsort(self.group, kind="stable")
        starts = np.concatenate([[0], np.cumsum(self.group_sizes)[:-1]])
        sorted_groups = self.group[order]
        draws = starts[sorted_groups] + np.floor(rng.random(len(order)) * self.group_sizes[sorted_groups]).astype(int)
        multiplicity = np.zeros(len(order), dtype=np.int64)
        np.add.at(multiplicity, order[draws], 1)
        return multiplicity


def response_targets(
    adata: ad.AnnData,
    *,
    perturbation_key: str,
    control: str,
    batch_key: str | None = None,
    min_cells: int = 20,
    layer: str | None = None,
    exclude: Iterable[str] = (),
) -> ad.AnnData:
    """Pseudobulk change of every perturbation vs control, per batch then averaged.

    The formula is in the module docstring.

    Parameters
    ----------
    adata
        Cells x genes with raw counts; ``obs[perturbation_key]`` names each cell's perturbation.
    perturbation_key
        ``obs`` column with the perturbation labels (the perturbed gene).
    control
        Label of the control cells.
    batch_key
        ``obs`` column with the batch or gem group; ``None`` treats all cells as one batch.
    min_cells
        Perturbations with fewer cells (after dropping cells of batches without controls) are left out.
    layer
        Layer holding the counts; ``None`` uses ``X``.
    exclude
        Labels neither kept nor used as controls.

    Returns
    -------
    anndata.AnnData
        Perturbations x genes: ``X`` = change (float64); ``obs['n_cells']``;
        ``uns['response_targets']``: ``source``, ``batch_key``, ``n_batches``, ``min_cells``,
        ``too_small`` (label -> cells) and ``dropped_cells`` (label -> cells in batches without controls).
    """
    design = PseudobulkDesign(
        adata, perturbation_key=perturbation_key, control=control, batch_key=batch_key, layer=layer, exclude=exclude
    )
    kept = design.n_cells >= min_cells
    if not kept.any():
        raise ValueError(f"no perturbation has at least {min_cells} cells compared with controls; lower --min-cells")
    labels = np.asarray(design.perturbations)
    targets = ad.AnnData(
        design.changes()[kept],
        obs=pd.DataFrame({"n_cells": design.n_cells[kept].astype(int)}, index=pd.Index(labels[kept], dtype=str)),
        var=pd.DataFrame(index=design.gene_names),
    )
    targets.uns["response_targets"] = {
        "source": "pseudobulk",
        "batch_key": batch_key or "",
        "n_batches": design.n_batches,
        "min_cells": min_cells,
        "too_small": {str(label): int(n) for label, n in zip(labels[~kept], design.n_cells[~kept], strict=True)},
        "dropped_cells": design.dropped,
    }
    return targets


def mask_deltas(deltas: ad.AnnData, *, clip: float | None = 10.0) -> ad.AnnData:
    """Changes computed elsewhere, with clipped and non-finite values set to NaN (missing).

    Parameters
    ----------
    deltas
        Perturbations x genes; ``obs`` index = perturbed gene, ``X`` = change (e.g. log2 fold-change).
    clip
        Values with ``|x| >= clip`` are masked (glmGamPoi's +-10 for a group without counts);
        ``None`` masks only NaN and infinities.

    Returns
    -------
    anndata.AnnData
        A copy with dense float64 ``X`` holding NaN where masked, ``obs`` and ``var`` kept;
        ``uns['response_targets']``: ``source`` ``"deltas"``, ``clip``, ``n_masked``.
    """
    if deltas.obs_names.has_duplicates:
        repeated = deltas.obs_names[deltas.obs_names.duplicated()].unique()[:5].tolist()
        raise ValueError(f"the deltas repeat perturbation labels (obs index), e.g. {repeated}; keep one row each")
    values = deltas.X.toarray() if sparse.issparse(deltas.X) else np.asarray(deltas.X)
    values = values.astype(np.float64)
    masked = ~np.isfinite(values)
    if clip is not None:
        masked |= np.abs(np.nan_to_num(values)) >= clip
    values[masked] = np.nan
    result = ad.AnnData(values, obs=deltas.obs.copy(), var=deltas.var.copy())
    result.obs_names = result.obs_names.astype(str)
    result.var_names = result.var_names.astype(str)
    result.uns["response_targets"] = {
        "source": "deltas",
        "clip": np.nan if clip is None else clip,
        "n_masked": int(masked.sum()),
    }
    return result


def changes_table(targets: ad.AnnData) -> pd.DataFrame:
    """The changes of an AnnData of perturbations x genes as a DataFrame (float64, NaN = missing).

    Parameters
    ----------
    targets
        Perturbations x genes, e.g. from :func:`response_targets` or :func:`mask_deltas`.

    Returns
    -------
    pandas.DataFrame
        Index = perturbation labels, columns = gene names.
    """
    if targets.obs_names.has_duplicates:
        raise ValueError("perturbation labels (obs index) must be distinct; keep one row per perturbation")
    values = targets.X.toarray() if sparse.issparse(targets.X) else np.asarray(targets.X)
    return pd.DataFrame(
        values.astype(np.float64), index=targets.obs_names.astype(str), columns=targets.var_names.astype(str)
    )
