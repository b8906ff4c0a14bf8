"""Benchmark: predicting unseen knock-downs from gene embeddings on two real screens (issue 5).

What is measured
----------------
``cellshift.analysis.response.benchmark`` (the code behind ``cellshift predict-benchmark``) on:

* ``papalexi2021``: the bundled Papalexi et al. 2021 ECCITE-seq screen (THP-1, 25 knock-outs,
  299-gene panel), pseudobulk changes per ``bio_rep`` (3 replicates) vs ``non-targeting`` cells,
  perturbations with >= 20 cells, experimental-error bound from 20 bootstrap draws of cells;
* ``wang2025_microglia``: the Wang et al. 2025 CRISPRi screen in human primary microglia, 205
  targets x 12,541 genes of glmGamPoi log2 fold-changes, values clipped at +-10 masked. It is read
  from ``../shared/data/perturbseq/`` (no licence: never copied into the project); skipped when
  absent.

Methods: ``no_change``, ``training_mean``, ``linear`` (Ahlmann-Eltze et al. 2024) and a k-NN
regressor (StandardScaler -> PCA(<=100) -> kNN, k by 5-fold CV) on each gene embedding: ``pca``
(control cells' gene loadings for Papalexi; PCA of each split's training changes for the
microglia), ``grn`` (DoRothEA A-C + TRRUST), ``family`` (HGNC gene groups), ``random``; ``model``
when ``--model MODEL_DIR`` is given (contexts: Papalexi's control cells; for the microglia, the
CD14+ monocytes of the bundled Kang PBMCs unless ``--model-cells`` names other cells). 5 seeded
splits of the perturbations; every perturbation is predicted once, by models that never saw it.

Reported per data set: median L2 per method (the primary metric), median Pearson, fall-backs,
how many targets each embedding covers, and for each embedding the paired comparison with the
training mean over the predictions it made itself (not fall-backs): how often its L2 is lower,
the mean gain, and a two-sided Wilcoxon signed-rank p-value.

Run
---
``.venv/bin/python benchmarks/response.py [--model MODEL_DIR] [--model-cells CELLS.h5ad]``
(~10 min on 2 busy cores). Results: ``benchmarks/results/response.json`` and ``response.md``;
figures and tidy tables in ``benchmarks/_work/response/<data set>/`` (not tracked).
"""

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

import cellshift
from cellshift import datasets
from cellshift._io import write_text_atomic
from cellshift.analysis.response import DEFAULT_EMBEDDINGS, benchmark
from cellshift.plotting.response import l2_boxplot, rank_plot

ROOT = Path(__file__).resolve().parents[1]
MICROGLIA = ROOT.parent / "shared" / "data" / "perturbseq" / "wang2025_microglia_crispri_pseudobulk_de.h5ad"
BASELINE_NAMES = ("no_change", "training_mean", "linear", "experimental_error")


