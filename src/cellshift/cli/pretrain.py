"""``cellshift pretrain``: pre-train a foundation model on tokenised corpora (masked-gene modelling)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from cellshift._io import check_writable
from cellshift.embed.gene_embeddings import family_gene_embedding, grn_gene_embedding
from cellshift.plotting.training import plot_loss_curve
from cellshift.priors import load_priors, read_prior_table, vocabulary_coverage
from cellshift.tokenize import Corpus
from cellshift.training import PretrainSettings, pretrain

# Built-in prior-knowledge sources: spectral embeddings of the bundled GRN and HGNC family tables.
BUILTIN_PRIORS = ("grn", "family")


def _read_priors(specs: list[str]) -> tuple[dict[str, pd.DataFrame], str | None]:
    """Prior tables from ``NAME=PATH`` (genes x dim TSV/CSV), a built-in name, or a priors directory.

    Returns the tables by source name and the SHA-256 of the priors directory's manifest (``None``
    without one; at most one directory).
    """
    priors, manifest = {}, None
    for spec in specs:
        name, _, path = spec.partition("=")
        if not path and Path(name).is_dir():
            if manifest is not None:
                raise ValueError("--priors takes at most one priors directory")
            built = load_priors(name)
            tables, manifest = built.tables, built.sha256
        elif not path:
            if name not in BUILTIN_PRIORS:
                raise ValueError(
                    f"--priors {spec!r}: give NAME=PATH, a priors directory (`cellshift priors build`) "
                    f"or a built-in source ({', '.join(BUILTIN_PRIORS)})"
                )
            tables = {name: grn_gene_embedding() if name == "grn" else family_gene_embedding()}
        elif not Path(path).exists():
            raise FileNotFoundError(f"--priors {spec!r}: {path} does not exist")
        else:
            tables = {name: read_prior_table(path, name)}
        for source, table in tables.items():
            if source in priors:
                raise ValueError(f"prior {source!r} is given twice")
            priors[source] = table
    return priors, manifest


def _report_coverage(priors: dict[str, pd.DataFrame], corpus: str) -> None:
    """Print how many vocabulary genes each prior covers; refuse a prior that covers none."""
    coverage = vocabulary_coverage(priors, Corpus.open(corpus).gene_table())
    for row in coverage.itertuples(index=False):
        if row.genes_covered == 0:
            example = list(priors[row.source].index[:3])
            raise ValueError(
                f"prior {row.source!r}: none of its genes (e.g. {example}) is in the vocabulary of {corpus}; "
                "index it by human Ensembl IDs or gene symbols"
            )
        share = f"{row.genes_covered:,} of {row.vocabulary_genes:,} vocabulary genes ({row.share:.1%})"
        print(f"prior {row.source}: {share}")


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
        help="prior gene vectors: PRIORS_DIR (`cellshift priors build`), NAME=PATH (genes x dim table) "
        "or built-in grn / family",
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
    priors, manifest = _read_priors(args.priors)
    if priors:
        _report_coverage(priors, args.corpora[0])
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
        model_options={"prior_manifest": manifest} if manifest else {},
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
