"""``cellshift demo``: the main job on the bundled real data."""

from __future__ import annotations

import argparse
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from cellshift.demo import run_demo

    run_demo(Path(args.out), workers=args.workers, progress=not args.quiet)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    demo = commands.add_parser("demo", help="run the main job on the bundled real data")
    demo.add_argument("--out", default="results/demo", help="output directory")
    demo.add_argument("--workers", type=int, default=1)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(handler=_demo)
