"""``cellshift grn``: TF -> target networks from a model, scored against DoRothEA / TRRUST beside baselines.

Runs :func:`cellshift.tasks.infer_grn` and writes into ``--out``: ``edges.csv`` (method, tf,
target, score; the best ``--top-edges`` per method), ``metrics.csv`` (AUROC, AUPRC, early
precision ratio per method and reference, with a ``circular`` mark), ``per_tf.csv`` and
``pr_curves.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad

from cellshift._io import check_writable, write_csv_atomic
from cellshift.cli._common import comma_list
from cellshift.plotting.insilico import precision_recall_curves
from cellshift.tasks.grn_inference import GRN_METHODS, GrnSettings, infer_grn

OUTPUTS = {"edges": "edges.csv", "metrics": "metrics.csv", "per_tf": "per_tf.csv"}
FIGURE = "pr_curves.png"
DEFAULTS = GrnSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift grn``."""
    parser.add_argument("inputs", nargs="+", help="raw-count .h5ad files or corpus directories")
    parser.add_argument("--model", required=True, help="model directory (its gene table tokenises the cells)")
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
    parser.add_argument("--max-cells", type=int, default=DEFAULTS.max_cells, help="seeded subsample per input")
    parser.add_argument("--model-layer", type=int, default=DEFAULTS.model_layer, help="hidden layer (-1: last)")
    parser.add_argument("--n-components", type=int, default=DEFAULTS.n_components, help="random/prior dimension")
    parser.add_argument("--deletion-cells", type=int, default=DEFAULTS.deletion_cells, help="cells per input")
    parser.add_argument("--max-tfs", type=int, default=None, help="deletion: at most this many TFs")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--top-edges", type=int, default=DEFAULTS.top_edges, help="edges written per method")
    parser.add_argument("--device", default=None, help="default: a GPU when visible, else the CPU")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--out", required=True, help="folder for the tables and figure")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift grn``."""
    out = Path(args.out)
    for name in [*OUTPUTS.values(), FIGURE]:
        check_writable(out / name, args.overwrite)
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
    inputs = [path if Path(path).is_dir() else ad.read_h5ad(path) for path in args.inputs]
    result = infer_grn(inputs, args.model, settings=settings, device=args.device, progress=not args.quiet)
    for name, file in OUTPUTS.items():
        write_csv_atomic(getattr(result, name), out / file, args.overwrite)
    precision_recall_curves(result.curves, result.metrics, out / FIGURE, overwrite=args.overwrite)
    columns = ["method", "reference", "circular", "n_tfs", "n_true", "auroc", "auprc", "auprc_random", "epr"]
    print(result.metrics[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"results in {out}/ ({', '.join(OUTPUTS.values())}, {FIGURE})")
    return 0