def paired_with_mean(scores: pd.DataFrame) -> pd.DataFrame:
    """Each embedding against the training mean on the same split and perturbation, its own predictions only."""
    l2 = scores[scores["metric"] == "l2"]
    mean = l2[l2["method"] == "training_mean"].set_index(["split", "perturbation"])["value"]
    rows = []
    for method, group in l2[~l2["method"].isin(BASELINE_NAMES)].groupby("method"):
        own = group[~group["fallback"]]
        gain = mean.loc[list(zip(own["split"], own["perturbation"], strict=True))].to_numpy() - own["value"].to_numpy()
        nonzero = gain[gain != 0]
        rows.append(
            {
                "method": method,
                "n_own_predictions": len(own),
                "win_rate_vs_mean": float((gain > 0).mean()) if len(gain) else np.nan,
                "mean_l2_gain_vs_mean": float(gain.mean()) if len(gain) else np.nan,
                "median_l2_own": float(own["value"].median()) if len(own) else np.nan,
                "median_l2_mean_same": float(np.median(gain + own["value"].to_numpy())) if len(own) else np.nan,
                "wilcoxon_p": float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) >= 5 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def run_case(name: str, adata: ad.AnnData, options: dict, work: Path) -> dict:
    start = time.perf_counter()
    result = benchmark(adata, **options)
    seconds = time.perf_counter() - start
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    result.scores.to_csv(folder / "scores.csv", index=False)
    result.summary.to_csv(folder / "summary.csv", index=False)
    l2_boxplot(result.scores, title=name, path=folder / "l2_boxplot.png", overwrite=True)
    rank_plot(result.scores, title=name, path=folder / "rank_plot.png", overwrite=True)
    ranks = result.ranks.pivot(index="method", columns="split", values="rank")
    return {
        "seconds": round(seconds, 1),
        "settings": result.settings,
        "summary": result.summary.to_dict(orient="records"),
        "coverage": result.coverage.to_dict(orient="records"),
        "paired_with_mean": paired_with_mean(result.scores).to_dict(orient="records"),
        "ranks_per_split": {method: [int(r) for r in row] for method, row in ranks.iterrows()},
        "fits": result.fits.to_dict(orient="records"),
    }


def markdown(results: dict, meta: dict) -> str:
    lines = ["# Response prediction: unseen knock-downs from gene embeddings", ""]
    for name, case in results.items():
        settings = case["settings"]
        lines += [
            f"## {name}",
            "",
            f"{settings['n_perturbations']} perturbations x {settings['n_genes']} genes ({settings['source']}), "
            f"{settings['n_splits']} splits, seed {settings['seed']}, regressor {settings['regressor']}, "
            f"{settings['n_masked']} masked values; {case['seconds']} s."
            + ("" if settings["n_bootstrap"] else " No experimental-error bound: changes alone come without cells."),
            "",
            "| method | median L2 | mean L2 | median Pearson | fall-backs | targets covered |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        covered = {row["method"]: row["n_covered"] for row in case["coverage"]}
        for row in case["summary"]:
            cover = covered.get(row["method"])
            cover = "" if cover is None else f"{cover} / {settings['n_perturbations']}"
            lines.append(
                f"| {row['method']} | {row['median_l2']:.3f} | {row['mean_l2']:.3f} | {_fmt(row['median_pearson'])} "
                f"| {row['n_fallback']} | {cover} |"
            )
        lines += [
            "",
            "Each embedding against the training mean on the same perturbations (its own predictions, no fall-backs):",
            "",
            "| embedding | predictions | median L2 (embedding) | median L2 (mean, same) | L2 lower than mean "
            "| mean gain | Wilcoxon p |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in case["paired_with_mean"]:
            lines.append(
                f"| {row['method']} | {row['n_own_predictions']} | {_fmt(row['median_l2_own'])} "
                f"| {_fmt(row['median_l2_mean_same'])} | {_fmt(100 * row['win_rate_vs_mean'], 0)}% "
                f"| {_fmt(row['mean_l2_gain_vs_mean'])} | {_fmt(row['wilcoxon_p'])} |"
            )
        ranks = case["ranks_per_split"]
        lines += ["", "Rank by median L2 in each split: " + "; ".join(f"{m} {r}" for m, r in ranks.items()), ""]
        lines += [verdict(case), ""]
    lines += [
        f"{meta['cpu_count']} CPU cores, Python {meta['python']}, cellshift {meta['cellshift']}; {meta['date']}. "
        "L2 = norm of (predicted - measured change) over the measured genes of a test perturbation; "
        "gain = L2(training mean) - L2(embedding), positive = embedding better.",
        "",
    ]
    return "\n".join(lines)


def verdict(case: dict) -> str:
    """Which method wins, and whether any embedding beats the training mean, in one paragraph."""
    summary = [row for row in case["summary"] if row["method"] != "experimental_error"]
    best = min(summary, key=lambda row: row["median_l2"])
    mean = next(row["median_l2"] for row in summary if row["method"] == "training_mean")
    lower = [
        f"{r['method']} ({r['median_l2']:.3f})"
        for r in summary
        if r["method"] in _embeddings(case) and r["median_l2"] < mean
    ]
    better = [
        f"{r['method']} (p = {_fmt(r['wilcoxon_p'])})"
        for r in case["paired_with_mean"]
        if r["mean_l2_gain_vs_mean"] > 0 and r["wilcoxon_p"] < 0.05
    ]
    return (
        f"Verdict: lowest median L2 among predictions: {best['method']} ({best['median_l2']:.3f}); training mean "
        f"{mean:.3f}. Embeddings with a lower median L2 than the training mean: {', '.join(lower) or 'none'}. "
        "Embeddings significantly better than the training mean on their own predictions (mean gain > 0, "
        f"Wilcoxon p < 0.05): {', '.join(better) or 'none'}."
    )


def _embeddings(case: dict) -> list[str]:
    return list(case["settings"]["embeddings"])


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:.1e}" if 0 < abs(value) < 10**-digits else f"{value:.{digits}f}"


def monocytes() -> ad.AnnData:
    kang = datasets.kang2018_pbmc()
    return kang[kang.obs["cluster_id"].astype(str).str.startswith("CD14")].copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model checkpoint: adds the model embedding")
    parser.add_argument("--model-cells", default=None, help="cells for the microglia model embedding")
    parser.add_argument("--microglia", default=str(MICROGLIA), help="path of the microglia deltas .h5ad")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / "_work" / "response"))
    args = parser.parse_args()
    embeddings = [*DEFAULT_EMBEDDINGS, *(["model"] if args.model else [])]
    common = {"embeddings": embeddings, "model_dir": args.model, "n_splits": args.splits, "seed": args.seed}
    work = Path(args.work)

    results = {}
    papalexi = {"perturbation_key": "target_gene", "control": "non-targeting", "batch_key": "bio_rep"}
    results["papalexi2021"] = run_case("papalexi2021", datasets.papalexi2021(), papalexi | common, work)
    if Path(args.microglia).exists():
        cells = None
        if args.model:
            cells = ad.read_h5ad(args.model_cells) if args.model_cells else monocytes()
        deltas = ad.read_h5ad(args.microglia)
        results["wang2025_microglia"] = run_case("wang2025_microglia", deltas, common | {"model_cells": cells}, work)
    else:
        print(f"skipped the microglia screen: {args.microglia} is absent")

    meta = {
        "cpu_count": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "cellshift": cellshift.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": args.model,
    }
    out = Path(args.out)
    report = json.dumps({"meta": meta, "results": results}, indent=1, default=str)
    write_text_atomic(out / "response.json", report + "\n")
    write_text_atomic(out / "response.md", markdown(results, meta))
    print(markdown(results, meta))


if __name__ == "__main__":
    main()
