"""Command-line interface: one sub-command per step, each a thin wrapper of the Python API.

Each module in this package owns one group of sub-commands and exposes ``register(commands)``;
:data:`COMMAND_MODULES` lists them in the order ``cellshift --help`` shows them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "cellshift.cli.tokenize",
    "cellshift.cli.model",
    "cellshift.cli.finetune",
    "cellshift.cli.embed",
    "cellshift.cli.screen",
    "cellshift.cli.enrich",
    "cellshift.cli.response",
    "cellshift.cli.pipeline",
    "cellshift.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``cellshift`` argument parser."""
    parser = argparse.ArgumentParser(prog="cellshift", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors in the input are printed as one line, without a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"cellshift {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
