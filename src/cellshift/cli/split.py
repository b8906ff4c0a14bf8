"""``cellshift split``: split perturbations (by DEGs) and control cells for fine-tuning."""

from __future__ import annotations

import argparse

from cellshift._io import check_writable
from cellshift._validate import FRACTION, NON_NEGATIVE_INT
from cellshift.analysis import split_perturbations
from cellshift.cli._common import comma_list, read_h5ad, read_table


def _shares(text: str) -> tuple[float, float, float]:
    """Parse ``train,validation,test`` shares, e.g. ``0.8,0.1,0.1``."""
    try:
        shares = tuple(float(share) for share in comma_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three numbers, e.g. 0.8,0.1,0.1; got {text!r}") from None
    if len(shares) != 3:
        raise argparse.ArgumentTypeError(f"takes three shares (train,validation,test), got {text!r}")
    return shares


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift split``."""
    parser.add_argument("degs", help="degs.csv from `cellshift degs`")
    parser.add_argument("input", help="the screen .h5ad (only obs is read)")
    parser.add_argument("--perturbation-key", required=True, help="obs column naming each cell's perturbation")
    parser.add_argument("--control", required=True, help="label of control cells, e.g. non-targeting")
    parser.add_argument(
        "--min-degs", type=NON_NEGATIVE_INT.parse, default=20, help="DEGs needed to train or test on a perturbation"
    )
    parser.add_argument("--test-fraction", type=FRACTION.parse, default=0.2, help="share of those held out for testing")
    parser.add_argument(
        "--control-fractions",
        type=_shares,
        default=(0.8, 0.1, 0.1),
        help="train,validation,test shares of controls (default 0.8,0.1,0.1)",
    )
    parser.add_argument("--exclude", type=comma_list, default=[], help="labels never used as controls")
    parser.add_argument("--seed", type=NON_NEGATIVE_INT.parse, default=0)
    parser.add_argument("--out", required=True, help="JSON to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift split``."""
    check_writable(args.out, args.overwrite)
    degs = read_table(args.degs, "DEGS", ["perturbation", "n_degs"])
    result = split_perturbations(
        read_h5ad(args.input, backed=True),
        degs=degs,
        perturbation_key=args.perturbation_key,
        control=args.control,
        min_degs=args.min_degs,
        test_fraction=args.test_fraction,
        control_fractions=args.control_fractions,
        seed=args.seed,
        exclude=args.exclude,
    )
    result.save(args.out, overwrite=args.overwrite)
    print(
        f"{len(result.train)} train and {len(result.test)} test perturbations (>= {args.min_degs} DEGs), "
        f"{len(result.zero_deg)} with 0 DEGs, {len(result.few_degs)} with fewer DEGs; control cells "
        f"{len(result.control_train)}/{len(result.control_validation)}/{len(result.control_test)}: {args.out}"
    )
    return 0
