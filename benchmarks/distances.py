"""Benchmark: cellshift's distance engine against pertpy's ``Distance`` on a synthetic screen.

What is measured
----------------
A screen of ``--perturbations`` groups (50-300 cells each, uniform) and ``--controls`` control
cells in ``--dims`` dimensions: control cells ``N(0, I)``, each perturbation ``N(mu_g, I)`` with
a random shift ``mu_g`` of length 0 to 1 (seeded). Both tools get the same rows, L2-normalised
per cell and stored as float32 in ``obsm["X_emb"]`` (cellshift normalises again, a no-op).

* ``cellshift screen``: :func:`cellshift.analysis.score_perturbations` on the whole screen, one
  metric at a time, all perturbations vs all control cells with the size-calibrated control null
  (``--n-null`` draws per size bucket; Wasserstein: 100 null draws, 5 size-matched draws).
* ``E-distance, subset``: the first ``--pertpy-perturbations`` perturbations and all control
  cells. pertpy: ``pt.tl.Distance("edistance", obsm_key="X_emb").onesided_distances(adata,
  groupby="perturbation", selected_group="control")`` (it first computes all pairwise distances
  of the subset, then the mean of each block). cellshift: the same values with
  :func:`cellshift.metrics.group_distance_sums` (no null, like pertpy), and
  ``score_perturbations`` with its null on the same subset.
  Agreement: pertpy's E-distance takes the within-group means over all ``n^2`` pairs (diagonal
  zeros included, a V-statistic); cellshift's over distinct pairs (U-statistic). The JSON
  compares pertpy with the V-statistic recomputed from cellshift's sums,
  ``2 C / (n m) - W_x / n^2 - W_y / m^2``: it must agree to float32 rounding.
* ``Wasserstein, subset``: the first ``--pertpy-wasserstein`` perturbations. pertpy: ``Distance(
  "wasserstein")`` (ott-jax Sinkhorn, squared Euclidean cost, each perturbation vs all control
  cells, entropic cost ``reg_ot_cost``). cellshift: ``score_perturbations(metrics=["wasserstein"])``
  (exact W1, 5 size-matched control draws, plus its null) and the values alone (the 5 exact
  assignments per perturbation, no null). Agreement: on the same size-matched pairs, pertpy's
  Sinkhorn value vs the exact optimal transport cost with the same squared Euclidean cost
  (:func:`cellshift.metrics.wasserstein_from_cost`); the relative gap is Sinkhorn's bias.
* ``matrix-multiply bound``: the float64 matrix products an E-distance pass cannot avoid
  (perturbed x control, control x control, each group with itself, in the same blocks), timed
  alone: the floor for any exact method that forms the distances.

Every part runs in a fresh subprocess (``distances.py --part NAME``) so that its peak RSS
(``ru_maxrss``) is its own; the table gives wall seconds, peak RSS and its growth over the
process after its imports (torch, anndata, cellshift; pertpy and jax for pertpy's parts), and ratios of the two tools
on the same subset measured in the same run. Threads: ``--threads`` for torch and BLAS of both
tools (pertpy's ``n_jobs`` too).

Run
---
``python benchmarks/distances.py`` with pertpy installed (``pip install -e ".[bench]"``; pertpy
is a benchmark-only dependency): about 15 minutes on 2 cores. ``--quick`` for a smoke test
(written to ``benchmarks/_work/``). Results: ``benchmarks/results/distances.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0


# --------------------------------------------------------------------------- data


def make_screen(n_perturbations: int, n_controls: int, dims: int, seed: int = SEED):
    """Synthetic screen as an AnnData: ``obs["perturbation"]`` and normalised ``obsm["X_emb"]``."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    sizes = rng.integers(50, 301, n_perturbations)
    blocks = [rng.normal(size=(n_controls, dims))]
    labels = [np.full(n_controls, "control", dtype=object)]
    for index, size in enumerate(sizes):
        direction = rng.normal(size=dims)
        shift = direction / np.linalg.norm(direction) * rng.uniform(0.0, 1.0)
        blocks.append(rng.normal(size=(size, dims)) + shift)
        labels.append(np.full(size, f"P{index:04d}", dtype=object))
    Z = np.vstack(blocks)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    obs = pd.DataFrame({"perturbation": np.concatenate(labels)})
    obs.index = obs.index.astype(str)
    adata = ad.AnnData(X=np.zeros((Z.shape[0], 0), dtype=np.float32), obs=obs)
    adata.obsm["X_emb"] = Z.astype(np.float32)
    return adata


