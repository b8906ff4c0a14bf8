"""``cellshift demo``: run the main job on the bundled real data."""

from __future__ import annotations

import argparse
from pathlib import Path

from cellshift._validate import POSITIVE_INT
from cellshift.demo import run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift demo``."""
    parser.add_argument("--out", default="results/demo", help="output directory")
    parser.add_argument("--workers", type=POSITIVE_INT.parse, default=1, help="processes that tokenise")
    parser.add_argument(
        "--pretrain",
        action="store_true",
        help="pre-train a small model here instead of using the packaged cellshift-small-bundled",
    )
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift demo``."""
    run_demo(Path(args.out), workers=args.workers, pretrain=args.pretrain, progress=not args.quiet)
    return 0
