"""Options and helpers shared by several sub-commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from cellshift._io import check_writable
from cellshift._validate import GROUP_CELLS, NON_NEGATIVE_INT, POSITIVE_INT
from cellshift.data.checks import check_raw_counts

# What reading a file that is not a complete AnnData raises (h5py, anndata, zarr).
UNREADABLE = (OSError, KeyError, ValueError, TypeError)


def comma_list(text: str) -> list[str]:
    """Parse ``a,b,c`` into ``["a", "b", "c"]`` (empty items dropped)."""
    return [item for item in text.split(",") if item]


def positive_int_list(text: str) -> list[int]:
    """Parse ``3,5,10`` into ``[3, 5, 10]``, refusing anything but integers >= 1."""
    numbers = [POSITIVE_INT.parse(item) for item in comma_list(text)]
    if not numbers:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, e.g. 3,5,10; got {text!r}")
    return numbers


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """Inputs and reading options of the corpus commands (tokenize, medians)."""
    parser.add_argument("inputs", nargs="+", help="raw-count .h5ad files")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    parser.add_argument("--gene-key", default=None, help="var column with gene IDs or symbols (default: var index)")
    parser.add_argument("--species", choices=["human", "mouse"], default=None, help="default: detected from gene IDs")
    parser.add_argument(
        "--species-key", default=None, help="obs column with each cell's species (human/mouse), for mixed inputs"
    )
    parser.add_argument(
        "--min-genes",
        type=NON_NEGATIVE_INT.parse,
        default=500,
        help="drop cells expressing fewer genes (default 500, as Zhao et al. 2025; lower it for small panels)",
    )
    parser.add_argument("--chunk-size", type=POSITIVE_INT.parse, default=2048, help="cells read and encoded at a time")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def workers_option(text: str) -> int | str:
    """``--workers``: a positive number of processes, or ``auto``."""
    if text == "auto":
        return text
    try:
        workers = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of workers or 'auto', got {text!r}") from None
    if workers < 1:
        raise argparse.ArgumentTypeError(f"workers must be >= 1, got {workers}")
    return workers


def add_parallel_options(parser: argparse.ArgumentParser) -> None:
    """Where the corpus commands (tokenize, medians) run their tasks."""
    parser.add_argument(
        "--workers", type=workers_option, default=1, help="processes (or Ray actors), or 'auto': one per 50k cells"
    )
    parser.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local processes, or a Ray pool (files and --out on a filesystem all Ray nodes see)",
    )


def add_screen_options(parser: argparse.ArgumentParser) -> None:
    """Input, labels and output options of the screen commands (degs, score, ...)."""
    parser.add_argument("input", help="screen .h5ad with raw counts")
    parser.add_argument("--perturbation-key", required=True, help="obs column naming each cell's perturbation")
    parser.add_argument("--control", required=True, help="label of control cells, e.g. non-targeting")
    parser.add_argument(
        "--min-cells", type=GROUP_CELLS.parse, default=20, help="groups with fewer cells are reported, not scored"
    )
    parser.add_argument("--exclude", type=comma_list, default=[], help="labels neither scored nor used as controls")
    parser.add_argument("--out", required=True, help="CSV to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def read_h5ad(path: str, *, backed: bool = False) -> ad.AnnData:
    """Read an .h5ad input (backed: ``X`` stays on disk); a missing or unreadable file gets one clear error."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    try:
        return ad.read_h5ad(path, backed="r" if backed else None)
    except UNREADABLE as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"cannot read {path} as .h5ad (is it a complete AnnData file?): {reason}") from None


def check_counts(adata: ad.AnnData, path: str, layer: str | None) -> None:
    """Refuse a ``layer`` the file lacks, or an ``X`` (or that layer) that does not hold raw counts."""
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"{path} has no layer {layer!r}; layers: {list(adata.layers) or '(none)'}")
    counts = adata.X if layer is None else adata.layers[layer]
    values = counts.data if sparse.issparse(counts) else np.asarray(counts)
    where = f"X of {path}" if layer is None else f"layer {layer!r} of {path}"
    check_raw_counts(values, where=where, layers=list(adata.layers))


def read_screen(path: str, layer: str | None, *, counts: bool = True) -> ad.AnnData:
    """Read an .h5ad input as it is, after checking (when ``counts``) that ``X`` or ``layer`` holds raw counts."""
    adata = read_h5ad(path)
    if counts:
        check_counts(adata, path, layer)
    return adata


def read_counts(path: str, layer: str | None) -> ad.AnnData:
    """Read an .h5ad of raw counts, checked; with ``layer``, that layer's counts become ``X``."""
    adata = read_screen(path, layer)
    if layer is not None:
        adata.X = adata.layers[layer]
    return adata


def read_table(path: str, what: str, columns: Iterable[str] = ()) -> pd.DataFrame:
    """Read a CSV input (``what`` names it in errors, e.g. ``"--degs"``) that must have ``columns``."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a file")
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0]
        raise ValueError(f"cannot read {what} {path} as a CSV table: {reason}") from None
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise KeyError(f"{what} {path} lacks column(s) {missing}; it has {list(table.columns)}")
    return table


def check_outputs(paths: Iterable[str | Path], overwrite: bool, option: str = "--out") -> None:
    """Check, before any work, that every output path can be written (:func:`cellshift._io.check_writable`)."""
    for path in paths:
        check_writable(path, overwrite, option=option)
