"""Options and helpers shared by several sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad


def comma_list(text: str) -> list[str]:
    """Parse ``a,b,c`` into ``["a", "b", "c"]`` (empty items dropped)."""
    return [item for item in text.split(",") if item]


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
        type=int,
        default=500,
        help="drop cells expressing fewer genes (default 500, as Zhao et al. 2025; lower it for small panels)",
    )
    parser.add_argument("--chunk-size", type=int, default=2048, help="cells read and encoded at a time")
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
    parser.add_argument("--min-cells", type=int, default=20, help="groups with fewer cells are reported, not scored")
    parser.add_argument("--exclude", type=comma_list, default=[], help="labels neither scored nor used as controls")
    parser.add_argument("--out", required=True, help="CSV to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def read_counts(path: str, layer: str | None) -> ad.AnnData:
    """Read an .h5ad; with ``layer``, that layer's counts become ``X``; unreadable files get one clear error."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    try:
        adata = ad.read_h5ad(path)
    except OSError as error:
        raise ValueError(f"cannot read {path} as .h5ad (is it an AnnData file, complete?): {error}") from None
    if layer is not None:
        if layer not in adata.layers:
            raise KeyError(f"{path} has no layer {layer!r}; layers: {list(adata.layers)}")
        adata.X = adata.layers[layer]
    return adata
