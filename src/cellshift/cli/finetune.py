"""``cellshift finetune``: contrastive fine-tuning of a pre-trained model on a Perturb-seq screen (Zhao et al. 2025)."""

from __future__ import annotations

import argparse

from cellshift._pretrained import model_argument
from cellshift._validate import FRACTION, GROUP_CELLS, NON_NEGATIVE, NON_NEGATIVE_INT
from cellshift.cli._common import comma_list, read_screen, read_table
from cellshift.pipelines.finetune import finetune_on_screen
from cellshift.training import FinetuneSettings
from cellshift.training.contrastive import check_finetune_dirs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift finetune``."""
    parser.description = (
        "Splits the screen by perturbation (>= --min-degs DEGs; test perturbations held out), then trains on "
        "(control, control) similar and (perturbed, control) dissimilar pairs with a margin loss. Many GPUs: "
        "`accelerate launch -m cellshift finetune ...`."
    )
    parser.add_argument("model", type=model_argument, help="pre-trained model directory (`cellshift pretrain`)")
    parser.add_argument("input", help="screen .h5ad with raw counts")
    parser.add_argument("--perturbation-key", required=True, help="obs column naming each cell's perturbation")
    parser.add_argument("--control", required=True, help="label of control cells, e.g. non-targeting")
    parser.add_argument("--out", required=True, help="directory of the fine-tuned model")
    parser.add_argument("--degs", default=None, help="degs.csv from `cellshift degs` (default: computed here)")
    bounds = FinetuneSettings.BOUNDS
    parser.add_argument(
        "--min-degs", type=NON_NEGATIVE_INT.parse, default=20, help="perturbations with fewer DEGs are not trained on"
    )
    parser.add_argument("--test-fraction", type=FRACTION.parse, default=0.2, help="share of those held out as test")
    parser.add_argument("--min-cells", type=GROUP_CELLS.parse, default=20, help="groups with fewer cells get no DEGs")
    parser.add_argument("--exclude", type=comma_list, default=[], help="labels neither trained on nor controls")
    parser.add_argument(
        "--epochs", type=bounds["epochs"].parse, default=1, help="passes over the perturbed training cells"
    )
    parser.add_argument(
        "--max-steps", type=bounds["max_steps"].parse, default=None, help="stop after this many optimizer steps"
    )
    parser.add_argument("--batch-size", type=bounds["batch_size"].parse, default=16, help="cell pairs per batch")
    parser.add_argument(
        "--lr",
        type=bounds["learning_rate"].parse,
        default=1e-5,
        help="AdamW learning rate, constant (paper: 1e-5; small models in short runs: 1e-4)",
    )
    parser.add_argument("--weight-decay", type=bounds["weight_decay"].parse, default=1e-2)
    parser.add_argument("--margin", type=bounds["margin"].parse, default=20.0, help="margin m of the contrastive loss")
    parser.add_argument(
        "--validation-fraction",
        type=bounds["validation_fraction"].parse,
        default=0.1,
        help="share of each training perturbation's cells held out for the validation loss (0: no validation)",
    )
    parser.add_argument("--max-grad-norm", type=NON_NEGATIVE.parse, default=1.0, help="gradient-norm clipping (0: off)")
    parser.add_argument(
        "--max-length",
        type=bounds["max_length"].parse,
        default=None,
        help="tokens kept per cell (default: model input)",
    )
    parser.add_argument("--save-every", type=bounds["save_every"].parse, default=500, help="checkpoint every N steps")
    parser.add_argument("--keep-last", type=bounds["keep_last"].parse, default=2, help="checkpoints kept")
    parser.add_argument(
        "--log-every", type=bounds["log_every"].parse, default=10, help="write the loss log every N steps"
    )
    parser.add_argument("--mixed-precision", default="auto", choices=["auto", "bf16", "fp16", "no"])
    parser.add_argument("--seed", type=bounds["seed"].parse, default=0, help="seed of the split, the pairs and dropout")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    parser.add_argument("--gene-key", default=None, help="var column with gene IDs or symbols (default: var index)")
    parser.add_argument("--species", choices=["human", "mouse"], default=None, help="default: detected from genes")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift finetune``."""
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
    check_finetune_dirs(args.model, args.out, settings, resume=args.resume, overwrite=args.overwrite)
    degs = read_table(args.degs, "--degs", ["perturbation", "n_degs"]) if args.degs else None
    adata = read_screen(args.input, args.layer)
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
        degs=degs,
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
