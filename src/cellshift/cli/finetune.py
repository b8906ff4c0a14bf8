"""``cellshift finetune``: contrastive fine-tuning of a pre-trained model on a Perturb-seq screen (Zhao et al. 2025)."""

from __future__ import annotations

import argparse

import anndata as ad
import pandas as pd

from cellshift.cli._common import comma_list
from cellshift.pipelines.finetune import finetune_on_screen
from cellshift.training import FinetuneSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift finetune``."""
    parser.description = (
        "Splits the screen by perturbation (>= --min-degs DEGs; test perturbations held out), then trains on "
        "(control, control) similar and (perturbed, control) dissimilar pairs with a margin loss. Many GPUs: "
        "`accelerate launch -m cellshift finetune ...`."
    )
    parser.add_argument("model", help="pre-trained model directory (`cellshift pretrain`)")
    parser.add_argument("input", help="screen .h5ad with raw counts")
    parser.add_argument("--perturbation-key", required=True, help="obs column naming each cell's perturbation")
    parser.add_argument("--control", required=True, help="label of control cells, e.g. non-targeting")
    parser.add_argument("--out", required=True, help="directory of the fine-tuned model")
    parser.add_argument("--degs", default=None, help="degs.csv from `cellshift degs` (default: computed here)")
    parser.add_argument("--min-degs", type=int, default=20, help="perturbations with fewer DEGs are not trained on")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of those held out as test")
    parser.add_argument("--min-cells", type=int, default=20, help="groups with fewer cells get no DEGs")
    parser.add_argument("--exclude", type=comma_list, default=[], help="labels neither trained on nor controls")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the perturbed training cells")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    parser.add_argument("--batch-size", type=int, default=16, help="cell pairs per batch")
    parser.add_argument(
        "--lr",
        type=float,
        default=1e-5,
        help="AdamW learning rate, constant (paper: 1e-5; small models in short runs: 1e-4)",
    )
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--margin", type=float, default=20.0, help="margin m of the contrastive loss")
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="share of each training perturbation's cells held out for the validation loss (0: no validation)",
    )
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient-norm clipping (0: off)")
    parser.add_argument("--max-length", type=int, default=None, help="tokens kept per cell (default: model input)")
    parser.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps")
    parser.add_argument("--keep-last", type=int, default=2, help="checkpoints kept")
    parser.add_argument("--log-every", type=int, default=10, help="write the loss log every N steps")
    parser.add_argument("--mixed-precision", default="auto", choices=["auto", "bf16", "fp16", "no"])
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the pairs and dropout")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    parser.add_argument("--gene-key", default=None, help="var column with gene IDs or symbols (default: var index)")
    parser.add_argument("--species", choices=["human", "mouse"], default=None, help="default: detected from genes")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift finetune``."""
    adata = ad.read_h5ad(args.input)
    settings = FinetuneSettings(
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        margin=args.margin,
        max_grad_norm=args.max_grad_norm if args.max_grad_norm > 0 else None,
        max_length=args.max_length,
        save_every=args.save_every,
        keep_last=args.keep_last,
        log_every=args.log_every,
        mixed_precision=args.mixed_precision,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
    )
    result = finetune_on_screen(
        args.model,
        adata,
        args.out,
        perturbation_key=args.perturbation_key,
        control=args.control,
        settings=settings,
        min_degs=args.min_degs,
        test_fraction=args.test_fraction,
        min_cells=args.min_cells,
        exclude=args.exclude,
        layer=args.layer,
        degs=pd.read_csv(args.degs) if args.degs else None,
        gene_key=args.gene_key,
        species=args.species,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    split, training = result.split, result.training
    n_controls = len(split.control_train) + len(split.control_validation) + len(split.control_test)
    print(
        f"split (>= {args.min_degs} DEGs): train {', '.join(split.train)}; test (held out) {', '.join(split.test)}; "
        f"{len(split.zero_deg)} with 0 DEGs; {len(split.control_train)} of {n_controls} control cells for training"
    )
    print(
        f"fine-tuned {training.steps} steps ({training.epochs_completed:.2f} epochs, {training.pairs_seen:,} pairs, "
        f"{training.seconds:.0f} s): {training.model_dir} "
        f"(loss log {training.loss_log}, curve {result.loss_curve.name})"
    )
    return 0
