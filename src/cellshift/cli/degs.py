"""``cellshift degs``: DEGs and on-target knock-down of each perturbation vs control."""

from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad

from cellshift._io import check_writable, write_csv_atomic
from cellshift.analysis import degs
from cellshift.cli._common import add_screen_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift degs``."""
    add_screen_options(parser)
    parser.add_argument("--method", choices=["wilcoxon", "anderson_darling"], default="wilcoxon")
    parser.add_argument("--fdr", type=float, default=0.05, help="Benjamini-Hochberg FDR threshold")
    parser.add_argument("--target-gene-key", default=None, help="obs column with the target gene (default: label)")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift degs``."""
    adata = ad.read_h5ad(args.input)
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
    out = Path(args.out)
    genes_out = out.with_name(f"{out.stem}.genes{out.suffix}")
    check_writable(genes_out, args.overwrite)
    write_csv_atomic(summary, out, args.overwrite)
    write_csv_atomic(per_gene, genes_out, args.overwrite)
    print(f"{len(summary)} perturbations, {(summary['n_degs'] == 0).sum()} with 0 DEGs: {out} (per gene: {genes_out})")
    return 0
