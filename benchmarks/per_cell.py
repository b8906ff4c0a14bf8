"""Per-cell perturbation scores side by side with pertpy's Mixscape on the bundled Papalexi screen.

Mixscape was introduced on this screen (Papalexi et al. 2021, THP-1 ECCITE-seq knock-outs); the
bundled copy keeps 299 of its genes. Both methods call each perturbed cell perturbed or not:

- cellshift: :func:`cellshift.analysis.score_cells` in the PCA embedding of the counts
  (cross-fitted discriminant, conformal p-values from held-out controls, BH FDR 5%) and its
  Storey estimate of the responding fraction;
- Mixscape (pertpy 1.0, its tutorial's settings): perturbation signature against the 20 nearest
  control cells within each replicate (``split_by='bio_rep'``), then the per-target Gaussian
  mixture on the signature (``min_de_genes=5``).

Measured: per target, the fraction of cells called perturbed by each, their agreement (Cohen's
kappa over the target's cells), on-target knock-down (target counts per 10k in called vs not
called cells, for the 9 targets in the panel); a null screen (control cells relabelled into fake
perturbations of 20-400 cells, where every call is false) and the seconds of each method.

Writes ``benchmarks/results/per_cell.{json,md}``. Needs the ``bench`` extra (pertpy).

    PYTHONPATH=src python benchmarks/per_cell.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pertpy as pt
import scanpy as sc
from _machine import machine_info
from _markdown import markdown_table
from sklearn.metrics import cohen_kappa_score

from cellshift._io import write_text_atomic
from cellshift.analysis.cell_scores import score_cells, storey_responding_fraction
from cellshift.analysis.differential import counts_per_10k
from cellshift.datasets import papalexi2021
from cellshift.embed.registry import EmbedOptions, add_cell_embedding

RESULTS = Path(__file__).resolve().parent / "results"
KEY, CONTROL = "target_gene", "non-targeting"
FAKE_SIZES = (20, 50, 100, 200, 400)


def run_cellshift(adata: ad.AnnData, seed: int) -> tuple[pd.Series, float]:
    """Responder calls (bool per cell) of cellshift's per-cell score in the PCA of the counts; seconds of the scores."""
    key = add_cell_embedding(adata, "pca", EmbedOptions(seed=seed))
    start = time.perf_counter()
    score_cells(adata, embedding=key, perturbation_key=KEY, control=CONTROL, seed=seed)
    called = adata.obs["perturbation_response"].eq("responder")
    return called, time.perf_counter() - start


def run_mixscape(adata: ad.AnnData, seed: int) -> tuple[pd.Series, float]:
    """Knock-out calls (bool per cell) of pertpy's Mixscape, on log-normalised counts; seconds after the PCA."""
    data = adata.copy()
    sc.pp.normalize_total(data, target_sum=1e4)
    sc.pp.log1p(data)
    sc.pp.pca(data, n_comps=40, random_state=seed)
    start = time.perf_counter()
    mixscape = pt.tl.Mixscape()
    mixscape.perturbation_signature(data, KEY, CONTROL, split_by="bio_rep")
    mixscape.mixscape(data, KEY, CONTROL, layer="X_pert", random_state=seed)
    called = data.obs["mixscape_class_global"].astype(str).eq("KO")
    return called.set_axis(adata.obs_names), time.perf_counter() - start


def per_target(adata: ad.AnnData, calls: dict[str, pd.Series]) -> pd.DataFrame:
    """Per target: fraction called by each method, kappa, and knock-down in called vs not called cells."""
    per_10k = counts_per_10k(adata).toarray()
    labels = adata.obs[KEY].astype(str).to_numpy()
    rows = []
    for target in sorted(set(labels) - {CONTROL}):
        cells = labels == target
        row = {"target": target, "n_cells": int(cells.sum())}
        for name, called in calls.items():
            row[f"{name}_fraction"] = float(called[cells].mean())
        row["cellshift_storey"] = storey_responding_fraction(adata.obs["perturbation_pvalue"].to_numpy()[cells])
        row["kappa"] = _kappa(calls["cellshift"][cells], calls["mixscape"][cells])
        if target in adata.var_names:
            column = per_10k[:, adata.var_names.get_loc(target)]
            row["target_control"] = float(column[labels == CONTROL].mean())
            for name, called in calls.items():
                row[f"target_{name}_called"] = _mean_or_nan(column[cells & called.to_numpy()])
                row[f"target_{name}_not_called"] = _mean_or_nan(column[cells & ~called.to_numpy()])
        rows.append(row)
    return pd.DataFrame(rows)


def null_screen(adata: ad.AnnData, seed: int) -> pd.DataFrame:
    """Control cells relabelled into fake perturbations: cells called perturbed by each method (all false)."""
    controls = adata[adata.obs[KEY] == CONTROL].copy()
    order = np.random.default_rng(seed).permutation(controls.n_obs)
    labels = np.full(controls.n_obs, CONTROL, dtype=object)
    start = 0
    for size in FAKE_SIZES:
        labels[order[start : start + size]] = f"fake_{size}"
        start += size
    controls.obs[KEY] = labels
    calls = {"cellshift": run_cellshift(controls, seed)[0], "mixscape": run_mixscape(controls, seed)[0]}
    rows = []
    for size in FAKE_SIZES:
        cells = labels == f"fake_{size}"
        rows.append({"fake_group": size, **{f"{name}_called": int(c[cells].sum()) for name, c in calls.items()}})
    return pd.DataFrame(rows)


def _kappa(first: pd.Series, second: pd.Series) -> float:
    """Cohen's kappa of two boolean call vectors; NaN when both call one class only."""
    if first.nunique() == 1 and second.nunique() == 1:
        return float("nan")
    return float(cohen_kappa_score(first, second))


def _mean_or_nan(values: np.ndarray) -> float:
    """Mean, or NaN for no values."""
    return float(values.mean()) if values.size else float("nan")


def main() -> None:
    """Run both methods on the screen and on the null screen; write JSON and markdown."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    adata = papalexi2021()
    cellshift_calls, cellshift_seconds = run_cellshift(adata, args.seed)
    mixscape_calls, mixscape_seconds = run_mixscape(adata, args.seed)
    table = per_target(adata, {"cellshift": cellshift_calls, "mixscape": mixscape_calls})
    null = null_screen(adata, args.seed)
    perturbed = adata.obs[KEY].ne(CONTROL).to_numpy()
    summary = {
        "seconds_cellshift_scores": cellshift_seconds,
        "seconds_mixscape_signature_and_mixture": mixscape_seconds,
        "kappa_all_perturbed_cells": _kappa(cellshift_calls[perturbed], mixscape_calls[perturbed]),
    }
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(null.to_string(index=False))
    print(summary)
    RESULTS.mkdir(exist_ok=True)
    payload = {"settings": vars(args), "summary": summary, "targets": table.to_dict("records")}
    payload.update(null_screen=null.to_dict("records"), machine=machine_info(("pertpy", "scanpy", "scikit-learn")))
    write_text_atomic(RESULTS / "per_cell.json", json.dumps(payload, indent=2, default=str))
    text = f"# Per-cell calls: cellshift vs Mixscape (Papalexi)\n\n{markdown_table(table)}\n\n"
    text += f"Null screen (calls, all false):\n\n{markdown_table(null)}\n\n{summary}\n"
    write_text_atomic(RESULTS / "per_cell.md", text)


if __name__ == "__main__":
    main()
