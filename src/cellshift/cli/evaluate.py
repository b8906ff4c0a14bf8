"""``cellshift evaluate``: masked-gene hits@k and rank Spearman on held-out cells, beside a gene-frequency baseline."""

from __future__ import annotations

import argparse

from cellshift._io import check_model_dir, check_writable, write_csv_atomic
from cellshift._pretrained import model_argument
from cellshift._validate import NON_NEGATIVE_INT, POSITIVE_INT
from cellshift.training.evaluation import evaluate_model_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift evaluate``."""
    parser.add_argument(
        "model",
        type=model_argument,
        help="model directory from `cellshift pretrain`, or a packaged model name (cellshift-small-bundled)",
    )
    parser.add_argument("corpus", help="corpus directory (its held-out cells if the model trained on it)")
    parser.add_argument("--max-cells", type=POSITIVE_INT.parse, default=500, help="cells evaluated at most")
    parser.add_argument("--top-genes", type=POSITIVE_INT.parse, default=2000, help="mask among each cell's top N genes")
    parser.add_argument("--batch-size", type=POSITIVE_INT.parse, default=32)
    parser.add_argument("--seed", type=NON_NEGATIVE_INT.parse, default=0)
    parser.add_argument("--out", default=None, help="also write the table as CSV")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift evaluate``."""
    check_model_dir(args.model, option="MODEL")
    if args.out:
        check_writable(args.out, args.overwrite)
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
