"""Benchmark: in-silico perturbation throughput, batched across cells vs one cell at a time.

What is measured
----------------
Cells x genes perturbed per second by ``cellshift.tasks.insilico_run.run_perturbations`` (the code
behind ``cellshift insilico``), deleting the same genes in the same cells two ways, in one run:

* ``batched``: cellshift's stream; cells sorted by length, each original followed by its variants,
  cut into batches of ``--batch-size`` sequences across cells;
* ``one cell at a time``: Geneformer's way; each cell with all of its variants is one forward pass
  (batch = 1 + number of genes the cell expresses), cells in input order.

Both paths compute the same embeddings (their per-cell shifts are compared); only the batching
differs. No null draws. Cells: control cells of the bundled Papalexi screen (short, ~200 tokens) and
Kang CD14+ monocytes (long, ~800 tokens); genes: the most expressed genes of each set.

Run
---
``PYTHONPATH=src python benchmarks/insilico.py [--model DIR]`` (a few minutes on 2 cores).
Results: ``benchmarks/results/insilico.json`` and ``insilico.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _markdown import markdown_table

from cellshift.datasets import kang2018_pbmc, papalexi2021
from cellshift.embed._inference import load_encoder
from cellshift.tasks.cell_tokens import load_cells, select_cells
from cellshift.tasks.insilico_plan import presence_matrix
from cellshift.tasks.insilico_run import RunPlan, run_perturbations

RESULTS = Path(__file__).parent / "results"


def plan_for(tokens: np.ndarray, batch_size: int) -> RunPlan:
    """Delete each of ``tokens``, no null draws, no states."""
    return RunPlan(
        perturbations={i: (int(t),) for i, t in enumerate(tokens)},
        operation="delete",
        shift=0.25,
        n_null=0,
        null_window=0.05,
        excluded=np.asarray(tokens),
        absent_pool=np.asarray(tokens),
        states={},
        affected=False,
        batch_size=batch_size,
        cell_layer=-2,
        gene_layer=-1,
        seed=0,
    )


def measure(name, data, state, model, n_cells, n_genes, batch_size) -> dict:
    """Time both ways on one data set; check that they agree."""
    source = load_cells(data, model)
    rows = select_cells(source.obs, state)[:n_cells]
    presence = presence_matrix(source, rows)
    counts = np.asarray(presence.sum(axis=0)).ravel()
    genes = np.argsort(-counts, kind="stable")[:n_genes]
    start = time.perf_counter()
    batched = run_perturbations(model, source, rows, plan_for(genes, batch_size)).per_cell
    batched_seconds = time.perf_counter() - start
    start = time.perf_counter()
    single = []
    for i, row in enumerate(rows):
        n_expressed = int(presence[[i], :][:, genes].toarray().sum())
        plan = plan_for(genes, n_expressed + 1)
        single.append(run_perturbations(model, source, np.array([row]), plan).per_cell)
    single_seconds = time.perf_counter() - start
    single = pd.concat(single, ignore_index=True)
    key = ["cell", "perturbation"]
    joined = batched.merge(single, on=key, suffixes=("_batched", "_single"))
    difference = float((joined["cosine_shift_batched"] - joined["cosine_shift_single"]).abs().max())
    n_perturbed = len(batched)
    return {
        "data": name,
        "cells": len(rows),
        "genes": len(genes),
        "cells_x_genes": n_perturbed,
        "mean_tokens": float(source.cells.lengths[rows].mean()),
        "batched_per_s": n_perturbed / batched_seconds,
        "one_cell_per_s": n_perturbed / single_seconds,
        "speed_up": single_seconds / batched_seconds,
        "max_shift_difference": difference,
    }


def main() -> None:
    """Run the benchmark and write the results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="/tmp/demo_run/model")
    parser.add_argument("--cells", type=int, default=64)
    parser.add_argument("--genes", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_encoder(args.model, "cpu")
    runs = [
        measure(
            "papalexi control",
            papalexi2021(),
            "target_gene=non-targeting",
            model,
            args.cells,
            args.genes,
            args.batch_size,
        ),
        measure(
            "kang CD14+ monocytes",
            kang2018_pbmc(),
            "cluster_id=CD14+ Monocytes",
            model,
            args.cells // 2,
            args.genes,
            args.batch_size,
        ),
    ]
    table = pd.DataFrame(runs)
    print(table.to_string(index=False))
    environment = {
        "cpu_cores": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": vars(args),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "insilico.json").write_text(json.dumps({"runs": runs, "environment": environment}, indent=1))
    note = (
        f"\nDeleting the {args.genes} most expressed genes of the cells, one at a time, model `{args.model}` on the "
        f"CPU ({environment['cpu_cores']} torch threads, torch {torch.__version__}), {environment['date']}. "
        f"batched = cellshift (batches of {args.batch_size} sequences across cells, sorted by length); one cell at "
        "a time = each cell with its variants as one forward pass (Geneformer's InSilicoPerturber). "
        "max_shift_difference: largest difference of a per-cell cosine shift between the two ways.\n"
    )
    markdown = markdown_table(table, ".3g")
    (RESULTS / "insilico.md").write_text(f"# In-silico perturbation throughput\n\n{markdown}\n{note}")


if __name__ == "__main__":
    main()
