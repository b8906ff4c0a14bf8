"""Command-line interface: one sub-command per step, each a thin wrapper of the Python API.

Each command lives in its own module, ``cellshift.cli.<command>`` (dashes as underscores), with
``add_arguments(parser)`` and ``run(args) -> int``. :data:`COMMANDS` lists them with their
one-line help, in the order ``cellshift --help`` shows them; ``cellshift --help`` imports none of
them, and ``cellshift CMD ...`` imports only that command's module, so every command starts as
fast as its own dependencies allow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable, Sequence
from types import ModuleType

COMMANDS = {
    "tokenize": "rank-value encode raw-count cells into an Arrow corpus",
    "medians": "non-zero gene medians of a corpus -> a gene table",
    "priors": "build prior-knowledge gene vectors (GRN, gene families, co-expression, promoter) for pretrain --priors",
    "pretrain": "pre-train a foundation model on tokenised corpora (masked-gene modelling)",
    "evaluate": "masked-gene hits@k and rank Spearman on held-out cells, beside a gene-frequency baseline",
    "finetune": "contrastive fine-tuning of a pre-trained model on a Perturb-seq screen (Zhao et al. 2025)",
    "embed": "add cell embeddings (pca, hvg, scvi-linear, scvi-5l, model) to obsm",
    "degs": "DEGs and on-target knock-down of each perturbation vs control",
    "split": "split perturbations (by DEGs) and control cells for fine-tuning",
    "score": "distance of each perturbation to control, z-scored against a null",
    "enrich": "gene-set enrichment among the top-ranked 0-DEG perturbations",
    "predict-benchmark": "predict the change of unseen knock-downs from gene embeddings, benchmarked against baselines",
    "annotate": "cell-type annotation from a labelled reference (within or across species), with baselines",
    "classify-genes": "how well gene embeddings separate two classes of genes (dosage-sensitive TFs by default)",
    "insilico": "in-silico deletion / over-expression of genes: cell-embedding and goal-state shifts against a null",
    "grn": "TF -> target networks from a model, scored against DoRothEA / TRRUST beside baselines",
    "screen": "whole screen: DEGs, split, fine-tuning, embeddings, distances, enrichment, figures, report.html",
    "demo": "run the main job on the bundled real data",
}


def command_module(command: str) -> ModuleType:
    """The module of one command (``add_arguments`` and ``run``)."""
    return importlib.import_module(f"cellshift.cli.{command.replace('-', '_')}")


def build_parser(load: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``cellshift`` argument parser, with the options of the commands in ``load`` (default: all)."""
    load = set(COMMANDS if load is None else load)
    parser = argparse.ArgumentParser(prog="cellshift", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, summary in COMMANDS.items():
        sub = commands.add_parser(command, help=summary, description=summary)
        if command in load:
            module = command_module(command)
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors in the input are printed as one line, without a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = [argv[0]] if argv and argv[0] in COMMANDS else []
    args = build_parser(chosen).parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"cellshift {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
