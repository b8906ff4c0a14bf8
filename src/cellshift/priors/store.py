r"""A priors directory on disk: one gzipped TSV per source plus ``manifest.json``.

Layout::

    PRIORS_DIR/
      grn.tsv.gz            gene<TAB>dim0<TAB>dim1 ...   one row per gene (human Ensembl ID, sorted),
      family.tsv.gz         values written with 6 significant digits
      coexpression.tsv.gz
      promoter.tsv.gz
      manifest.json         settings, inputs (file names and SHA-256), per source: file, SHA-256,
                            genes, dimension, method and what the graph held

The tables open in any spreadsheet or ``pandas.read_csv(path, sep="\\t", index_col=0)``, and each
one also works as ``cellshift pretrain --priors NAME=PATH``. The gzip stream carries no time or
file name, so a build gives the same bytes, and the same manifest hash, every time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellshift._io import atomic_path
from cellshift.priors._genes import file_sha256

MANIFEST = "manifest.json"
FORMAT = "cellshift-priors"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PriorSet:
    """The prior tables of a priors directory and its manifest.

    Attributes
    ----------
    path
        The directory.
    manifest
        The parsed ``manifest.json``.
    sha256
        SHA-256 of ``manifest.json`` (it holds every table's hash, so it identifies the whole set).
    tables
        ``{source: genes x dim}`` float64 tables indexed by human Ensembl ID.
    """

    path: Path
    manifest: dict
    sha256: str
    tables: dict[str, pd.DataFrame]


def check_prior_table(frame: pd.DataFrame, name: str) -> None:
    """Raise a one-line ``ValueError`` for a table no model can use: empty, duplicate genes, NaN rows.

    Parameters
    ----------
    frame
        Genes x dim table.
    name
        The source's name, for the message.
    """
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"prior {name!r} is empty ({frame.shape[0]} genes x {frame.shape[1]} dimensions)")
    duplicated = frame.index[frame.index.duplicated()]
    if len(duplicated):
        raise ValueError(f"prior {name!r} lists {len(duplicated)} genes twice (e.g. {list(duplicated[:3])})")
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(
            f"prior {name!r} has {int(bad.sum())} rows with NaN, infinite or non-numeric values "
            f"(e.g. {list(frame.index[bad][:3])}); remove or fill them"
        )


def write_prior_table(frame: pd.DataFrame, path: str | os.PathLike) -> str:
    """Write a genes x dim table as a reproducible gzipped TSV (see the module docstring); return its SHA-256."""
    table = frame.astype(np.float32).sort_index()
    table.index.name = "gene"
    data = gzip.compress(table.to_csv(sep="\t", float_format="%.6g").encode(), mtime=0)
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_prior_table(path: str | os.PathLike, name: str | None = None) -> pd.DataFrame:
    """Read a genes x dim table (CSV or TSV, optionally gzipped, genes in the first column) and check it.

    Parameters
    ----------
    path
        The table.
    name
        Source name for error messages (default: the file name).

    Returns
    -------
    pandas.DataFrame
        Float64 values indexed by the gene names (strings).
    """
    suffixes = Path(path).suffixes
    if ".tsv" in suffixes or ".csv" in suffixes:
        frame = pd.read_csv(path, sep="\t" if ".tsv" in suffixes else ",", index_col=0)
    else:
        frame = pd.read_csv(path, sep=None, engine="python", index_col=0)  # sniff the separator
    frame.index = frame.index.astype(str)
    check_prior_table(frame, name or Path(path).name)
    return frame.astype(np.float64)


def write_manifest(folder: Path, manifest: dict) -> str:
    """Write ``manifest.json`` (sorted keys, so equal content gives equal bytes); return its SHA-256."""
    text = json.dumps(manifest, indent=2, sort_keys=True)
    with atomic_path(folder / MANIFEST) as temporary:
        temporary.write_text(text + "\n")
    return file_sha256(folder / MANIFEST)


def is_priors_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory holding a priors ``manifest.json``."""
    return (Path(path) / MANIFEST).is_file()


def load_priors(path: str | os.PathLike) -> PriorSet:
    """Load a directory made by :func:`cellshift.priors.build_priors`, checking every table against the manifest.

    Parameters
    ----------
    path
        The priors directory.

    Returns
    -------
    PriorSet
        Tables, manifest and the manifest's SHA-256 (record it with a model:
        ``PretrainSettings(model_options={"prior_manifest": priors.sha256})``).
    """
    folder = Path(path)
    if not is_priors_dir(folder):
        raise FileNotFoundError(
            f"{folder} is not a priors directory (no {MANIFEST}); make one with `cellshift priors build`"
        )
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{folder / MANIFEST} is not a version-{FORMAT_VERSION} {FORMAT} manifest")
    tables = {}
    for name, source in sorted(manifest["sources"].items()):
        table_path = folder / source["file"]
        if not table_path.is_file():
            raise FileNotFoundError(f"priors directory {folder} is incomplete: {source['file']} is missing")
        if file_sha256(table_path) != source["sha256"]:
            raise ValueError(f"{table_path} differs from the one the manifest records (SHA-256); rebuild the priors")
        tables[name] = read_prior_table(table_path, name)
    return PriorSet(folder, manifest, file_sha256(folder / MANIFEST), tables)
