"""``cellshift score``: distance of each perturbation to control, z-scored against a null."""

from __future__ import annotations

import argparse

from cellshift._io import write_csv_atomic
from cellshift._validate import GROUP_CELLS, NON_NEGATIVE_INT, NULL_DRAWS, OPEN_FRACTION
from cellshift.analysis import score_cells, score_perturbation_pairs, score_perturbations
from cellshift.analysis.cell_scores import per_cell_table
from cellshift.analysis.screen_input import scored_rows
from cellshift.cli._common import add_screen_options, check_outputs, comma_list, read_screen, read_table
from cellshift.embed.registry import BASELINES, EmbedOptions, add_cell_embedding


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift score``."""
    add_screen_options(parser)
    parser.add_argument(
        "--embedding", required=True, help="pca, hvg, scvi-linear, scvi-5l (computed from counts) or an obsm key"
    )
    parser.add_argument("--metrics", type=comma_list, default=["edistance", "cosine_edistance", "wasserstein"])
    parser.add_argument("--n-null", type=NULL_DRAWS.parse, default=1000, help="control draws per null")
    parser.add_argument(
        "--null-size", type=GROUP_CELLS.parse, default=None, help="fixed null group size (default: each group's)"
    )
    parser.add_argument(
        "--reference",
        choices=["all", "matched"],
        default="all",
        help="all control cells (default) or the paper's single size-matched sample",
    )
    parser.add_argument("--seed", type=NON_NEGATIVE_INT.parse, default=0)
    parser.add_argument("--degs", default=None, help="degs.csv from `cellshift degs`, to add n_degs and knockdown")
    parser.add_argument("--nulls", default=None, help="also write every null draw (metric, null_size, value) here")
    parser.add_argument(
        "--pairs", default=None, help="also write E-distances between pairs of perturbations, z-scored, here"
    )
    parser.add_argument(
        "--pair-perturbations", type=comma_list, default=[], help="perturbations of --pairs (default: all scored)"
    )
    parser.add_argument("--layer", default=None, help="layer with raw counts for the baselines (default: X)")
    parser.add_argument(
        "--per-cell",
        default=None,
        help="also score every perturbed cell against held-out controls and write the cells here (CSV); "
        "adds n_responders and fraction_responders to the scores",
    )
    parser.add_argument("--fdr", type=OPEN_FRACTION.parse, default=0.05, help="FDR of the per-cell responder call")
    parser.add_argument(
        "--batch-key", default=None, help="obs column of batches: compare within batches (E-distances only)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift score``."""
    check_outputs([path for path in (args.out, args.nulls, args.pairs, args.per_cell) if path], args.overwrite)
    known = read_table(args.degs, "--degs", ["perturbation", "n_degs", "knockdown"]) if args.degs else None
    adata = read_screen(args.input, args.layer, counts=args.embedding in BASELINES)
    if args.embedding in BASELINES:
        key = add_cell_embedding(adata, args.embedding, EmbedOptions(layer=args.layer, seed=args.seed))
    else:
        key = args.embedding
    common = {"perturbation_key": args.perturbation_key, "control": args.control, "seed": args.seed}
    common.update(min_cells=args.min_cells, exclude=args.exclude, embedding=key)
    scores, nulls = score_perturbations(
        adata,
        **common,
        metrics=args.metrics,
        n_null=args.n_null,
        null_size=args.null_size,
        reference=args.reference,
        batch_key=args.batch_key,
        return_nulls=True,
    )
    if args.batch_key:
        print(f"control cells per batch ({args.batch_key}): {scores.attrs['controls_per_batch']}")
    if args.per_cell:
        score_cells(adata, **common, fdr=args.fdr)
        summary = adata.uns["perturbation_response"]["summary"]
        scores = scores.merge(summary.drop(columns=["n_cells"]), on="perturbation", how="left")
    if known is not None:
        scores = scores.merge(known[["perturbation", "n_degs", "knockdown"]], on="perturbation", how="left")
    write_csv_atomic(scores, args.out, args.overwrite)
    n_scored = len(scored_rows(scores))
    print(
        f"scored {n_scored} perturbations ({len(scores) - n_scored} with too few cells, listed unscored) on {key} "
        f"with {', '.join(args.metrics)}: {args.out}"
    )
    if args.nulls:
        write_csv_atomic(nulls, args.nulls, args.overwrite)
        print(f"null draws: {args.nulls}")
    if args.per_cell:
        write_csv_atomic(per_cell_table(adata, args.perturbation_key), args.per_cell, args.overwrite)
        print(f"per-cell scores (responders at FDR {args.fdr}): {args.per_cell}")
    if args.pairs:
        pair_metrics = [metric for metric in args.metrics if metric != "wasserstein"]
        pairs = score_perturbation_pairs(
            adata, **common, perturbations=args.pair_perturbations or None, metrics=pair_metrics, n_null=args.n_null
        )
        write_csv_atomic(pairs, args.pairs, args.overwrite)
        print(f"{len(pairs)} pairs of perturbations scored with {', '.join(pair_metrics)}: {args.pairs}")
    return 0
