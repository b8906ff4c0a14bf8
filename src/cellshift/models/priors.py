"""Prior-knowledge gene tables fitted to a model's vocabulary (the rows of its frozen prior matrices)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellshift.data import resolve_to_human_ensembl
from cellshift.data.gene_table import GeneTable
from cellshift.data.vocabulary import human_keys


def align_prior(frame: pd.DataFrame, table: GeneTable) -> np.ndarray:
    """Rows of a genes x dim prior table in vocabulary order; tokens without a row get zeros.

    The table may be indexed by human Ensembl IDs, human symbols or mouse symbols (mapped through
    :func:`cellshift.data.resolve_to_human_ensembl`); a gene listed twice keeps its first row. In a
    joint human + mouse vocabulary a mouse token takes the row of its one-to-one human ortholog
    (:func:`cellshift.data.vocabulary.human_keys`, GeneCompass's homolog map), zeros without one.
    """
    mapping, _ = resolve_to_human_ensembl(list(frame.index))
    row_of: dict[str, int] = {}
    for row, gene in enumerate(mapping.target):
        if gene is not None:
            row_of.setdefault(gene, row)
    pairs = [(position, row_of[key]) for position, key in enumerate(human_keys(table.tokens)) if key in row_of]
    if not pairs:
        raise ValueError(
            f"no gene of the prior table (e.g. {list(frame.index[:3])}) is in the vocabulary "
            f"(e.g. {list(table.tokens[4:7])}); index the table by gene symbols or Ensembl IDs"
        )
    positions, rows = (list(column) for column in zip(*pairs, strict=True))
    matrix = np.zeros((len(table), frame.shape[1]), dtype=np.float32)
    matrix[positions] = frame.to_numpy(np.float32)[rows]
    return matrix
