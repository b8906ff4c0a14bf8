"""``cellshift pretrain`` and ``cellshift evaluate``: the foundation model."""

from __future__ import annotations

import argparse
from pathlib import Path

# Built-in prior-knowledge sources (DESIGN §2.2): spectral embeddings of bundled tables.
BUILTIN_PRIORS = ("grn", "family")


def _read_priors(specs: list[str]) -> dict:
    """``NAME=PATH`` (a genes x dim TSV/CSV, genes in the first column) or a built-in name."""
    import pandas as pd

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
            from cellshift.embed.gene_embeddings import family_gene_embedding, grn_gene_embedding

            priors[name] = grn_gene_embedding() if name == "grn" else family_gene_embedding()
            continue
        if not Path(path).exists():
            raise FileNotFoundError(f"--priors {spec!r}: {path} does not exist")
        priors[name] = pd.read_csv(path, sep=None, engine="python", index_col=0)
    return priors


def _pretrain(args: argparse.Namespace) -> int:
    from cellshift.plotting.training import plot_loss_curve
    from cellshift.training import PretrainSettings, pretrain

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
        priors=_read_priors(args.priors),
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


def _evaluate(args: argparse.Namespace) -> int:
    from cellshift._io import write_csv_atomic
    from cellshift.training.evaluation import evaluate_model_dir

    table = evaluate_model_dir(
        args.model,
        args.corpus,
        max_cells=args.max_cells,
        top_genes=args.top_genes,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.quiet,
    )
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.out:
        write_csv_atomic(table.reset_index(), args.out, args.overwrite)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` and ``evaluate`` sub-commands."""
    pretrain = commands.add_parser(
        "pretrain",
        help="pre-train a foundation model on tokenised corpora (masked-gene modelling)",
        description="One device: `cellshift pretrain ...`; many GPUs or nodes: `accelerate launch -m cellshift "
        "pretrain ...` or `torchrun --nproc-per-node N -m cellshift pretrain ...`.",
    )
    pretrain.add_argument("corpora", nargs="+", help="corpus directories from `cellshift tokenize`")
    pretrain.add_argument("--out", required=True, help="model directory to create")
    pretrain.add_argument("--preset", default="small", help="tiny, small, geneformer-v1 or base")
    pretrain.add_argument("--values", action="store_true", help="fuse expression values; add a value head")
    pretrain.add_argument("--species", action="store_true", help="add a species embedding at the first position")
    pretrain.add_argument(
        "--priors",
        nargs="*",
        default=[],
        help="prior gene vectors: NAME=PATH (genes x dim table) or built-in grn / family",
    )
    pretrain.add_argument("--epochs", type=int, default=1)
    pretrain.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    pretrain.add_argument("--batch-size", type=int, default=16, help="cells per mini-batch per device")
    pretrain.add_argument("--gradient-accumulation", type=int, default=1, help="mini-batches per optimizer step")
    pretrain.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW)")
    pretrain.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% of all steps")
    pretrain.add_argument("--weight-decay", type=float, default=1e-3)
    pretrain.add_argument("--max-length", type=int, default=None, help="tokens kept per cell (default: model input)")
    pretrain.add_argument("--heldout-fraction", type=float, default=0.05, help="cells kept out for evaluation")
    pretrain.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps")
    pretrain.add_argument("--keep-last", type=int, default=2, help="checkpoints kept")
    pretrain.add_argument("--gradient-checkpointing", action="store_true")
    pretrain.add_argument("--mixed-precision", default="auto", choices=["auto", "bf16", "fp16", "no"])
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    pretrain.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run")
    pretrain.add_argument("--quiet", action="store_true")
    pretrain.set_defaults(handler=_pretrain)

    evaluate = commands.add_parser(
        "evaluate", help="masked-gene hits@k and rank Spearman on held-out cells, beside a gene-frequency baseline"
    )
    evaluate.add_argument("model", help="model directory from `cellshift pretrain`")
    evaluate.add_argument("corpus", help="corpus directory (its held-out cells if the model trained on it)")
    evaluate.add_argument("--max-cells", type=int, default=500, help="cells evaluated at most")
    evaluate.add_argument("--top-genes", type=int, default=2000, help="mask among each cell's top N genes")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", default=None, help="also write the table as CSV")
    evaluate.add_argument("--overwrite", action="store_true")
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(handler=_evaluate)
