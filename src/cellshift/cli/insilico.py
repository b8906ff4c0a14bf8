"""``cellshift insilico``: perturb genes in silico in chosen cells and rank them by how far they move the cells.

Runs :func:`cellshift.tasks.insilico_perturb` and writes into ``--out``: ``shifts.csv`` (per gene:
mean cosine shift and shift toward each state, spread, cells, rank-matched null, rank-sum p and
BH FDR), ``per_cell.csv``, ``directions.csv`` (mean embedding change per gene and null draw),
``affected.csv`` (with ``--affected``), ``skipped.csv`` and ``shifts.png``. Finished chunks of
genes are kept in ``--out/parts/``: the same command started again resumes there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cellshift._io import check_model_dir, write_csv_atomic
from cellshift._pretrained import model_argument
from cellshift.cli._common import check_outputs, comma_list, read_counts
from cellshift.plotting.insilico import top_shifts
from cellshift.tasks.insilico import InsilicoSettings, insilico_perturb
from cellshift.tasks.perturbation_ops import OPERATIONS

TABLES = ("shifts", "per_cell", "directions", "affected", "skipped")
FIGURE = "shifts.png"
DEFAULTS = InsilicoSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift insilico``."""
    parser.add_argument("input", help="raw-count .h5ad, or a corpus directory tokenised with the model's gene table")
    parser.add_argument(
        "--model", required=True, type=model_argument, help="model directory (cellshift pretrain / finetune)"
    )
    genes = parser.add_mutually_exclusive_group(required=True)
    genes.add_argument("--genes", type=comma_list, help="comma-separated symbols or Ensembl IDs")
    genes.add_argument("--all-expressed", action="store_true", help="every gene expressed in the chosen cells")
    parser.add_argument("--operation", choices=OPERATIONS, default=DEFAULTS.operation)
    bounds = InsilicoSettings.BOUNDS
    parser.add_argument(
        "--shift", type=bounds["shift"].parse, default=DEFAULTS.shift, help="inhibit/activate: quantile of ranks"
    )
    parser.add_argument(
        "--combos", type=bounds["combos"].parse, default=DEFAULTS.combos, help="perturb every combination of N genes"
    )
    parser.add_argument("--cells", default=None, help="obs_key=value: the cells to perturb (default: all)")
    parser.add_argument("--start-state", default=None, help="obs_key=value: perturb these cells")
    parser.add_argument("--goal-state", default=None, help="obs_key=value: measure the shift toward these cells")
    parser.add_argument("--alt-states", type=comma_list, default=[], help="comma-separated obs_key=value states")
    parser.add_argument(
        "--null", type=bounds["n_null"].parse, default=DEFAULTS.n_null, help="rank-matched null draws per cell"
    )
    parser.add_argument(
        "--null-window",
        type=bounds["null_window"].parse,
        default=DEFAULTS.null_window,
        help="rank window of the null",
    )
    parser.add_argument("--affected", action="store_true", help="also the shift of every other gene's embedding")
    parser.add_argument(
        "--max-cells",
        type=bounds["max_cells"].parse,
        default=None,
        help="seeded subsample of the cells and of each state",
    )
    parser.add_argument(
        "--batch-size", type=bounds["batch_size"].parse, default=DEFAULTS.batch_size, help="sequences per forward pass"
    )
    parser.add_argument(
        "--max-passes", type=bounds["max_passes"].parse, default=DEFAULTS.max_passes, help="refuse runs encoding more"
    )
    parser.add_argument(
        "--chunk-size", type=bounds["chunk_size"].parse, default=DEFAULTS.chunk_size, help="genes per resumable chunk"
    )
    parser.add_argument("--layer", default=None, help="layer of the .h5ad with raw counts (default: X)")
    parser.add_argument("--device", default=None, help="default: a GPU when visible, else the CPU")
    parser.add_argument("--seed", type=bounds["seed"].parse, default=DEFAULTS.seed)
    parser.add_argument("--out", required=True, help="folder for the tables and figure")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift insilico``."""
    out = Path(args.out)
    check_outputs([out / name for name in [*(f"{t}.csv" for t in TABLES), FIGURE]], args.overwrite)
    check_model_dir(args.model, option="--model")
    settings = InsilicoSettings(
        operation=args.operation,
        shift=args.shift,
        combos=args.combos,
        n_null=args.null,
        null_window=args.null_window,
        affected=args.affected,
        max_cells=args.max_cells,
        batch_size=args.batch_size,
        max_passes=args.max_passes,
        chunk_size=args.chunk_size,
        seed=args.seed,
    )
    result = insilico_perturb(
        _read(args.input, args.layer),
        args.model,
        genes=None if args.all_expressed else args.genes,
        cells=args.cells,
        start_state=args.start_state,
        goal_state=args.goal_state,
        alt_states=args.alt_states,
        settings=settings,
        checkpoint_dir=out / "parts",
        device=args.device,
        progress=not args.quiet,
    )
    for name in TABLES:
        table = getattr(result, name)
        if table is not None:
            write_csv_atomic(table, out / f"{name}.csv", args.overwrite)
    measure = "shift_to_goal" if args.goal_state else "cosine_shift"
    top_shifts(result.shifts, out / FIGURE, measure=measure, overwrite=args.overwrite)
    _report(result, measure, out)
    return 0


def _read(path: str, layer: str | None):
    """An .h5ad (its ``layer`` as counts) or a corpus directory, passed on as a path."""
    return path if Path(path).is_dir() else read_counts(path, layer)


def _report(result, measure: str, out: Path) -> None:
    """Print the top genes and what was skipped."""
    columns = ["gene", "n_cells", f"{measure}_mean", f"{measure}_null_mean", f"{measure}_fdr"]
    print(result.shifts[columns].head(10).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if len(result.skipped):
        reasons = result.skipped["reason"].value_counts().to_dict()
        print(f"{len(result.skipped)} genes skipped ({reasons}); see skipped.csv")
    print(f"{result.n_sequences:,} sequences encoded; results in {out}/")