def subset(adata, n_perturbations: int):
    """Control cells and the first ``n_perturbations`` perturbations."""
    labels = adata.obs["perturbation"].to_numpy()
    kept = ["control", *[f"P{index:04d}" for index in range(n_perturbations)]]
    return adata[np.isin(labels, kept)].copy()


def screen_args(args) -> tuple[int, int, int]:
    return args.perturbations, args.controls, args.dims


# --------------------------------------------------------------------------- parts (subprocesses)


def seconds_to_score(adata, metric: str, n_null: int) -> float:
    """Wall seconds of ``score_perturbations`` (one metric, with its null) on the screen."""
    from cellshift.analysis import score_perturbations

    started = time.perf_counter()
    score_perturbations(
        adata,
        embedding="X_emb",
        perturbation_key="perturbation",
        control="control",
        metrics=[metric],
        n_null=n_null,
        seed=SEED,
        min_cells=2,
    )
    return time.perf_counter() - started


def part_cellshift_screen(args) -> dict:
    adata = make_screen(*screen_args(args))
    result = {"cells": adata.n_obs, "perturbations": args.perturbations}
    for metric in ("edistance", "cosine_edistance", "wasserstein"):
        result[f"{metric}_seconds"] = seconds_to_score(adata, metric, args.n_null)
    return result


def part_cellshift_subset_edistance(args) -> dict:
    from cellshift.metrics import group_distance_sums

    adata = subset(make_screen(*screen_args(args)), args.pertpy_perturbations)
    Z, labels = adata.obsm["X_emb"], adata.obs["perturbation"].to_numpy()
    started = time.perf_counter()
    sums = group_distance_sums(Z, labels, "control")
    seconds = time.perf_counter() - started
    u_statistic = sums.edistance()
    n, m = sums.sizes.astype(float), float(sums.reference_size)
    v_statistic = 2 * sums.cross / (n * m) - sums.within / n**2 - sums.reference_within / m**2
    return {
        "cells": adata.n_obs,
        "seconds": seconds,
        "with_null_seconds": seconds_to_score(adata, "edistance", args.n_null),
        "u_statistic": dict(zip(map(str, sums.groups), u_statistic.tolist(), strict=True)),
        "v_statistic": dict(zip(map(str, sums.groups), v_statistic.tolist(), strict=True)),
    }


def part_pertpy_edistance(args) -> dict:
    import pertpy as pt

    adata = subset(make_screen(*screen_args(args)), args.pertpy_perturbations)
    distance = pt.tl.Distance("edistance", obsm_key="X_emb")
    started = time.perf_counter()
    values = distance.onesided_distances(adata, groupby="perturbation", selected_group="control", n_jobs=args.threads)
    seconds = time.perf_counter() - started
    values = values.drop("control")
    return {"cells": adata.n_obs, "seconds": seconds, "values": {str(k): float(v) for k, v in values.items()}}


def part_cellshift_subset_wasserstein(args) -> dict:
    from cellshift.analysis.scoring import WASSERSTEIN_DRAWS
    from cellshift.metrics import wasserstein

    adata = subset(make_screen(*screen_args(args)), args.pertpy_wasserstein)
    Z, labels = adata.obsm["X_emb"].astype(np.float64), adata.obs["perturbation"].to_numpy()
    controls = Z[labels == "control"]
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    for group in np.unique(labels[labels != "control"]):
        X = Z[labels == group]
        for _ in range(WASSERSTEIN_DRAWS):
            wasserstein(X, controls[rng.choice(len(controls), len(X), replace=False)])
    values_seconds = time.perf_counter() - started
    with_null_seconds = seconds_to_score(adata, "wasserstein", args.n_null)
    return {"cells": adata.n_obs, "values_seconds": values_seconds, "with_null_seconds": with_null_seconds}


