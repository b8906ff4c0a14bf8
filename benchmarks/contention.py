"""Benchmark: the distance engine and the tokenizer with and without a busy neighbour process.

What is measured
----------------
Wall seconds of one job in a fresh process, on a quiet machine and while ``--neighbours``
other processes each keep one CPU busy (a pure-Python loop, which is what a colleague's job on a
shared machine looks like to the scheduler). Jobs:

* ``score``: :func:`cellshift.analysis.score_perturbations` on the synthetic screen of
  ``distances.py`` (``--perturbations`` groups of 50-300 cells, ``--controls`` control cells,
  64 dimensions, 1,000 null draws per size bucket), one metric at a time (E-distance, cosine
  E-distance), with torch's default thread count (one per CPU) in three ways:
  ``fixed-1`` (``torch.set_num_threads(1)``), ``fixed-all`` (the engine keeps every thread: the
  behaviour before threads were matched to free CPUs) and ``adaptive`` (today: the engine lowers
  its threads to the CPUs other programs leave free, :mod:`cellshift._cpus`).
* ``tokenize``: :func:`cellshift.tokenize.tokenize` of the generated 200,000-cell file of
  ``tokenizing.py`` with 1, 2 and ``auto`` workers (worker processes do not share barriers, so
  they need no adapting; this shows how they share the machine).

The generated file is read once before the runs (into the page cache). Each job runs
``--repeats`` times per load in alternating order; the table gives the median
seconds and the slowdown with neighbours (seconds with / seconds without).

Run
---
``.venv/bin/python benchmarks/contention.py`` (~15 min on 2 CPUs; the 200,000-cell file is made
by ``tokenizing.py`` first if missing, ~1 min). Results: ``benchmarks/results/contention.json``
and ``contention.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from _machine import git_state, machine_info
from _markdown import markdown_table

from cellshift._io import write_text_atomic

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = HERE / "_work" / "contention"
SCORE_MODES = ("fixed-1", "fixed-all", "adaptive")
TOKENIZE_MODES = ("workers-1", "workers-2", "workers-auto")
TOKENIZE_CELLS = 200_000
NEIGHBOUR = "while True: pass"


def run_score(mode: str, metric: str, perturbations: int, controls: int) -> float:
    """Seconds of ``score_perturbations`` for one metric, threads as ``mode`` says."""
    import torch
    from distances import make_screen

    import cellshift.metrics._threads as threads
    from cellshift.analysis import score_perturbations

    if mode == "fixed-1":
        torch.set_num_threads(1)
    if mode == "fixed-all":
        threads.free_cpus = lambda: torch.get_num_threads()  # the engine before it looked at the machine
    adata = make_screen(perturbations, controls, 64)
    started = time.perf_counter()
    score_perturbations(
        adata, embedding="X_emb", perturbation_key="perturbation", control="control", metrics=[metric], min_cells=2
    )
    return time.perf_counter() - started


def run_tokenize(mode: str) -> float:
    """Seconds of tokenising the generated file with the workers ``mode`` names."""
    from tokenizing import synthetic_path

    from cellshift.tokenize import tokenize

    workers = mode.removeprefix("workers-")
    out = WORK / "corpus"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    tokenize(
        synthetic_path(TOKENIZE_CELLS), out, min_genes=0, workers=workers if workers == "auto" else int(workers),
        progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def measure(job: str, mode: str, neighbours: int, args) -> float:
    """Run one job in a fresh process while ``neighbours`` busy processes run; return its seconds."""
    busy = [subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) for _ in range(neighbours)]
    try:
        time.sleep(0.5 if busy else 0.0)
        command = [sys.executable, __file__, "--one", job, mode, *map(str, (args.perturbations, args.controls))]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return float(done.stdout.strip().splitlines()[-1])
    finally:
        for process in busy:
            process.kill()
            process.wait()


def jobs(args) -> list[tuple[str, str]]:
    score = [(f"score {metric}", mode) for metric in ("edistance", "cosine_edistance") for mode in SCORE_MODES]
    return score + [("tokenize", mode) for mode in TOKENIZE_MODES]


def summarise(runs: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(runs)
    table = frame.pivot_table(
        index=["job", "mode"], columns="neighbours", values="seconds", aggfunc="median", sort=False
    )
    table.columns = [f"seconds, {n} busy neighbour(s)" for n in table.columns]
    table["slowdown"] = table.iloc[:, 1] / table.iloc[:, 0]
    return table.reset_index()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--perturbations", type=int, default=500)
    parser.add_argument("--controls", type=int, default=10_000)
    parser.add_argument("--neighbours", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("JOB", "MODE"))
    parser.add_argument("sizes", nargs="*", type=int)
    args = parser.parse_args(argv)
    if args.one:
        job, mode = args.one
        if args.sizes:
            args.perturbations, args.controls = args.sizes
        seconds = run_tokenize(mode) if job == "tokenize" else run_score(mode, job.split()[1], *args.sizes)
        print(seconds)
        return
    from tokenizing import generate_synthetic

    WORK.mkdir(parents=True, exist_ok=True)
    generated = Path(generate_synthetic(TOKENIZE_CELLS)["path"])
    with generated.open("rb") as file:  # into the page cache, so that no run pays the first read from disk
        while file.read(2**26):
            pass
    runs = []
    for repeat in range(args.repeats):
        for job, mode in jobs(args):
            loads = (0, args.neighbours) if repeat % 2 == 0 else (args.neighbours, 0)
            for neighbours in loads:
                seconds = measure(job, mode, neighbours, args)
                runs.append({"job": job, "mode": mode, "neighbours": neighbours, "repeat": repeat, "seconds": seconds})
                print(f"{job:28s} {mode:12s} neighbours={neighbours}: {seconds:6.1f} s", flush=True)
    table = summarise(runs)
    report = {
        "machine": machine_info(("numpy", "torch", "numba")),
        "code": git_state(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k not in ("one", "sizes")},
        "runs": runs,
        "medians": table.to_dict(orient="records"),
    }
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "contention.json", json.dumps(report, indent=2))
    notes = (
        f"\n\n{report['machine']['cpu_count']} CPUs ({report['machine']['cpu_model']}); screen of "
        f"{args.perturbations} perturbations + {args.controls:,} controls; tokenize: {TOKENIZE_CELLS:,} generated "
        f"cells; median of {args.repeats} runs; {report['date']}. Neighbour: a process running `{NEIGHBOUR}`."
    )
    write_text_atomic(RESULTS / "contention.md", markdown_table(table, ".2f") + notes + "\n")
    print(markdown_table(table, ".2f"))
    print(f"median of {statistics.median([r['seconds'] for r in runs]):.1f} s per run")


if __name__ == "__main__":
    main()
