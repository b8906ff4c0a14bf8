"""Which vocabulary token each row of a prior table belongs to, and how much of a vocabulary a prior covers.

A prior table may be indexed by human Ensembl IDs, human symbols or mouse symbols: the names are
mapped by :func:`cellshift.data.resolve_to_human_ensembl` (mouse through one-to-one orthologs) and
looked up in the gene table, whose mouse tokens (joint vocabulary) read their human ortholog's
row; a gene listed twice keeps its first row. The model fills its
frozen prior matrices with these rows (:func:`cellshift.models.priors.align_prior`), so the
coverage reported here is exactly what the model gets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cellshift.data import resolve_to_human_ensembl
from cellshift.data.gene_table import SPECIAL_TOKENS, GeneTable
from cellshift.data.vocabulary import human_keys


def vocabulary_rows(genes: Sequence[str], table: GeneTable) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a prior table that have a vocabulary token, and those tokens' IDs.

    Every token is read as a human key (:func:`cellshift.data.vocabulary.human_keys`): a human
    token is its own Ensembl ID, and in a joint human + mouse vocabulary a mouse token is its
    one-to-one human ortholog's ID (GeneCompass's homolog map), so it takes that gene's row; a
    gene listed twice in the table keeps its first row.

    Parameters
    ----------
    genes
        The table's index (gene names).
    table
        The vocabulary.

    Returns
    -------
    rows, positions : numpy.ndarray
        ``table row rows[k]`` belongs to token ``positions[k]``; each token at most once.
    """
    mapping, _ = resolve_to_human_ensembl([str(g) for g in genes])
    row_of: dict[str, int] = {}
    for row, gene in enumerate(mapping.target):
        if gene is not None:
            row_of.setdefault(gene, row)
    pairs = [(row_of[key], position) for position, key in enumerate(human_keys(table.tokens)) if key in row_of]
    rows, positions = (list(column) for column in zip(*pairs, strict=True)) if pairs else ([], [])
    return np.asarray(rows, dtype=np.int64), np.asarray(positions, dtype=np.int64)


def vocabulary_coverage(priors: dict[str, pd.DataFrame], table: GeneTable) -> pd.DataFrame:
    """How many gene tokens of the vocabulary each prior gives a row.

    Parameters
    ----------
    priors
        ``{source: genes x dim table}``.
    table
        The vocabulary.

    Returns
    -------
    pandas.DataFrame
        One row per source: ``source``, ``genes_covered``, ``vocabulary_genes`` (tokens other
        than ``<pad>``, ``<mask>``, ``<cls>``, ``<eos>``), ``share``.
    """
    n_genes = sum(token not in SPECIAL_TOKENS for token in table.tokens)
    rows = []
    for name, frame in priors.items():
        covered = len(vocabulary_rows(frame.index, table)[0])
        rows.append(
            {"source": name, "genes_covered": covered, "vocabulary_genes": n_genes, "share": covered / max(n_genes, 1)}
        )
    return pd.DataFrame(rows, columns=["source", "genes_covered", "vocabulary_genes", "share"])
