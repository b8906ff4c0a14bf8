"""``cellshift predict-benchmark``: predict the change of unseen knock-downs from gene embeddings, vs baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cellshift._io import check_model_dir, write_csv_atomic, write_text_atomic
from cellshift._pretrained import model_argument
from cellshift.analysis.response import DEFAULT_EMBEDDINGS, benchmark
from cellshift.analysis.response.protocol import OPTION_BOUNDS
from cellshift.cli._common import check_outputs, comma_list, read_counts, read_h5ad, read_screen
from cellshift.plotting.response import l2_boxplot, rank_plot

OUTPUTS = {
    "scores": "scores.csv",
    "summary": "summary.csv",
    "fits": "fits.csv",
    "coverage": "coverage.csv",
    "settings": "settings.json",
    "boxplot": "l2_boxplot.png",
    "ranks": "rank_plot.png",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift predict-benchmark``."""
    parser.add_argument("input", nargs="?", default=None, help="screen .h5ad with raw counts (or use --deltas)")
    parser.add_argument("--perturbation-key", default=None, help="obs column naming each cell's perturbed gene")
    parser.add_argument("--control", default=None, help="label of control cells, e.g. non-targeting")
    parser.add_argument("--deltas", default=None, help="perturbations x genes .h5ad of changes (obs index = gene)")
    parser.add_argument("--batch-key", default=None, help="obs column with the batch or gem group (cells only)")
    parser.add_argument(
        "--min-cells",
        type=OPTION_BOUNDS["min_cells"].parse,
        default=20,
        help="perturbations with fewer cells are left out",
    )
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    parser.add_argument("--exclude", type=comma_list, default=[], help="labels neither predicted nor used as controls")
    parser.add_argument(
        "--clip",
        type=OPTION_BOUNDS["clip"].parse,
        default=10.0,
        help="mask --deltas values with |x| >= clip (default 10)",
    )
    parser.add_argument(
        "--model", default=None, type=model_argument, help="model checkpoint directory, for the model embedding"
    )
    parser.add_argument("--model-cells", default=None, help="raw-count .h5ad the model embedding averages over")
    parser.add_argument("--model-layer", type=int, default=-1, help="hidden layer of the model embedding (-1: last)")
    parser.add_argument(
        "--embeddings",
        type=comma_list,
        default=None,
        help="gene embeddings: pca,grn,family,random,model (default: all but model; model too with --model)",
    )
    parser.add_argument("--regressor", choices=["knn", "ridge", "lasso"], default="knn")
    parser.add_argument(
        "--splits", type=OPTION_BOUNDS["n_splits"].parse, default=5, help="random splits of the perturbations"
    )
    parser.add_argument("--seed", type=OPTION_BOUNDS["seed"].parse, default=0)
    parser.add_argument(
        "--n-components",
        type=OPTION_BOUNDS["n_components"].parse,
        default=64,
        help="dimension of pca, grn, family, random",
    )
    parser.add_argument(
        "--n-bootstrap",
        type=OPTION_BOUNDS["n_bootstrap"].parse,
        default=20,
        help="draws of the experimental error (0: skip)",
    )
    parser.add_argument("--out", required=True, help="folder for the tables and figures")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift predict-benchmark``."""
    if (args.input is None) == (args.deltas is None):
        raise ValueError("give either IN.h5ad with --perturbation-key and --control, or --deltas DELTAS.h5ad")
    if args.input is not None and (args.perturbation_key is None or args.control is None):
        raise ValueError("IN.h5ad needs --perturbation-key and --control (or pass changes with --deltas)")
    embeddings = args.embeddings or [*DEFAULT_EMBEDDINGS, *(["model"] if args.model else [])]
    out = Path(args.out)
    paths = {name: out / file for name, file in OUTPUTS.items()}
    check_outputs(paths.values(), args.overwrite)
    if args.model:
        check_model_dir(args.model, option="--model")

    cells = args.input is not None
    adata = read_screen(args.input, args.layer) if cells else read_h5ad(args.deltas)
    model_cells = read_counts(args.model_cells, None) if args.model_cells else None
    result = benchmark(
        adata,
        perturbation_key=args.perturbation_key if cells else None,
        control=args.control if cells else None,
        batch_key=args.batch_key,
        min_cells=args.min_cells,
        layer=args.layer,
        exclude=args.exclude,
        clip=args.clip,
        embeddings=embeddings,
        model_dir=args.model,
        model_cells=model_cells,
        model_layer=args.model_layer,
        regressor=args.regressor,
        n_splits=args.splits,
        seed=args.seed,
        n_components=args.n_components,
        n_bootstrap=args.n_bootstrap,
    )
    summary = result.summary
    for name in ("scores", "summary", "fits", "coverage"):
        write_csv_atomic(summary if name == "summary" else getattr(result, name), paths[name], args.overwrite)
    write_text_atomic(paths["settings"], json.dumps(result.settings, indent=2, default=str) + "\n")
    l2_boxplot(result.scores, path=paths["boxplot"], overwrite=args.overwrite)
    rank_plot(result.scores, path=paths["ranks"], overwrite=args.overwrite)
    print(summary[["method", "n_predictions", "n_fallback", "median_l2", "median_pearson"]].to_string(index=False))
    print(f"results in {out}/ ({', '.join(OUTPUTS.values())})")
    return 0
