"""The cells an in-silico experiment perturbs, tokenised for one model, and the genes it names.

Cells come from an AnnData of raw counts (tokenised in memory by
:func:`cellshift.models.inputs.encode_cells`, as for embedding) or from a tokenised corpus whose
gene table must be the model's. Either way they become a :class:`~cellshift.models.inputs.ModelCells`
(tokens, species, collator) beside their obs table, so every later step sees the same inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from cellshift.data import ensembl_to_symbols, resolve_to_human_ensembl
from cellshift.models import CellshiftModel
from cellshift.models.inputs import CellCollator, ModelCells, encode_cells
from cellshift.tokenize.corpus import Corpus
from cellshift.tokenize.rank import EncodedCells

CORPUS_TOKEN_COLUMNS = ("input_ids", "values", "length")


@dataclass(frozen=True)
class CellSource:
    """Tokenised cells and what is known about them.

    Attributes
    ----------
    cells
        The cells as the model reads them (tokens already cut to the model's input size).
    obs
        One row per cell, in the same order (cell annotations for ``key=value`` selections).
    """

    cells: ModelCells
    obs: pd.DataFrame

    def cell_tokens(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Tokens and values of cell ``i`` within the model's input size."""
        return self.within_limit(*self.cells.tokens.cell(i))

    def within_limit(self, ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A sequence cut to the model's input size, as :class:`~cellshift.models.inputs.CellCollator` cuts it.

        The first (highest-ranked) tokens are kept; with ``<cls>``/``<eos>`` the ``<eos>`` stays last.
        """
        limit = self.cells.collate.max_tokens
        if len(ids) <= limit:
            return ids, values
        if self.cells.collate.keeps_eos:
            return np.concatenate([ids[: limit - 1], ids[-1:]]), np.concatenate([values[: limit - 1], values[-1:]])
        return ids[:limit], values[:limit]


def load_cells(data: ad.AnnData | str | os.PathLike, model: CellshiftModel) -> CellSource:
    """Tokenise an AnnData for ``model`` or open a corpus tokenised with the model's gene table.

    Parameters
    ----------
    data
        Raw-count cells, or the directory of a corpus (``cellshift tokenize``).
    model
        The model, with its gene table.

    Returns
    -------
    CellSource
        The cells and their obs (a corpus's extra columns, e.g. those of ``--obs-keys``).
    """
    if isinstance(data, ad.AnnData):
        return CellSource(encode_cells(data, model), data.obs.copy())
    corpus = Corpus.open(data)
    corpus_tokens = corpus.gene_table().tokens
    if tuple(corpus_tokens) != tuple(model.gene_table.tokens):
        raise ValueError(
            f"corpus {data} was tokenised with gene table {corpus.metadata['gene_table']['name']!r} "
            f"({len(corpus_tokens)} tokens) but the model's vocabulary is {model.gene_table.name!r} "
            f"({len(model.gene_table)} tokens); tokenise the cells with the model's gene table"
        )
    dataset = corpus.dataset()
    species = sorted(set(dataset["species"]))
    if len(species) != 1:
        raise ValueError(f"corpus {data} mixes species {species}; perturb one species at a time")
    lengths = np.asarray(dataset["length"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = EncodedCells(
        np.concatenate(dataset["input_ids"]).astype(np.int32),
        np.concatenate(dataset["values"]).astype(np.float32),
        offsets,
    )
    obs = dataset.remove_columns([c for c in CORPUS_TOKEN_COLUMNS if c in dataset.column_names]).to_pandas()
    obs.index = obs.pop("cell_id").astype(str) if "cell_id" in obs else obs.index.astype(str)
    return CellSource(ModelCells(tokens, species[0], CellCollator(model.config)), obs)


def parse_state(text: str) -> tuple[str, str]:
    """``"key=value"`` -> ``(key, value)``; refuses anything else with a message naming the format."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise ValueError(f"a cell state is written obs_key=value (e.g. cluster_id=B cells), got {text!r}")
    return key, value


def select_cells(obs: pd.DataFrame, state: str | None, *, what: str = "--cells") -> np.ndarray:
    """Row positions of the cells whose ``obs[key] == value``; every cell for ``None``.

    Raises
    ------
    KeyError
        The obs column does not exist.
    ValueError
        No cell is in the state.
    """
    if state is None:
        return np.arange(len(obs))
    key, value = parse_state(state)
    if key not in obs:
        raise KeyError(f"{what} {state!r}: no obs column {key!r}; columns: {list(obs.columns)}")
    chosen = np.flatnonzero(obs[key].astype(str).to_numpy() == value)
    if len(chosen) == 0:
        examples = list(pd.unique(obs[key].astype(str)))[:8]
        raise ValueError(f"{what} {state!r}: no cell has {key} = {value!r}; values include {examples}")
    return chosen


def resolve_genes(genes: list[str], model: CellshiftModel, species: str) -> tuple[dict[str, int], pd.DataFrame]:
    """Token IDs of the named genes (symbols or Ensembl IDs) in the model's vocabulary.

    Parameters
    ----------
    genes
        Gene names as the user wrote them; a vocabulary token (human Ensembl ID) is taken as it is.
    model
        The model whose gene table holds the vocabulary (human Ensembl IDs).
    species
        Species of symbols (mouse symbols go through one-to-one orthologs).

    Returns
    -------
    found : dict
        Gene name -> token ID, in the order given (duplicates dropped).
    skipped : pandas.DataFrame
        ``gene, reason`` for the names that map to no vocabulary token.
    """
    names = list(dict.fromkeys(map(str, genes)))
    table = model.gene_table
    direct = {name: table.token_id(name) for name in names if table.token_id(name) is not None}
    others = [name for name in names if name not in direct]
    mapped, skipped = {}, []
    if others:
        mapping, _ = resolve_to_human_ensembl(others, species=species)
        for name, ensembl in zip(mapping.source, mapping.target, strict=True):
            token = table.token_id(ensembl) if ensembl is not None else None
            if token is None:
                reason = "unknown gene name" if ensembl is None else "not in the model's vocabulary"
                skipped.append({"gene": name, "reason": reason})
            else:
                mapped[name] = token
    found = {name: direct.get(name, mapped.get(name)) for name in names if name in direct or name in mapped}
    return found, pd.DataFrame(skipped, columns=["gene", "reason"])


def token_symbols(model: CellshiftModel, token_ids: np.ndarray) -> list[str]:
    """Human symbol of each token (its Ensembl ID when no symbol is known)."""
    ensembl = [model.gene_table.tokens[int(t)] for t in token_ids]
    symbols = ensembl_to_symbols(ensembl).target
    return [s if s is not None else e for s, e in zip(symbols, ensembl, strict=True)]
