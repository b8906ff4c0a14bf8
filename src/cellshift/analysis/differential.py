"""Differentially expressed genes and on-target knock-down per perturbation.

Every perturbation is compared with the control cells on the log-normalised counts
``x_ig = log(1 + 1e4 c_ig / sum_g' c_ig')``:

- ``"wilcoxon"``: Wilcoxon rank-sum test by :func:`scanpy.tl.rank_genes_groups` (normal
  approximation with tie correction), Benjamini-Hochberg over the genes.
- ``"anderson_darling"``: the k-sample Anderson-Darling test of :func:`scipy.stats.anderson_ksamp`
  per gene (as in Replogle et al. 2022), Benjamini-Hochberg over the genes. scipy interpolates
  its p-values from a table and clips them to ``[0.001, 0.25]``.

A gene is a DEG when its adjusted p-value is below ``fdr``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse, stats

from cellshift._validate import GROUP_CELLS, PROBABILITY, check_options
from cellshift.analysis.screen_input import Screen, validate_screen
from cellshift.data import detect_id_type, ensembl_to_symbols, log_normalized, symbols_to_ensembl

DegMethod = Literal["wilcoxon", "anderson_darling"]
LONG_COLUMNS = ["perturbation", "gene", "logfoldchange", "pvalue", "padj"]


def degs(
    adata: ad.AnnData,
    *,
    perturbation_key: str,
    control: str,
    method: DegMethod = "wilcoxon",
    fdr: float = 0.05,
    target_gene_key: str | None = None,
    layer: str | None = None,
    min_cells: int = 20,
    exclude: Iterable[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Count the DEGs of every perturbation vs control and measure the target's knock-down.

    ``logfoldchange = log2((mean_pert(e^x - 1) + 1e-9) / (mean_ctrl(e^x - 1) + 1e-9))`` (scanpy's
    definition) and ``knockdown = mean_pert(n_t) / mean_ctrl(n_t)`` with
    ``n_ig = 1e4 c_ig / sum_g' c_ig'`` the normalised expression of the target gene ``t``.

    Parameters
    ----------
    adata
        Cells x genes with raw counts (checked: scaled or log-normalised values raise a ``ValueError``).
    perturbation_key
        ``obs`` column with the perturbation labels.
    control
        Label of the control cells.
    method
        ``"wilcoxon"`` or ``"anderson_darling"``.
    fdr
        Benjamini-Hochberg threshold for a DEG.
    target_gene_key
        ``obs`` column with the target gene of each cell; ``None`` uses the perturbation label.
        Symbols and Ensembl IDs are matched to the gene names either way.
    layer
        Layer holding the counts; ``None`` uses ``X``.
    min_cells
        Perturbations with fewer cells are left out (see :func:`validate_screen`).
    exclude
        Labels neither tested nor used as controls.

    Returns
    -------
    summary : pandas.DataFrame
        One row per perturbation: ``perturbation, n_cells, n_degs, knockdown, status``
        (``knockdown`` is NaN when the target gene is not measured or not expressed in control
        cells; ``status`` is ``"scored"``, or why a group was not tested: groups below
        ``min_cells`` are listed last, with empty counts).
    genes : pandas.DataFrame
        One row per perturbation and gene: ``perturbation, gene, logfoldchange, pvalue, padj``.
    """
    check_options({"fdr": fdr, "min_cells": min_cells}, {"fdr": PROBABILITY, "min_cells": GROUP_CELLS})
    screen = validate_screen(
        adata, perturbation_key=perturbation_key, control=control, min_cells=min_cells, exclude=exclude
    )
    screen.require_groups()
    targets = _targets(adata, screen, target_gene_key)  # a bad key fails before the tests
    normalized = log_normalized(adata[screen.scored_mask()], layer=layer)
    labels = screen.labels[screen.scored_mask()]
    normalized.obs["_perturbation"] = pd.Categorical(labels)
    if method == "wilcoxon":
        genes = _wilcoxon(normalized, screen)
    elif method == "anderson_darling":
        genes = _anderson_darling(normalized, labels, screen)
    else:
        raise ValueError(f"method must be 'wilcoxon' or 'anderson_darling', got {method!r}")

    n_degs = genes[genes["padj"] < fdr].groupby("perturbation").size()
    summary = pd.DataFrame(
        {
            "perturbation": list(screen.groups),
            "n_cells": list(screen.sizes),
            "n_degs": [int(n_degs.get(group, 0)) for group in screen.groups],
            "knockdown": knockdown(adata, screen, targets, layer=layer),
        }
    )
    return screen.with_unscored(summary), genes


