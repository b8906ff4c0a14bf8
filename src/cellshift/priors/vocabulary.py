"""Which vocabulary token each row of a prior table belongs to, and how much of a vocabulary a prior covers.

A prior table may be indexed by human Ensembl IDs, human symbols or mouse symbols: the names are
mapped by :func:`cellshift.data.resolve_to_human_ensembl` (mouse through one-to-one orthologs) and
looked up in the gene table; a token claimed by two rows keeps the first. The model fills its
frozen prior matrices with these rows (:func:`cellshift.models.priors.align_prior`), so the
coverage reported here is exactly what the model gets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cellshift.data import resolve_to_human_ensembl
from cellshift.data.gene_table import SPECIAL_TOKENS, GeneTable


def vocabulary_rows(genes: Sequence[str], table: GeneTable) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a prior table that have a vocabulary token, and those tokens' IDs.

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
    rows, positions, taken = [], [], set()
    for row, gene in enumerate(mapping.target):
        position = table.token_id(gene) if gene is not None else None
        if position is not None and position not in taken:
            rows.append(row)
            positions.append(position)
            taken.add(position)
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
