"""``cellshift pretrain``: pre-train a foundation model on tokenised corpora (masked-gene modelling)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from cellshift._io import check_writable
from cellshift.embed.gene_embeddings import family_gene_embedding, grn_gene_embedding
from cellshift.plotting.training import plot_loss_curve
from cellshift.training import PretrainSettings, pretrain

# Built-in prior-knowledge sources: spectral embeddings of the bundled GRN and HGNC family tables.
BUILTIN_PRIORS = ("grn", "family")


def _read_priors(specs: list[str]) -> dict:
    """``NAME=PATH`` (a genes x dim TSV/CSV, genes in the first column) or a built-in name."""
    priors = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if name in priors:
            raise ValueError(f"prior {name!r} is given twice")
        if not path:
            if name not in BUILTIN_PRIORS:
                raise ValueError(
                    f"--priors {spec!r}: give NAME=PATH or a built-in source ({', '.join(BUILTIN_PRIORS)})"
                )
            priors[name] = grn_gene_embedding() if name == "grn" else family_gene_embedding()
            continue
        if not Path(path).exists():
            raise FileNotFoundError(f"--priors {spec!r}: {path} does not exist")
        priors[name] = pd.read_csv(path, sep=None, engine="python", index_col=0)
    return priors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift pretrain``."""
    parser.description = (
        "One device: `cellshift pretrain ...`; many GPUs or nodes: `accelerate launch -m cellshift pretrain "
        "...` or `torchrun --nproc-per-node N -m cellshift pretrain ...`."
    )
    parser.add_argument("corpora", nargs="+", help="corpus directories from `cellshift tokenize`")
    parser.add_argument("--out", required=True, help="model directory to create")
    parser.add_argument("--preset", default="small", help="tiny, small, geneformer-v1 or base")
    parser.add_argument("--values", action="store_true", help="fuse expression values; add a value head")
    parser.add_argument("--species", action="store_true", help="add a species embedding at the first position")
    parser.add_argument(
        "--priors",
        nargs="*",
        default=[],
        help="prior gene vectors: NAME=PATH (genes x dim table) or built-in grn / family",
    )
    bounds = PretrainSettings.BOUNDS
    parser.add_argument("--epochs", type=bounds["epochs"].parse, default=1)
    parser.add_argument(
        "--max-steps", type=bounds["max_steps"].parse, default=None, help="stop after this many optimizer steps"
    )
    parser.add_argument(
        "--batch-size", type=bounds["batch_size"].parse, default=16, help="cells per mini-batch per device"
    )
    parser.add_argument(
        "--gradient-accumulation",
        type=bounds["gradient_accumulation"].parse,
        default=1,
        help="mini-batches per optimizer step",
    )
    parser.add_argument("--lr", type=bounds["learning_rate"].parse, default=1e-3, help="peak learning rate (AdamW)")
    parser.add_argument(
        "--warmup-steps", type=bounds["warmup_steps"].parse, default=None, help="default: 5%% of all steps"
    )
    parser.add_argument("--weight-decay", type=bounds["weight_decay"].parse, default=1e-3)
    parser.add_argument(
        "--max-length",
        type=bounds["max_length"].parse,
        default=None,
        help="tokens kept per cell (default: model input)",
    )
    parser.add_argument(
        "--heldout-fraction",
        type=bounds["heldout_fraction"].parse,
        default=0.05,
        help="cells kept out for evaluation",
    )
    parser.add_argument("--save-every", type=bounds["save_every"].parse, default=500, help="checkpoint every N steps")
    parser.add_argument("--keep-last", type=bounds["keep_last"].parse, default=2, help="checkpoints kept")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--mixed-precision", default="auto", choices=["auto", "bf16", "fp16", "no"])
    parser.add_argument("--seed", type=bounds["seed"].parse, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift pretrain``."""
    check_writable(Path(args.out) / "training", overwrite=True)
    priors = _read_priors(args.priors)
    settings = PretrainSettings(
        preset=args.preset,
        use_values=args.values,
        use_species=args.species,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        gradient_accumulation=args.gradient_accumulation,
        learning_rate=args.lr,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        max_length=args.max_length,
        heldout_fraction=args.heldout_fraction,
        save_every=args.save_every,
        keep_last=args.keep_last,
        gradient_checkpointing=args.gradient_checkpointing,
        mixed_precision=args.mixed_precision,
        seed=args.seed,
    )
    result = pretrain(
        args.corpora,
        args.out,
        settings,
        priors=priors,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    if result.loss_log.exists():
        plot_loss_curve(result.loss_log, result.loss_log.with_suffix(".png"))
    print(
        f"pre-trained {result.steps} steps ({result.epochs_completed:.2f} epochs, {result.tokens_seen:,} tokens, "
        f"{result.seconds:.0f} s): {result.model_dir} (loss log {result.loss_log})"
    )
    return 0