def _wilcoxon(normalized: ad.AnnData, screen: Screen) -> pd.DataFrame:
    """Wilcoxon rank-sum tests of every group vs control with scanpy, all genes."""
    with warnings.catch_warnings():  # scanpy fills its result frame column by column (harmless)
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        sc.tl.rank_genes_groups(
            normalized,
            groupby="_perturbation",
            groups=list(screen.groups),
            reference=screen.control,
            method="wilcoxon",
            corr_method="benjamini-hochberg",
            tie_correct=True,
            n_genes=normalized.n_vars,
        )
    table = sc.get.rank_genes_groups_df(normalized, group=list(screen.groups))
    table = table.rename(
        columns={
            "group": "perturbation",
            "names": "gene",
            "logfoldchanges": "logfoldchange",
            "pvals": "pvalue",
            "pvals_adj": "padj",
        }
    )
    table["perturbation"] = table["perturbation"].astype(str)
    return table[LONG_COLUMNS].sort_values(["perturbation", "pvalue"], kind="stable").reset_index(drop=True)


def _anderson_darling(normalized: ad.AnnData, labels: np.ndarray, screen: Screen) -> pd.DataFrame:
    """Anderson-Darling k-sample tests (k = 2) of every group vs control, gene by gene."""
    values = normalized.X.toarray() if sparse.issparse(normalized.X) else np.asarray(normalized.X)
    control_values = values[labels == screen.control]
    control_mean = np.expm1(control_values).mean(axis=0)
    tables = []
    for group in screen.groups:
        group_values = values[labels == group]
        pvalues = np.array([_ad_pvalue(group_values[:, g], control_values[:, g]) for g in range(values.shape[1])])
        tables.append(
            pd.DataFrame(
                {
                    "perturbation": group,
                    "gene": normalized.var_names.astype(str),
                    "logfoldchange": np.log2((np.expm1(group_values).mean(axis=0) + 1e-9) / (control_mean + 1e-9)),
                    "pvalue": pvalues,
                    "padj": stats.false_discovery_control(pvalues, method="bh"),
                }
            )
        )
    table = pd.concat(tables, ignore_index=True)
    return table.sort_values(["perturbation", "pvalue"], kind="stable").reset_index(drop=True)


def _ad_pvalue(perturbed: np.ndarray, control: np.ndarray) -> float:
    """Anderson-Darling p-value of one gene; 1.0 when both samples hold one identical value."""
    if np.unique(np.concatenate([perturbed, control])).size < 2:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy warns when it clips the p-value
        return float(stats.anderson_ksamp([perturbed, control]).pvalue)


def _targets(adata: ad.AnnData, screen: Screen, target_gene_key: str | None) -> dict[str, str]:
    """Target gene of every scored perturbation, from ``obs[target_gene_key]`` or the label."""
    if target_gene_key is None:
        return {group: group for group in screen.groups}
    if target_gene_key not in adata.obs.columns:
        raise KeyError(
            f"target gene key {target_gene_key!r} is not a column of adata.obs; "
            f"available columns: {', '.join(map(str, adata.obs.columns))}"
        )
    column = adata.obs[target_gene_key].astype(str).to_numpy()
    targets = {}
    for group in screen.groups:
        values = np.unique(column[screen.group_mask(group)])
        if values.size != 1:
            raise ValueError(f"perturbation {group!r} has several target genes in obs[{target_gene_key!r}]: {values}")
        targets[group] = str(values[0])
    return targets


def match_gene(target: str, var_names: pd.Index) -> str | None:
    """Return the gene name in ``var_names`` that is ``target``, as a symbol or an Ensembl ID.

    ``target`` is looked up as given, then converted (symbol -> Ensembl when the genes are
    Ensembl IDs, Ensembl -> symbol when they are symbols) with the bundled tables.
    """
    names = set(map(str, var_names))
    if target in names:
        return target
    if detect_id_type(names) == "ensembl":
        converted = symbols_to_ensembl([target]).target[0]
        versionless = {name.split(".", 1)[0]: name for name in names}
        return versionless.get(converted) if converted else None
    converted = ensembl_to_symbols([target]).target[0]
    return converted if converted in names else None


def counts_per_10k(adata: ad.AnnData, layer: str | None = None) -> sparse.csr_matrix:
    """``n_ig = 1e4 c_ig / sum_g' c_ig'`` (cells without counts stay 0), as a float64 CSR matrix."""
    counts = sparse.csr_matrix(adata.X if layer is None else adata.layers[layer], dtype=np.float64)
    library = np.asarray(counts.sum(axis=1)).ravel()
    return sparse.diags(1e4 / np.where(library > 0, library, 1.0)) @ counts


def knockdown(adata: ad.AnnData, screen: Screen, targets: dict[str, str], *, layer: str | None = None) -> list[float]:
    """Knock-down of each scored perturbation's target gene, in the order of ``screen.groups``.

    ``knockdown = mean_pert(n_t) / mean_ctrl(n_t)``, ``n_ig = 1e4 c_ig / sum_g' c_ig'``;
    NaN when the target is not measured or its control mean is 0.
    """
    normalized = counts_per_10k(adata, layer)
    columns = {str(name): i for i, name in enumerate(adata.var_names)}
    result = []
    for group in screen.groups:
        gene = match_gene(targets[group], adata.var_names)
        if gene is None:
            result.append(np.nan)
            continue
        expression = normalized[:, columns[gene]].toarray().ravel()
        control_mean = expression[screen.control_mask].mean()
        result.append(float(expression[screen.group_mask(group)].mean() / control_mean) if control_mean > 0 else np.nan)
    return result
