"""``cellshift enrich``: gene-set enrichment among the top-ranked 0-DEG perturbations."""

from __future__ import annotations

import argparse

from cellshift._io import check_writable, write_csv_atomic
from cellshift._validate import NON_NEGATIVE_INT, POSITIVE_INT
from cellshift.analysis import load_gene_set, zero_deg_enrichment
from cellshift.cli._common import comma_list, positive_int_list, read_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift enrich``."""
    parser.add_argument("scores", help="scores.csv from `cellshift score`")
    parser.add_argument("--degs", default=None, help="degs.csv from `cellshift degs` (default: n_degs of scores.csv)")
    parser.add_argument(
        "--gene-set",
        type=comma_list,
        required=True,
        help="bundled sets (essential, cell_cycle, ...) or files with one gene per line, comma-separated",
    )
    parser.add_argument("--species", choices=["human", "mouse"], default="human", help="species of bundled sets")
    parser.add_argument("--top", type=positive_int_list, default=[3, 5, 10], help="numbers of top perturbations tested")
    parser.add_argument(
        "--permutations", type=POSITIVE_INT.parse, default=10_000, help="random draws of the permutation test"
    )
    parser.add_argument("--metrics", type=comma_list, default=None, help="default: every <metric>_z column")
    parser.add_argument("--seed", type=NON_NEGATIVE_INT.parse, default=0)
    parser.add_argument("--out", required=True, help="CSV to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift enrich``."""
    check_writable(args.out, args.overwrite)
    scores = read_table(args.scores, "SCORES", ["perturbation"])
    degs = read_table(args.degs, "--degs", ["perturbation", "n_degs"]) if args.degs else None
    loaded = [load_gene_set(spec, species=args.species) for spec in args.gene_set]
    gene_sets = dict(loaded)
    if len(gene_sets) < len(loaded):
        raise ValueError(f"--gene-set names a set twice (files are named by their stem): {args.gene_set}")
    table = zero_deg_enrichment(
        scores,
        gene_sets=gene_sets,
        degs=degs,
        metrics=args.metrics,
        top=args.top,
        n_permutations=args.permutations,
        seed=args.seed,
    )
    write_csv_atomic(table, args.out, args.overwrite)
    best = table.loc[table["p_value"].idxmin()]
    print(
        f"0-DEG pool of {best['n_pool']}; {len(table)} tests; smallest p = {best['p_value']:.3g} "
        f"(Bonferroni {best['p_bonferroni']:.3g}: {best['gene_set']}, {best['metric']}, top {best['top_n']}, "
        f"k = {best['k']} vs {best['expected']:.2f} expected): {args.out}"
    )
    return 0
