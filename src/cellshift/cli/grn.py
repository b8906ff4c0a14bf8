"""``cellshift grn``: TF -> target networks from a model, scored against DoRothEA / TRRUST beside baselines.

Runs :func:`cellshift.tasks.infer_grn` and writes into ``--out``: ``edges.csv`` (method, tf,
target, score; the best ``--top-edges`` per method), ``metrics.csv`` (AUROC, AUPRC, early
precision ratio per method and reference, with a ``circular`` mark), ``per_tf.csv`` and
``pr_curves.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cellshift._io import check_model_dir, write_csv_atomic
from cellshift._pretrained import model_argument
from cellshift.cli._common import check_outputs, comma_list, read_counts
from cellshift.plotting.insilico import precision_recall_curves
from cellshift.tasks.grn_inference import GRN_METHODS, GrnSettings, infer_grn

OUTPUTS = {"edges": "edges.csv", "metrics": "metrics.csv", "per_tf": "per_tf.csv"}
FIGURE = "pr_curves.png"
DEFAULTS = GrnSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift grn``."""
    parser.add_argument("inputs", nargs="+", help="raw-count .h5ad files or corpus directories")
    parser.add_argument(
        "--model", required=True, type=model_argument, help="model directory (its gene table tokenises the cells)"
    )
    parser.add_argument(
        "--methods",
        type=comma_list,
        default=list(DEFAULTS.methods),
        help=f"comma-separated: {', '.join(GRN_METHODS)} (default: {','.join(DEFAULTS.methods)})",
    )
    parser.add_argument(
        "--reference",
        dest="references",
        type=comma_list,
        default=list(DEFAULTS.references),
        help="comma-separated: dorothea, trrust or CSV files with tf,target columns",
    )
    parser.add_argument("--confidence", default=DEFAULTS.confidence, help="DoRothEA levels kept (default ABC)")
    bounds = GrnSettings.BOUNDS
    parser.add_argument(
        "--max-cells", type=bounds["max_cells"].parse, default=DEFAULTS.max_cells, help="seeded subsample per input"
    )
    parser.add_argument("--model-layer", type=int, default=DEFAULTS.model_layer, help="hidden layer (-1: last)")
    parser.add_argument(
        "--n-components",
        type=bounds["n_components"].parse,
        default=DEFAULTS.n_components,
        help="random/prior dimension",
    )
    parser.add_argument(
        "--deletion-cells",
        type=bounds["deletion_cells"].parse,
        default=DEFAULTS.deletion_cells,
        help="cells per input",
    )
    parser.add_argument("--max-tfs", type=bounds["max_tfs"].parse, default=None, help="deletion: at most this many TFs")
    parser.add_argument("--batch-size", type=bounds["batch_size"].parse, default=DEFAULTS.batch_size)
    parser.add_argument(
        "--top-edges", type=bounds["top_edges"].parse, default=DEFAULTS.top_edges, help="edges written per method"
    )
    parser.add_argument("--layer", default=None, help="layer with raw counts in the .h5ad inputs (default: X)")
    parser.add_argument("--device", default=None, help="default: a GPU when visible, else the CPU")
    parser.add_argument("--seed", type=bounds["seed"].parse, default=DEFAULTS.seed)
    parser.add_argument("--out", required=True, help="folder for the tables and figure")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift grn``."""
    out = Path(args.out)
    check_outputs([out / name for name in [*OUTPUTS.values(), FIGURE]], args.overwrite)
    check_model_dir(args.model, option="--model")
    settings = GrnSettings(
        methods=tuple(dict.fromkeys(args.methods)),
        references=tuple(dict.fromkeys(args.references)),
        confidence=args.confidence,
        max_cells=args.max_cells,
        model_layer=args.model_layer,
        n_components=args.n_components,
        deletion_cells=args.deletion_cells,
        max_tfs=args.max_tfs,
        batch_size=args.batch_size,
        top_edges=args.top_edges,
        seed=args.seed,
    )
    inputs = [path if Path(path).is_dir() else read_counts(path, args.layer) for path in args.inputs]
    result = infer_grn(inputs, args.model, settings=settings, device=args.device, progress=not args.quiet)
    for name, file in OUTPUTS.items():
        write_csv_atomic(getattr(result, name), out / file, args.overwrite)
    precision_recall_curves(result.curves, result.metrics, out / FIGURE, overwrite=args.overwrite)
    columns = ["method", "reference", "circular", "n_tfs", "n_true", "auroc", "auprc", "auprc_random", "epr"]
    print(result.metrics[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"results in {out}/ ({', '.join(OUTPUTS.values())}, {FIGURE})")
    return 0