def part_pertpy_wasserstein(args) -> dict:
    import pertpy as pt
    from scipy.spatial.distance import cdist

    from cellshift.metrics import wasserstein_from_cost

    adata = subset(make_screen(*screen_args(args)), args.pertpy_wasserstein)
    distance = pt.tl.Distance("wasserstein", obsm_key="X_emb")
    started = time.perf_counter()
    distance.onesided_distances(adata, groupby="perturbation", selected_group="control", n_jobs=args.threads)
    seconds = time.perf_counter() - started

    # Agreement on the same size-matched pairs: Sinkhorn (pertpy) vs exact OT, squared Euclidean cost.
    Z, labels = adata.obsm["X_emb"].astype(np.float64), adata.obs["perturbation"].to_numpy()
    controls = Z[labels == "control"]
    rng = np.random.default_rng(SEED)
    pairs = []
    for group in np.unique(labels[labels != "control"]):
        X = Z[labels == group]
        Y = controls[rng.choice(len(controls), len(X), replace=False)]
        sinkhorn = float(distance.metric_fct(X, Y))
        exact = wasserstein_from_cost(cdist(X, Y, "sqeuclidean"))
        pairs.append({"perturbation": str(group), "sinkhorn": sinkhorn, "exact": exact})
    return {"cells": adata.n_obs, "seconds": seconds, "matched_pairs": pairs}


def part_matmul_bound(args) -> dict:
    """Only the float64 products of one E-distance pass (augmented rows, same block sizes)."""
    import pandas as pd
    import torch

    from cellshift.metrics._pairwise import augment_left, augment_right, row_blocks, rows_per_block

    adata = make_screen(*screen_args(args))
    Z = torch.from_numpy(adata.obsm["X_emb"].astype(np.float64))
    labels = adata.obs["perturbation"].to_numpy()
    controls, perturbed = Z[labels == "control"], Z[labels != "control"]
    started = time.perf_counter()
    for X, Y in [(perturbed, controls), (controls, controls)]:
        right = augment_right(Y)
        for start, stop in row_blocks(len(X), rows_per_block(None, len(Y))):
            augment_left(X[start:stop]) @ right.T
    codes, names = pd.factorize(labels)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    for code, stop in enumerate(np.cumsum(sizes)):
        if names[code] != "control":
            X = Z[order[stop - sizes[code] : stop]]
            augment_left(X) @ augment_right(X).T
    return {"seconds": time.perf_counter() - started}


PARTS = {
    "cellshift_screen": part_cellshift_screen,
    "matmul_bound": part_matmul_bound,
    "cellshift_subset_edistance": part_cellshift_subset_edistance,
    "pertpy_edistance": part_pertpy_edistance,
    "cellshift_subset_wasserstein": part_cellshift_subset_wasserstein,
    "pertpy_wasserstein": part_pertpy_wasserstein,
}


