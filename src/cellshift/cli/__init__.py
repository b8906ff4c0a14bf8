"""Command-line interface: one sub-command per step, each a thin wrapper of the Python API.

Each command lives in its own module, ``cellshift.cli.<command>`` (dashes as underscores), with
``add_arguments(parser)`` and ``run(args) -> int``. :data:`COMMANDS` lists them with their
one-line help, in the order ``cellshift --help`` shows them; ``cellshift --help`` imports none of
them, and ``cellshift CMD ...`` imports only that command's module, so every command starts as
fast as its own dependencies allow.

A user error (a bad option, input or output path) ends a command with one line on stderr,
``cellshift CMD: error: ...``, and exit code 2, without a traceback (``--debug`` shows it).
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


# Exceptions that report a problem with the user's options, inputs or output paths.
USER_ERRORS = (ValueError, KeyError, OSError)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (and exit code 2), like the commands' own."""

    def error(self, message: str) -> None:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit with code 2."""
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(message: object) -> str:
    """The message on one line: line breaks become ``; ``."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def build_parser(load: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``cellshift`` argument parser, with the options of the commands in ``load`` (default: all)."""
    load = set(COMMANDS if load is None else load)
    parser = OneLineParser(prog="cellshift", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, summary in COMMANDS.items():
        sub = commands.add_parser(command, help=summary, description=summary)
        if command in load:
            module = command_module(command)
            module.add_arguments(sub)
            sub.add_argument("--debug", action="store_true", help="show the traceback of an error")
            sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; a user error is printed as one line (traceback with ``--debug``), exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = [argv[0]] if argv and argv[0] in COMMANDS else []
    args = build_parser(chosen).parse_args(argv)
    try:
        return args.handler(args)
    except USER_ERRORS as error:
        if args.debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"cellshift {args.command}: error: {one_line(message)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
