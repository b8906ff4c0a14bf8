"""Prior-knowledge gene tables fitted to a model's vocabulary (the rows of its frozen prior matrices)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellshift.data.gene_table import GeneTable
from cellshift.priors.vocabulary import vocabulary_rows


def align_prior(frame: pd.DataFrame, table: GeneTable) -> np.ndarray:
    """Rows of a genes x dim prior table in vocabulary order; tokens without a row get zeros.

    The table may be indexed by human Ensembl IDs, human symbols or mouse symbols (mapped by
    :func:`cellshift.priors.vocabulary.vocabulary_rows`); a gene listed twice keeps its first row.
    In a joint human + mouse vocabulary a mouse token takes the row of its one-to-one human
    ortholog (GeneCompass's homolog map), zeros without one.
    """
    matrix = np.zeros((len(table), frame.shape[1]), dtype=np.float32)
    rows, positions = vocabulary_rows(frame.index, table)
    if not len(rows):
        raise ValueError(
            f"no gene of the prior table (e.g. {list(frame.index[:3])}) is in the vocabulary "
            f"(e.g. {list(table.tokens[4:7])}); index the table by gene symbols or Ensembl IDs"
        )
    matrix[positions] = frame.to_numpy(np.float32)[rows]
    return matrix