def run_part(name: str, args) -> dict:
    """Run one part in a fresh interpreter; return its JSON with ``peak_rss_mib``."""
    command = [sys.executable, __file__, "--part", name, *sys.argv[1:]]
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads)}
    environment["MKL_NUM_THREADS"] = str(args.threads)
    environment["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'}"
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"part {name} failed:\n{completed.stderr[-4000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"    {json.dumps({k: v for k, v in result.items() if not isinstance(v, dict | list)})}", flush=True)
    return result


# --------------------------------------------------------------------------- summary


def summarise(parts: dict, args) -> dict:
    """Ratios and agreement from the parts."""
    full, ours_e, theirs_e = parts["cellshift_screen"], parts["cellshift_subset_edistance"], parts["pertpy_edistance"]
    ours_w, theirs_w = parts["cellshift_subset_wasserstein"], parts["pertpy_wasserstein"]
    differences = [abs(value - theirs_e["values"][key]) for key, value in ours_e["v_statistic"].items()]
    gaps = [(pair["sinkhorn"] - pair["exact"]) / pair["exact"] for pair in theirs_w["matched_pairs"]]
    pertpy_screen = theirs_e["seconds"] / args.pertpy_perturbations * args.perturbations
    pertpy_screen_w = theirs_w["seconds"] / args.pertpy_wasserstein * args.perturbations
    return {
        "edistance_speedup_subset": theirs_e["seconds"] / ours_e["seconds"],
        "edistance_speedup_subset_with_null": theirs_e["seconds"] / ours_e["with_null_seconds"],
        "edistance_pertpy_extrapolated_screen_seconds": pertpy_screen,
        "edistance_speedup_screen_with_null_vs_extrapolated": pertpy_screen / full["edistance_seconds"],
        "edistance_max_abs_difference_vs_pertpy": max(differences),
        "edistance_screen_vs_matmul_bound": full["edistance_seconds"] / parts["matmul_bound"]["seconds"],
        "wasserstein_speedup_values": theirs_w["seconds"] / ours_w["values_seconds"],
        "wasserstein_speedup_with_null": theirs_w["seconds"] / ours_w["with_null_seconds"],
        "wasserstein_pertpy_extrapolated_screen_seconds": pertpy_screen_w,
        "wasserstein_speedup_screen_with_null_vs_extrapolated": pertpy_screen_w / full["wasserstein_seconds"],
        "sinkhorn_relative_gap_median": float(np.median(gaps)),
        "sinkhorn_relative_gap_max": float(np.max(np.abs(gaps))),
        "memory_ratio_edistance_subset": theirs_e["rss_growth_mib"] / ours_e["rss_growth_mib"],
    }


TABLE_ROWS = [  # (label, part, seconds key, which perturbations)
    ("E-distance: pertpy `onesided_distances`", "pertpy_edistance", "seconds", "subset"),
    ("E-distance: cellshift `group_distance_sums`", "cellshift_subset_edistance", "seconds", "subset"),
    ("E-distance: cellshift `score_perturbations` + null", "cellshift_subset_edistance", "with_null_seconds", "subset"),
    ("Wasserstein: pertpy (Sinkhorn vs all controls)", "pertpy_wasserstein", "seconds", "wasserstein"),
    ("Wasserstein: cellshift exact, 5 matched draws", "cellshift_subset_wasserstein", "values_seconds", "wasserstein"),
    ("Wasserstein: cellshift + null", "cellshift_subset_wasserstein", "with_null_seconds", "wasserstein"),
    ("E-distance: cellshift `score_perturbations` (+ null)", "cellshift_screen", "edistance_seconds", "screen"),
    ("cosine E-distance: cellshift (+ null)", "cellshift_screen", "cosine_edistance_seconds", "screen"),
    ("Wasserstein: cellshift (+ null)", "cellshift_screen", "wasserstein_seconds", "screen"),
    ("float64 matrix products of one E-distance pass (bound)", "matmul_bound", "seconds", "screen"),
]  # fmt: skip


def markdown(parts: dict, summary: dict, args) -> str:
    """The README table and the sentences under it."""
    groups = {"subset": args.pertpy_perturbations, "wasserstein": args.pertpy_wasserstein, "screen": args.perturbations}
    table = [
        f"| {label} | {groups[which]} | {parts[part][key]:.2f} | {parts[part]['rss_growth_mib']:.0f} "
        f"| {parts[part]['peak_rss_mib']:.0f} |"
        for label, part, key, which in TABLE_ROWS
    ]
    s = summary
    full = parts["cellshift_screen"]
    lines = [
        f"Synthetic screen: {args.perturbations} perturbations of 50-300 cells, {args.controls:,} control cells, "
        f"{args.dims} dimensions; {args.threads} thread(s); null: {args.n_null} draws per size bucket. "
        "Each row is a fresh process.",
        "",
        "| what | perturbations (+ all controls) | seconds | memory growth (MiB) | peak RSS (MiB) |",
        "|---|---|---|---|---|",
        *table,
        "",
        f"- E-distance: cellshift is **{s['edistance_speedup_subset']:.0f}x** faster than pertpy on the same subset "
        f"({s['edistance_speedup_subset_with_null']:.0f}x with its control null, which pertpy does not compute), "
        f"with {s['memory_ratio_edistance_subset']:.0f}x less memory growth. Values agree to "
        f"{s['edistance_max_abs_difference_vs_pertpy']:.1e} (pertpy's V-statistic recomputed from cellshift's sums).",
        f"- Whole screen: pertpy, extrapolated linearly from the subset, would take "
        f"{s['edistance_pertpy_extrapolated_screen_seconds']:.0f} s (and its all-pairs matrix would not fit in "
        f"memory); cellshift scores it with the null in {full['edistance_seconds']:.1f} s, "
        f"{s['edistance_screen_vs_matmul_bound']:.1f}x the time of its matrix products alone.",
        f"- Wasserstein: cellshift's exact values are {s['wasserstein_speedup_values']:.0f}x faster than pertpy's "
        f"Sinkhorn on the same subset; with its null (a fixed cost of 100 draws per size bucket, shared by all "
        f"perturbations) {s['wasserstein_speedup_with_null']:.1f}x. The whole screen with the null takes "
        f"{full['wasserstein_seconds']:.0f} s, against {s['wasserstein_pertpy_extrapolated_screen_seconds']:.0f} s "
        f"for pertpy extrapolated from the subset "
        f"({s['wasserstein_speedup_screen_with_null_vs_extrapolated']:.0f}x). On the same size-matched pairs, "
        f"pertpy's entropic cost is off the exact optimum by a median of {100 * s['sinkhorn_relative_gap_median']:.1f}%"
        f" (max {100 * s['sinkhorn_relative_gap_max']:.1f}%).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--perturbations", type=int, default=1000)
    parser.add_argument("--controls", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--pertpy-perturbations", type=int, default=50)
    parser.add_argument("--pertpy-wasserstein", type=int, default=5)
    parser.add_argument("--n-null", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, written to benchmarks/_work/")
    parser.add_argument("--render", action="store_true", help="rewrite the table from results/distances.json only")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render:
        record = json.loads((HERE / "results" / "distances.json").read_text())
        settings = argparse.Namespace(**record["settings"])
        record["summary"] = summarise(record["parts"], settings)
        (HERE / "results" / "distances.json").write_text(json.dumps(record, indent=2))
        (HERE / "results" / "distances.md").write_text(markdown(record["parts"], record["summary"], settings))
        print(markdown(record["parts"], record["summary"], settings))
        return
    if args.quick:
        args.perturbations, args.controls, args.pertpy_perturbations, args.pertpy_wasserstein = 20, 1000, 4, 2
        args.n_null = 50

    if args.part:
        import anndata  # noqa: F401 - imported before the baseline memory is read
        import torch

        import cellshift.analysis  # noqa: F401

        if args.part.startswith("pertpy"):
            import pertpy  # noqa: F401
        torch.set_num_threads(args.threads)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result = PARTS[args.part](args)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["rss_growth_mib"] = result["peak_rss_mib"] - baseline
        print(json.dumps(result))
        return

    parts = {name: run_part(name, args) for name in PARTS}
    summary = summarise(parts, args)
    versions = {}
    for package in ("cellshift", "pertpy", "torch", "numpy", "scipy", "ott-jax", "jax", "scikit-learn"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    out = HERE / ("_work" if args.quick else "results")
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "settings": {k: v for k, v in vars(args).items() if k != "part"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "versions": versions,
        "summary": summary,
        "parts": parts,
    }
    (out / "distances.json").write_text(json.dumps(record, indent=2))
    (out / "distances.md").write_text(markdown(parts, summary, args))
    print(markdown(parts, summary, args))


if __name__ == "__main__":
    main()
