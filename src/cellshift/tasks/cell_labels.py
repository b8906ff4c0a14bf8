"""Cell labels for annotation: checked before any work, optionally renamed by a label map."""

from __future__ import annotations

import os

import anndata as ad
import pandas as pd

MIN_CELLS_PER_CLASS = 5


def reference_labels(adata: ad.AnnData, label_key: str, *, min_per_class: int = MIN_CELLS_PER_CLASS) -> pd.Series:
    """The labels of a reference AnnData as strings, checked for training.

    Parameters
    ----------
    adata
        Labelled reference cells.
    label_key
        ``obs`` column of the labels.
    min_per_class
        Fewest cells a class needs (a classifier cannot learn, or be cross-validated on, fewer).

    Returns
    -------
    pandas.Series
        Labels indexed by cell name.

    Raises
    ------
    KeyError
        When ``label_key`` is not an ``obs`` column.
    ValueError
        When labels are missing for some cells, there is only one class, or a class is too small.
    """
    labels = _label_column(adata, label_key, "reference")
    missing = int(labels.isna().sum())
    if missing:
        raise ValueError(
            f"{missing} reference cells have no label in obs[{label_key!r}]; "
            "drop them (adata[adata.obs[key].notna()]) or label them"
        )
    labels = labels.astype(str)
    counts = labels.value_counts()
    if len(counts) < 2:
        raise ValueError(f"obs[{label_key!r}] holds one class ({counts.index[0]!r}); annotation needs at least two")
    small = counts[counts < min_per_class]
    if len(small):
        raise ValueError(
            f"classes with fewer than {min_per_class} reference cells cannot be learned: "
            f"{dict(small)}; merge them (--label-map) or drop those cells"
        )
    return labels


def query_labels(adata: ad.AnnData, label_key: str | None) -> pd.Series | None:
    """The query's true labels as strings (NaN where unlabelled), or ``None`` when it has none."""
    if label_key is None or label_key not in adata.obs:
        return None
    labels = adata.obs[label_key]
    return labels.where(labels.isna(), labels.astype(str))


def read_label_map(path: str | os.PathLike) -> dict[str, str]:
    """Read a two-column CSV (``label, mapped``; header optional) mapping label names to shared names.

    Used to compare labels named differently in two data sets, e.g. ``CD4 T cells -> T``.
    """
    table = pd.read_csv(path, header=None, dtype=str)
    if table.shape[1] != 2:
        raise ValueError(f"label map {path} must have two columns (label, mapped), found {table.shape[1]}")
    if list(table.iloc[0]) == ["label", "mapped"]:
        table = table.iloc[1:]
    duplicated = table[0][table[0].duplicated()].unique()
    if len(duplicated):
        raise ValueError(f"label map {path} maps these labels twice: {list(duplicated)}")
    return dict(zip(table[0].str.strip(), table[1].str.strip(), strict=True))


def apply_label_map(labels: pd.Series | None, label_map: dict[str, str] | None) -> pd.Series | None:
    """Rename labels found in ``label_map``; other labels keep their name."""
    if labels is None or not label_map:
        return labels
    return labels.map(lambda label: label_map.get(label, label) if isinstance(label, str) else label)


def _label_column(adata: ad.AnnData, label_key: str, which: str) -> pd.Series:
    if label_key not in adata.obs:
        raise KeyError(f"the {which} has no obs column {label_key!r}; columns: {list(adata.obs.columns)}")
    labels = adata.obs[label_key]
    if labels.isna().all():
        raise ValueError(f"obs[{label_key!r}] of the {which} holds no labels (all missing)")
    return labels
