"""Command-line interface: one sub-command per step, each a thin wrapper of the Python API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _comma_list(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="raw-count .h5ad files")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    parser.add_argument("--gene-key", default=None, help="var column with gene IDs or symbols (default: var index)")
    parser.add_argument("--species", choices=["human", "mouse"], default=None, help="default: detected from gene IDs")
    parser.add_argument(
        "--min-genes",
        type=int,
        default=500,
        help="drop cells expressing fewer genes (default 500, as Zhao et al. 2025; lower it for small panels)",
    )
    parser.add_argument("--chunk-size", type=int, default=2048, help="cells read and encoded at a time")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _tokenize(args: argparse.Namespace) -> int:
    from cellshift.tokenize import tokenize

    corpus = tokenize(
        args.inputs,
        args.out,
        gene_table=args.gene_table,
        max_length=args.max_length,
        special_tokens=args.special_tokens,
        obs_keys=args.obs_keys,
        layer=args.layer,
        gene_key=args.gene_key,
        species=args.species,
        min_genes=args.min_genes,
        workers=args.workers,
        chunk_size=args.chunk_size,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    meta = corpus.metadata
    print(f"wrote {meta['n_cells_kept']} cells ({meta['n_cells_dropped']} dropped) to {corpus.path}")
    for item in meta["inputs"]:
        print(
            f"  {item['source']}: {item['species']}, {item['kept']}/{item['cells']} cells kept, "
            f"dropped {item['dropped']}, {item['n_in_vocabulary']}/{item['n_input_genes']} genes in vocabulary"
        )
    return 0


def _medians(args: argparse.Namespace) -> int:
    from cellshift.data.gene_table import GeneTable
    from cellshift.tokenize import compute_gene_medians

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists; choose another --out or pass --overwrite")
    medians = compute_gene_medians(
        args.inputs,
        layer=args.layer,
        gene_key=args.gene_key,
        species=args.species,
        min_genes=args.min_genes,
        chunk_size=args.chunk_size,
        progress=not args.quiet,
    )
    table = GeneTable.from_medians(medians, name=str(out))
    table.save(out)
    print(f"wrote a gene table of {len(medians)} genes (+{len(table) - len(medians)} special tokens) to {out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cellshift.demo import run_demo

    run_demo(Path(args.out), workers=args.workers, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``cellshift`` argument parser."""
    parser = argparse.ArgumentParser(prog="cellshift", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    tokenize = commands.add_parser("tokenize", help="rank-value encode raw-count cells into an Arrow corpus")
    _add_input_options(tokenize)
    tokenize.add_argument("--out", required=True, help="corpus directory to create")
    tokenize.add_argument(
        "--gene-table",
        default="geneformer-gc30M",
        help="geneformer-gc30M, geneformer-gc95M or a TSV from `cellshift medians`",
    )
    tokenize.add_argument("--max-length", type=int, default=2048, help="tokens per cell, special tokens included")
    tokenize.add_argument("--special-tokens", action="store_true", help="add <cls> and <eos>")
    tokenize.add_argument("--obs-keys", type=_comma_list, default=[], help="obs columns to keep, comma-separated")
    tokenize.add_argument("--workers", type=int, default=1, help="encoding processes")
    tokenize.set_defaults(handler=_tokenize)

    medians = commands.add_parser("medians", help="non-zero gene medians of a corpus -> a gene table")
    _add_input_options(medians)
    medians.add_argument("--out", required=True, help="gene table to write (.tsv or .tsv.gz)")
    medians.set_defaults(handler=_medians)

    demo = commands.add_parser("demo", help="run the main job on the bundled real data")
    demo.add_argument("--out", default="results/demo", help="output directory")
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors in the input are printed as one line, without a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"cellshift {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
