"""Put a query's genes into a reference's gene names, within a species or across human and mouse.

Across species, a query gene takes the name of its one-to-one ortholog (Ensembl 105 table,
:func:`cellshift.data.mouse_to_human` / :func:`cellshift.data.human_to_mouse`); a symbol not
found as written is tried in the other species' case convention (``GCG`` -> ``Gcg``), because
some data sets upper-case mouse symbols. Within human, Ensembl IDs and symbols are converted to
the reference's kind. Raw counts are carried over unchanged; genes of the query without a
partner in the reference are left out and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from cellshift.data import (
    detect_id_type,
    detect_species,
    ensembl_to_symbols,
    human_to_mouse,
    mouse_to_human,
    symbols_to_ensembl,
)


@dataclass(frozen=True)
class GeneAlignment:
    """How a query's genes were matched to the reference's."""

    query_species: str
    reference_species: str
    n_query_genes: int
    n_shared: int
    n_duplicates: int
    how: str

    def summary(self) -> str:
        """One line for logs and reports."""
        return (
            f"{self.n_shared} of {self.n_query_genes} query genes ({self.query_species}) matched the reference "
            f"({self.reference_species}) by {self.how}; {self.n_duplicates} duplicate matches left out"
        )


def align_to_reference(
    query: ad.AnnData,
    reference_genes: Sequence[str],
    *,
    query_species: str | None = None,
    reference_species: str | None = None,
    gene_key: str | None = None,
) -> tuple[ad.AnnData, GeneAlignment]:
    """Return the query's cells with only the genes it shares with the reference, named as there.

    Parameters
    ----------
    query
        Cells x genes with raw counts.
    reference_genes
        Gene names of the reference (symbols or Ensembl IDs).
    query_species, reference_species
        ``human`` or ``mouse``; detected from the gene names when not given.
    gene_key
        ``var`` column of the query holding its gene names (default: ``var_names``).

    Returns
    -------
    tuple
        The aligned AnnData (genes in reference order, ``obs`` kept, ``X`` the counts) and a
        :class:`GeneAlignment`.

    Raises
    ------
    ValueError
        When no query gene matches a reference gene.
    """
    names = [str(g) for g in (query.var[gene_key] if gene_key else query.var_names)]
    reference_genes = [str(g) for g in reference_genes]
    query_species = query_species or detect_species(names)
    reference_species = reference_species or detect_species(reference_genes)
    targets, how = _translate(names, query_species, reference_species, detect_id_type(reference_genes))
    position = {gene: i for i, gene in enumerate(reference_genes)}
    matched = pd.Series([position.get(t, -1) if t is not None else -1 for t in targets])
    first = (matched >= 0) & ~matched.duplicated()
    n_duplicates = int(((matched >= 0) & matched.duplicated()).sum())
    columns = np.flatnonzero(first.to_numpy())
    if columns.size == 0:
        raise ValueError(
            f"no query gene matches a reference gene (query {query_species}, e.g. {names[:3]}; reference "
            f"{reference_species}, e.g. {reference_genes[:3]}); pass --query-species / gene names of the same kind"
        )
    order = np.argsort(matched.to_numpy()[columns], kind="stable")
    columns = columns[order]
    counts = query.X[:, columns]
    aligned = ad.AnnData(
        X=counts.copy() if sparse.issparse(counts) else np.asarray(counts).copy(),
        obs=query.obs.copy(),
        var=pd.DataFrame(index=[reference_genes[i] for i in matched.to_numpy()[columns]]),
    )
    alignment = GeneAlignment(query_species, reference_species, len(names), int(columns.size), n_duplicates, how)
    return aligned, alignment


def _translate(names: list[str], source: str, target: str, target_id_type: str) -> tuple[list[str | None], str]:
    """Each query name in the reference's species and kind of identifier (``None``: no partner)."""
    if source == target:
        if source == "human" and detect_id_type(names) != target_id_type:
            mapping = symbols_to_ensembl(names) if target_id_type == "ensembl" else ensembl_to_symbols(names)
            return list(mapping.target), mapping.description
        return list(names), "name"
    if detect_id_type(names) == "ensembl":
        raise ValueError("cross-species alignment needs gene symbols; pass the var column of symbols as gene_key")
    to_target, recase = (mouse_to_human, str.capitalize) if source == "mouse" else (human_to_mouse, str.upper)
    direct = to_target(names).target
    recased = to_target([recase(name) for name in names]).target
    targets = [d if d is not None else r for d, r in zip(direct, recased, strict=True)]
    if target_id_type == "ensembl":
        targets = list(symbols_to_ensembl([t or "" for t in targets]).target) if target == "human" else targets
    return targets, f"one-to-one {source} -> {target} orthologs"
