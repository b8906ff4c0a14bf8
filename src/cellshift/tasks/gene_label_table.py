"""Gene labels for gene classification: read a table, map its identifiers, merge duplicates, check the classes.

A labels table has one row per gene with columns ``gene`` (human Ensembl IDs or symbols; which
one is detected by :func:`cellshift.data.detect_id_type`) and ``label`` (exactly two classes).
Each gene gets both names, so that embeddings keyed by either can be looked up:

- Ensembl IDs lose their version and take their GENCODE v44 symbol
  (:func:`cellshift.data.ensembl_to_symbols`), or the table's own ``symbol`` column where GENCODE
  has none;
- symbols take their Ensembl ID (:func:`cellshift.data.symbols_to_ensembl`: GENCODE v44, then
  HGNC aliases).

Nothing disappears silently: a gene without both names is *unknown* (listed and left out), rows
of one gene (same Ensembl ID) with the same label are merged and counted, and rows of one gene
with different labels are an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cellshift.data import detect_id_type, ensembl_to_symbols, symbols_to_ensembl
from cellshift.data.genes import HUMAN_ENSEMBL, strip_version
from cellshift.datasets import dosage_sensitive_tfs

MIN_GENES_PER_CLASS = 5


@dataclass(frozen=True)
class GeneLabels:
    """Labelled genes ready for classification.

    Attributes
    ----------
    table
        One row per distinct gene, sorted by Ensembl ID: ``gene`` (Ensembl ID), ``symbol``, ``label``.
    positive
        The label scored as the positive class (probabilities, AUROC, AUPRC).
    n_duplicates
        Input rows merged into an earlier row of the same gene and label.
    unknown
        Input identifiers that are not a known human gene, left out.
    """

    table: pd.DataFrame
    positive: str
    n_duplicates: int
    unknown: tuple[str, ...]

    def summary(self) -> str:
        """One line: genes per class, merged duplicates and unknown genes."""
        counts = self.table["label"].value_counts()
        classes = ", ".join(f"{count} {label}" for label, count in counts.items())
        return (
            f"{len(self.table)} labelled genes ({classes}; positive class {self.positive!r}), "
            f"{self.n_duplicates} duplicate rows merged, {len(self.unknown)} unknown genes left out"
        )


def gene_labels(source: str | os.PathLike | pd.DataFrame | None = None, *, positive: str | None = None) -> GeneLabels:
    """Read and check the labels of a gene classification task.

    Parameters
    ----------
    source
        A CSV file or a DataFrame with columns ``gene`` and ``label`` (and optionally ``symbol``,
        used for Ensembl IDs that GENCODE v44 does not name); ``None``: the bundled dosage-sensitive
        transcription factors (:func:`cellshift.datasets.dosage_sensitive_tfs`).
    positive
        The label of the positive class; ``None``: the smaller class (the first in sorted order on
        a tie), ``sensitive`` for the bundled set.

    Returns
    -------
    GeneLabels
        The genes with both names and their label, and what was merged or left out.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The table is empty or lacks a column, has rows without a gene or label, gives one gene
        different labels, has no known gene, does not have exactly two classes, has a class of
        fewer than 5 genes, or ``positive`` is not one of its labels.
    """
    given = _read(source)
    named = _with_both_names(given)
    key = named["gene"].where(named["gene"].notna(), named["given"])
    _refuse_conflicts(named.assign(key=key))
    merged = named.loc[~key.duplicated()]
    known = merged["gene"].notna() & merged["symbol"].notna()
    unknown = tuple(merged.loc[~known, "given"])
    if not known.any():
        examples = ", ".join(unknown[:5])
        raise ValueError(f"none of the {len(unknown)} labelled genes is a known human gene (e.g. {examples})")
    table = merged.loc[known, ["gene", "symbol", "label"]].sort_values("gene").reset_index(drop=True)
    return GeneLabels(table, _positive_class(table["label"], positive), len(named) - len(merged), unknown)


def _read(source: str | os.PathLike | pd.DataFrame | None) -> pd.DataFrame:
    """The ``gene``, ``label`` (and ``symbol``) columns as stripped strings."""
    if source is None:
        table, where = dosage_sensitive_tfs(), "the bundled dosage-sensitive TFs"
    elif isinstance(source, pd.DataFrame):
        table, where = source, "the labels table"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"labels file {path} does not exist")
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            raise ValueError(f"labels file {path} is empty; it needs the columns gene,label") from None
        where = f"labels file {path}"
    missing = [column for column in ("gene", "label") if column not in table.columns]
    if missing:
        raise ValueError(f"{where} lacks the column(s) {', '.join(missing)}; it needs gene,label (found {list(table)})")
    if table.empty:
        raise ValueError(f"{where} has no rows")
    columns = [c for c in ("gene", "symbol", "label") if c in table.columns]
    text = table[columns].astype("string").apply(lambda column: column.str.strip()).replace("", pd.NA)
    incomplete = text[["gene", "label"]].isna().any(axis=1)
    if incomplete.any():
        rows = ", ".join(str(i) for i in text.index[incomplete][:5])
        raise ValueError(f"{where}: {incomplete.sum()} row(s) lack a gene or a label (rows {rows})")
    return text


def _with_both_names(given: pd.DataFrame) -> pd.DataFrame:
    """Columns ``given``, ``gene`` (Ensembl ID or None), ``symbol`` (or None), ``label``, in input order."""
    names = given["gene"].tolist()
    if detect_id_type(names) == "ensembl":
        ids = [strip_version(name) if HUMAN_ENSEMBL.match(name) else None for name in names]
        gencode_symbols = ensembl_to_symbols(names).target
        own_symbols = given["symbol"].tolist() if "symbol" in given.columns else [pd.NA] * len(names)
        symbols = []
        for gene_id, gencode, own in zip(ids, gencode_symbols, own_symbols, strict=True):
            if gene_id is None or (gencode is None and pd.isna(own)):
                symbols.append(None)
            else:
                symbols.append(gencode if gencode is not None else own)
    else:
        ids, symbols = list(symbols_to_ensembl(names).target), names
    return pd.DataFrame(
        {"given": names, "gene": ids, "symbol": symbols, "label": given["label"].tolist()}, dtype=object
    ).reset_index(drop=True)


def _refuse_conflicts(named: pd.DataFrame) -> None:
    """Raise when rows of one gene (same ``key``) carry different labels."""
    n_labels = named.groupby("key")["label"].nunique()
    conflicting = n_labels.index[n_labels > 1]
    if len(conflicting):
        rows = named.loc[named["key"].isin(conflicting[:5])]
        examples = "; ".join(
            f"{'/'.join(dict.fromkeys(group['given']))}: {', '.join(sorted(set(group['label'])))}"
            for _, group in rows.groupby("key", sort=False)
        )
        raise ValueError(f"{len(conflicting)} gene(s) have conflicting labels ({examples}); give each gene one label")


def _positive_class(labels: pd.Series, positive: str | None) -> str:
    """Check there are two classes of at least :data:`MIN_GENES_PER_CLASS` genes; return the positive one."""
    counts = labels.value_counts().sort_index()
    described = ", ".join(f"{label!r}: {count}" for label, count in counts.items())
    if len(counts) != 2:
        raise ValueError(f"gene classification needs exactly two classes of labels, found {len(counts)} ({described})")
    if counts.min() < MIN_GENES_PER_CLASS:
        raise ValueError(f"each class needs at least {MIN_GENES_PER_CLASS} known genes, found {described}")
    if positive is None:
        return str(counts.sort_values(kind="stable").index[0])
    if positive not in counts.index:
        raise ValueError(f"positive class {positive!r} is not a label; the labels are {', '.join(counts.index)}")
    return positive
