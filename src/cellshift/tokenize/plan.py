"""Which input gene goes to which vocabulary column: the per-input plan of a tokenising run.

An input of one species has one :class:`GenePlan`; an input mixing species (an obs column names
each cell's species) has one per species, and each cell is encoded with its species' plan
(:class:`InputGenes`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from cellshift.data.gene_table import GeneTable
from cellshift.data.genes import SPECIES, GeneMapping
from cellshift.data.vocabulary import vocabulary_keys

UNKNOWN_GENE_WARNING_FRACTION = 0.25


@dataclass(frozen=True)
class GenePlan:
    """How the genes of one input become token columns.

    Input gene i goes to column ``column_of_input[i]`` (-1: dropped); column j is the vocabulary
    key ``column_genes[j]`` (a human Ensembl ID, or a mouse token in the joint vocabulary), token
    ``token_ids[j]`` with median ``medians[j]``.
    """

    species: str
    mapping: GeneMapping
    column_of_input: np.ndarray
    column_genes: tuple[str, ...]
    token_ids: np.ndarray
    medians: np.ndarray

    @property
    def shares_columns(self) -> bool:
        """Whether several input genes go to one column (their counts are summed)."""
        return int((self.column_of_input >= 0).sum()) > len(self.column_genes)

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
        if self.shares_columns:
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
    vocabulary: str | None = None,
    source: str = "input",
) -> GenePlan:
    """Map input genes to vocabulary keys and, when a table is given, to its tokens.

    Without a table (computing medians), every mapped key becomes a column.

    Parameters
    ----------
    gene_names
        The input's gene identifiers (Ensembl IDs or symbols).
    table
        The gene table, or ``None`` to make a column of every key.
    species
        ``human`` or ``mouse``; detected from the genes when ``None``.
    vocabulary
        ``ortholog`` or ``joint`` (:mod:`cellshift.data.vocabulary`); ``None``: the table's
        vocabulary (``ortholog`` without a table).
    source
        The input's name, for messages.

    Raises
    ------
    ValueError
        When no input gene is in the vocabulary.
    """
    if vocabulary is None:
        vocabulary = table.vocabulary if table is not None else "ortholog"
    mapping, species = vocabulary_keys(gene_names, species=species, vocabulary=vocabulary)
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
            f"{unknown} of {len(gene_names)} genes of {source} ({species}) are not in gene table {table.name} "
            f"({mapping.n_unmapped} have no key in the {vocabulary} vocabulary ({mapping.description}), e.g. "
            f"{mapping.unmapped[:5]}); their counts still count toward each cell's total",
            UserWarning,
            stacklevel=2,
        )
    return plan


@dataclass(frozen=True)
class InputGenes:
    """The gene plans of one input: one per species present, and where each cell's species is.

    Attributes
    ----------
    plans
        ``{species: plan}``.
    species_key
        The obs column naming each cell's species; ``None`` when every cell is of the one species
        of ``plans``.
    """

    plans: dict[str, GenePlan]
    species_key: str | None = None

    def species_of(self, obs: pd.DataFrame, start: int, stop: int) -> np.ndarray:
        """The species of cells ``start:stop`` (strings)."""
        if self.species_key is None:
            return np.full(stop - start, next(iter(self.plans)), dtype=object)
        return obs[self.species_key].iloc[start:stop].astype(str).to_numpy(dtype=object)

    def report(self) -> dict:
        """Gene counts for the corpus metadata: the plan's (one species) or ``{species: counts}`` per species."""
        if self.species_key is None:
            return next(iter(self.plans.values())).report()
        return {
            "species": ",".join(self.plans),
            "species_key": self.species_key,
            "by_species": {name: plan.report() for name, plan in self.plans.items()},
        }


def plan_input(
    gene_names: Sequence[str],
    obs: pd.DataFrame,
    table: GeneTable | None,
    *,
    species: str | None = None,
    species_key: str | None = None,
    vocabulary: str | None = None,
    source: str = "input",
) -> InputGenes:
    """The gene plans of one input: one species (given or detected), or each cell's from ``obs[species_key]``.

    Raises
    ------
    ValueError
        When both ``species`` and ``species_key`` are given, or a cell's species is neither human
        nor mouse.
    KeyError
        When ``species_key`` is not an obs column.
    """
    if species_key is None:
        plan = plan_genes(gene_names, table, species=species, vocabulary=vocabulary, source=source)
        return InputGenes({plan.species: plan})
    if species is not None:
        raise ValueError(f"give either species ({species!r}) or species_key ({species_key!r}), not both")
    if species_key not in obs.columns:
        raise KeyError(
            f"species key {species_key!r} is not an obs column of {source}; obs columns: {list(obs.columns)}"
        )
    present = set(obs[species_key].astype(str))
    unknown = sorted(present - set(SPECIES))
    if unknown:
        raise ValueError(
            f"obs[{species_key!r}] of {source} holds {unknown[:5]}; each cell's species must be one of {SPECIES}"
        )
    plans = {
        name: plan_genes(gene_names, table, species=name, vocabulary=vocabulary, source=source)
        for name in SPECIES
        if name in present
    }
    return InputGenes(plans, species_key)
