"""Which input gene goes to which vocabulary column: the per-input plan of a tokenising run."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from cellshift.data.gene_table import GeneTable
from cellshift.data.genes import GeneMapping, resolve_to_human_ensembl

UNKNOWN_GENE_WARNING_FRACTION = 0.25


@dataclass(frozen=True)
class GenePlan:
    """How the genes of one input become token columns.

    Input gene i goes to column ``column_of_input[i]`` (-1: dropped); column j is the Ensembl ID
    ``column_genes[j]``, token ``token_ids[j]`` with median ``medians[j]``.
    """

    species: str
    mapping: GeneMapping
    column_of_input: np.ndarray
    column_genes: tuple[str, ...]
    token_ids: np.ndarray
    medians: np.ndarray

    def to_columns(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """Counts (cells x input genes) as cells x columns; input genes sharing a column are summed.

        When every input gene has a column of its own (common for data already in Ensembl IDs of
        the vocabulary), the counts are relabelled without copying or filtering.
        """
        column = self.column_of_input[counts.indices]
        shape = (counts.shape[0], len(self.column_genes))
        in_columns = self.column_of_input >= 0
        if in_columns.all() and len(self.column_genes) == len(self.column_of_input):
            return sparse.csr_matrix((counts.data, column, counts.indptr), shape=shape)
        keep = column >= 0
        kept_before = np.concatenate([[0], np.cumsum(keep)])
        result = sparse.csr_matrix((counts.data[keep], column[keep], kept_before[counts.indptr]), shape=shape)
        if in_columns.sum() > len(self.column_genes):  # several input genes share a column
            result.sum_duplicates()
        return result

    def report(self) -> dict:
        """Gene counts of the plan, for the corpus metadata."""
        mapped = [t for t in self.mapping.target if t is not None]
        in_columns = int((self.column_of_input >= 0).sum())
        return {
            "species": self.species,
            "mapping": self.mapping.description,
            "n_input_genes": len(self.mapping.source),
            "n_unmapped_ids": self.mapping.n_unmapped,
            "n_mapped_not_in_vocabulary": len(mapped) - in_columns,
            "n_in_vocabulary": in_columns,
            "n_columns": len(self.column_genes),
            "n_duplicates_summed": in_columns - len(self.column_genes),
        }


def plan_genes(
    gene_names: Sequence[str],
    table: GeneTable | None,
    *,
    species: str | None = None,
    source: str = "input",
) -> GenePlan:
    """Map input genes to human Ensembl IDs and, when a table is given, to its vocabulary.

    Without a table (computing medians), every mapped Ensembl ID becomes a column.

    Raises
    ------
    ValueError
        When no input gene is in the vocabulary.
    """
    mapping, species = resolve_to_human_ensembl(gene_names, species=species)
    mapped = sorted({t for t in mapping.target if t is not None})
    if table is None:
        columns = mapped
        token_ids = np.arange(len(columns), dtype=np.int64)
        medians = np.ones(len(columns))
    else:
        present = [(table.token_id(g), g) for g in mapped if table.token_id(g) is not None]
        present.sort()
        columns = [g for _, g in present]
        token_ids = np.array([i for i, _ in present], dtype=np.int64)
        medians = table.medians[token_ids] if len(token_ids) else np.ones(0)
    if not columns:
        raise ValueError(
            f"no gene of {source} is in the vocabulary of gene table {table.name if table else '-'}: "
            f"{mapping.summary()}; genes look like {list(gene_names[:3])}. Pass Ensembl IDs or "
            "symbols (gene_key= names a var column holding them) and the right species"
        )
    position = {gene: j for j, gene in enumerate(columns)}
    column_of_input = np.array([position.get(t, -1) if t is not None else -1 for t in mapping.target], dtype=np.int64)
    plan = GenePlan(species, mapping, column_of_input, tuple(columns), token_ids, medians)
    unknown = len(gene_names) - plan.report()["n_in_vocabulary"]
    if table is not None and unknown > UNKNOWN_GENE_WARNING_FRACTION * len(gene_names):
        warnings.warn(
            f"{unknown} of {len(gene_names)} genes of {source} are not in gene table {table.name} "
            f"({mapping.n_unmapped} have no {species} -> human Ensembl mapping, e.g. "
            f"{mapping.unmapped[:5]}); their counts still count toward each cell's total",
            UserWarning,
            stacklevel=2,
        )
    return plan
