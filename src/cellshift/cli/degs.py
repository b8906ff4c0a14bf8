"""``cellshift degs``: DEGs and on-target knock-down of each perturbation vs control."""

from __future__ import annotations

import argparse
from pathlib import Path

from cellshift._io import write_csv_atomic
from cellshift._validate import PROBABILITY
from cellshift.analysis import degs
from cellshift.analysis.screen_input import scored_rows
from cellshift.cli._common import add_screen_options, check_outputs, read_screen


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift degs``."""
    add_screen_options(parser)
    parser.add_argument("--method", choices=["wilcoxon", "anderson_darling"], default="wilcoxon")
    parser.add_argument("--fdr", type=PROBABILITY.parse, default=0.05, help="Benjamini-Hochberg FDR threshold")
    parser.add_argument("--target-gene-key", default=None, help="obs column with the target gene (default: label)")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift degs``."""
    out = Path(args.out)
    genes_out = out.with_name(f"{out.stem}.genes{out.suffix}")
    check_outputs([out, genes_out], args.overwrite)
    adata = read_screen(args.input, args.layer)
    summary, per_gene = degs(
        adata,
        perturbation_key=args.perturbation_key,
        control=args.control,
        method=args.method,
        fdr=args.fdr,
        target_gene_key=args.target_gene_key,
        layer=args.layer,
        min_cells=args.min_cells,
        exclude=args.exclude,
    )
    write_csv_atomic(summary, out, args.overwrite)
    write_csv_atomic(per_gene, genes_out, args.overwrite)
    tested = scored_rows(summary)
    print(
        f"{len(tested)} perturbations tested ({len(summary) - len(tested)} with too few cells, listed untested), "
        f"{(tested['n_degs'] == 0).sum()} with 0 DEGs: {out} (per gene: {genes_out})"
    )
    return 0
