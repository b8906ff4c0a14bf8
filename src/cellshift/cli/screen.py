"""``cellshift degs`` and ``cellshift score``: DEGs and distances of a screen."""

from __future__ import annotations

import argparse
from pathlib import Path

from cellshift._io import check_writable, write_csv_atomic
from cellshift.cli._common import add_screen_options, comma_list


def _degs(args: argparse.Namespace) -> int:
    import anndata as ad

    from cellshift.analysis import degs

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


def _score(args: argparse.Namespace) -> int:
    import anndata as ad
    import pandas as pd

    from cellshift.analysis import score_perturbation_pairs, score_perturbations
    from cellshift.embed.registry import BASELINES, EmbedOptions, add_cell_embedding

    for extra in (args.nulls, args.pairs):
        if extra:
            check_writable(extra, args.overwrite)
    adata = ad.read_h5ad(args.input)
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
        return_nulls=True,
    )
    if args.degs:
        known = pd.read_csv(args.degs)[["perturbation", "n_degs", "knockdown"]]
        scores = scores.merge(known, on="perturbation", how="left")
    write_csv_atomic(scores, args.out, args.overwrite)
    print(f"scored {len(scores)} perturbations on {key} with {', '.join(args.metrics)}: {args.out}")
    if args.nulls:
        write_csv_atomic(nulls, args.nulls, args.overwrite)
        print(f"null draws: {args.nulls}")
    if args.pairs:
        pair_metrics = [metric for metric in args.metrics if metric != "wasserstein"]
        pairs = score_perturbation_pairs(
            adata, **common, perturbations=args.pair_perturbations or None, metrics=pair_metrics, n_null=args.n_null
        )
        write_csv_atomic(pairs, args.pairs, args.overwrite)
        print(f"{len(pairs)} pairs of perturbations scored with {', '.join(pair_metrics)}: {args.pairs}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``degs`` and ``score`` sub-commands."""
    degs_parser = commands.add_parser("degs", help="DEGs and on-target knock-down of each perturbation vs control")
    add_screen_options(degs_parser)
    degs_parser.add_argument("--method", choices=["wilcoxon", "anderson_darling"], default="wilcoxon")
    degs_parser.add_argument("--fdr", type=float, default=0.05, help="Benjamini-Hochberg FDR threshold")
    degs_parser.add_argument("--target-gene-key", default=None, help="obs column with the target gene (default: label)")
    degs_parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    degs_parser.set_defaults(handler=_degs)

    score = commands.add_parser("score", help="distance of each perturbation to control, z-scored against a null")
    add_screen_options(score)
    score.add_argument(
        "--embedding", required=True, help="pca, hvg, scvi-linear, scvi-5l (computed from counts) or an obsm key"
    )
    score.add_argument("--metrics", type=comma_list, default=["edistance", "cosine_edistance", "wasserstein"])
    score.add_argument("--n-null", type=int, default=1000, help="control draws per null")
    score.add_argument("--null-size", type=int, default=None, help="fixed null group size (default: each group's)")
    score.add_argument(
        "--reference",
        choices=["all", "matched"],
        default="all",
        help="all control cells (default) or the paper's single size-matched sample",
    )
    score.add_argument("--seed", type=int, default=0)
    score.add_argument("--degs", default=None, help="degs.csv from `cellshift degs`, to add n_degs and knockdown")
    score.add_argument("--nulls", default=None, help="also write every null draw (metric, null_size, value) here")
    score.add_argument(
        "--pairs", default=None, help="also write E-distances between pairs of perturbations, z-scored, here"
    )
    score.add_argument(
        "--pair-perturbations", type=comma_list, default=[], help="perturbations of --pairs (default: all scored)"
    )
    score.add_argument("--layer", default=None, help="layer with raw counts for the baselines (default: X)")
    score.set_defaults(handler=_score)
