"""Genes x dimensions tables: how every prior vector table is shaped (float64, columns ``dim0..``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def vector_frame(values: np.ndarray, index: Sequence[str]) -> pd.DataFrame:
    """A float64 table with string index ``index`` and columns ``dim0, dim1, ...``."""
    values = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(values, index=pd.Index(index, dtype=str), columns=[f"dim{k}" for k in range(values.shape[1])])


def informative_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Drop rows that are zero up to rounding: they say nothing about the gene."""
    norms = np.linalg.norm(table.to_numpy(), axis=1)
    return table.loc[norms > 1e-10 * max(norms.max(initial=0.0), 1.0)]
