"""``cellshift screen``: a whole screen, from counts to ``report.html``.

DEGs, split, fine-tuning, embeddings, distances, enrichment, figures and the report
(:func:`cellshift.pipelines.screen.run_screen`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cellshift._io import check_model_dir
from cellshift._pretrained import model_argument
from cellshift._validate import OPEN_FRACTION, POSITIVE_INT
from cellshift.cli._common import comma_list, positive_int_list, read_screen
from cellshift.pipelines.screen import check_screen_dir, pick_cells, run_screen
from cellshift.pipelines.screen_run import ScreenSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift screen``."""
    parser.add_argument("input", help="screen .h5ad with raw counts")
    parser.add_argument("--perturbation-key", required=True, help="obs column naming each cell's perturbation")
    parser.add_argument("--control", required=True, help="label of control cells, e.g. non-targeting")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument(
        "--model",
        default=None,
        type=model_argument,
        help="pre-trained model directory (cellshift pretrain) or packaged model name (cellshift-small-bundled)",
    )
    parser.add_argument(
        "--finetuned",
        default=None,
        help="model fine-tuned before (cellshift finetune): embedded instead of fine-tuning --model; its split is used",
    )
    parser.add_argument("--baselines", type=comma_list, default=["pca", "hvg"], help="pca,hvg,scvi-linear,scvi-5l")
    parser.add_argument(
        "--embeddings", type=comma_list, default=[], help="obsm keys of embeddings made elsewhere, scored as they are"
    )
    parser.add_argument("--metrics", type=comma_list, default=["edistance", "cosine_edistance", "wasserstein"])
    bounds = ScreenSettings.BOUNDS
    parser.add_argument("--n-null", type=bounds["n_null"].parse, default=200, help="control draws per null")
    parser.add_argument(
        "--null-size",
        type=bounds["null_size"].parse,
        default=None,
        help="fixed null group size (default: each group's)",
    )
    parser.add_argument(
        "--min-cells",
        type=bounds["min_cells"].parse,
        default=20,
        help="groups with fewer cells are reported, not scored",
    )
    parser.add_argument(
        "--min-degs", type=bounds["min_degs"].parse, default=20, help="DEGs a perturbation needs for fine-tuning"
    )
    parser.add_argument("--exclude", type=comma_list, default=[], help="labels neither scored nor used as controls")
    parser.add_argument("--gene-sets", type=comma_list, default=["essential", "cell_cycle"], help="names or files")
    parser.add_argument("--top", type=positive_int_list, default=(3, 5, 10), help="top-n values of the enrichment test")
    parser.add_argument("--permutations", type=bounds["permutations"].parse, default=10_000)
    parser.add_argument(
        "--finetune-steps",
        type=bounds["finetune_steps"].parse,
        default=200,
        help="contrastive fine-tuning steps (0: none)",
    )
    parser.add_argument(
        "--finetune-lr",
        type=bounds["finetune_lr"].parse,
        default=1e-5,
        help="AdamW learning rate (Zhao et al.: 1e-5; small models in short runs: 1e-4)",
    )
    parser.add_argument("--umap", type=comma_list, default=[], help="perturbations shown in the UMAP figure")
    parser.add_argument(
        "--max-cells-per-group",
        type=POSITIVE_INT.parse,
        default=None,
        help="subsample perturbed groups (controls kept whole)",
    )
    parser.add_argument(
        "--response", action="store_true", help="also benchmark response prediction of unseen knock-downs"
    )
    parser.add_argument(
        "--no-per-cell", dest="per_cell", action="store_false", help="skip per-cell scores and responder calls"
    )
    parser.add_argument("--fdr", type=OPEN_FRACTION.parse, default=0.05, help="FDR of the per-cell responder call")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    parser.add_argument("--batch-key", default=None, help="obs column of batches: distances within batches")
    parser.add_argument("--seed", type=bounds["seed"].parse, default=0)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift screen``."""
    check_screen_dir(Path(args.out), args.overwrite, [args.model, args.finetuned])
    for option, model in (("--model", args.model), ("--finetuned", args.finetuned)):
        if model is not None:
            check_model_dir(model, option=option)
    adata = read_screen(args.input, args.layer)
    if args.max_cells_per_group:
        adata = pick_cells(
            adata, args.perturbation_key, max_per_group=args.max_cells_per_group, seed=args.seed, always=[args.control]
        )
    settings = ScreenSettings(
        perturbation_key=args.perturbation_key,
        control=args.control,
        min_cells=args.min_cells,
        exclude=tuple(args.exclude),
        baselines=tuple(args.baselines),
        embeddings=tuple(args.embeddings),
        metrics=tuple(args.metrics),
        n_null=args.n_null,
        null_size=args.null_size,
        min_degs=args.min_degs,
        gene_sets=tuple(args.gene_sets),
        top=tuple(args.top),
        permutations=args.permutations,
        finetune_steps=args.finetune_steps,
        finetune_lr=args.finetune_lr,
        umap_perturbations=tuple(args.umap),
        seed=args.seed,
        layer=args.layer,
        batch_key=args.batch_key,
        per_cell=args.per_cell,
        fdr=args.fdr,
        response=args.response,
    )
    result = run_screen(
        adata,
        args.out,
        settings,
        model=args.model,
        finetuned=args.finetuned,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    metric = settings.metrics[0]
    for name, table in result.scores.items():
        top = table.sort_values(f"{metric}_z", ascending=False)["perturbation"].head(5).tolist()
        print(f"{name:>12}: top by {metric}_z: {', '.join(top)}")
    print(f"report: {result.report}")
    return 0
