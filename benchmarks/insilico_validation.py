"""Real-data checks of in-silico perturbation with a pre-trained model (``cellshift demo``'s by default).

1. Papalexi et al. 2021 (THP-1 CRISPR knock-outs): delete each targeted gene of the panel in silico
   in control cells; compare the direction of the mean cell-embedding change with the real
   knock-out cells' centroid shift from control (cosine), against deleting random expressed genes
   of the same rank in the same cells (the null draws).
2. Kang et al. 2018 PBMCs: over-express genes in CD14+ monocytes with B cells as the goal state;
   where do the B-cell markers rank among the candidate genes?

Writes ``benchmarks/results/insilico_validation.{json,md}``.

    PYTHONPATH=src python benchmarks/insilico_validation.py [--model DIR] [--cells N] [--null N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from _markdown import markdown_table

from cellshift.datasets import kang2018_pbmc, papalexi2021
from cellshift.embed.model_cells import embed_model
from cellshift.tasks import InsilicoSettings, insilico_perturb

RESULTS = Path(__file__).resolve().parent / "results"
B_MARKERS = ["CD79A", "CD79B", "MS4A1", "CD19", "IGHM"]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def papalexi(model: str, n_cells: int, n_null: int, seed: int) -> pd.DataFrame:
    """Per target: cosine of the in-silico deletion direction with the real knock-out shift, and its null."""
    screen = papalexi2021()
    targets = [t for t in screen.obs["target_gene"].unique() if t in screen.var_names and t != "non-targeting"]
    settings = InsilicoSettings(operation="delete", n_null=n_null, max_cells=n_cells, seed=seed)
    result = insilico_perturb(screen, model, genes=targets, cells="target_gene=non-targeting", settings=settings)
    rng = np.random.default_rng(seed)
    groups = ["non-targeting", *targets]
    chosen = np.concatenate(
        [rng.permutation(np.flatnonzero(screen.obs["target_gene"] == g))[: 2 * n_cells] for g in groups]
    )
    cells = screen[np.sort(chosen)].copy()
    embed_model(cells, model, device="cpu", key_added="X_model")
    embedding = pd.DataFrame(cells.obsm["X_model"]).groupby(cells.obs["target_gene"].to_numpy()).mean()
    dims = [c for c in result.directions.columns if c.startswith("dim")]
    rows = []
    for target in targets:
        real = (embedding.loc[target] - embedding.loc["non-targeting"]).to_numpy()
        directions = result.directions[result.directions["gene"] == target]
        observed = cosine(directions.loc[directions["draw"] == 0, dims].to_numpy()[0], real)
        null = [cosine(v, real) for v in directions.loc[directions["draw"] > 0, dims].to_numpy()]
        shift = result.shifts.set_index("gene").loc[target]
        rows.append(
            {
                "target": target,
                "n_control_cells": int(shift["n_cells"]),
                "n_ko_cells": int((cells.obs["target_gene"] == target).sum()),
                "cosine_insilico_vs_real": observed,
                "null_mean": float(np.mean(null)),
                "null_sd": float(np.std(null, ddof=1)),
                "null_fraction_below": float(np.mean(np.array(null) < observed)),
                "cosine_shift_mean": float(shift["cosine_shift_mean"]),
                "cosine_shift_fdr": float(shift["cosine_shift_fdr"]),
            }
        )
    return pd.DataFrame(rows)


def kang(model: str, n_cells: int, n_genes: int, seed: int) -> pd.DataFrame:
    """Over-expression in CD14+ monocytes toward B cells: rank of each B-cell marker among the candidates."""
    pbmc = kang2018_pbmc()
    symbols = pbmc.var["gene_symbol"].astype(str)
    expressed = np.asarray((pbmc.X > 0).mean(axis=0)).ravel() > 0.02
    others = sorted(set(symbols[expressed]) - set(B_MARKERS))
    rng = np.random.default_rng(seed)
    candidates = [m for m in B_MARKERS if m in set(symbols)] + list(rng.choice(others, n_genes, replace=False))
    settings = InsilicoSettings(operation="overexpress", n_null=1, max_cells=n_cells, seed=seed)
    result = insilico_perturb(
        pbmc,
        model,
        genes=[pbmc.var_names[symbols == g][0] for g in candidates],
        start_state="cluster_id=CD14+ Monocytes",
        goal_state="cluster_id=B cells",
        alt_states=["cluster_id=CD4 T cells", "cluster_id=NK cells"],
        settings=settings,
    )
    table = result.shifts.reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    table["b_marker"] = table["symbols"].isin(B_MARKERS)
    keep = ["rank", "symbols", "b_marker", "n_cells", "shift_to_goal_mean", "shift_to_goal_null_mean"]
    return table[keep + ["shift_to_goal_fdr", "cosine_shift_mean"]]


def main() -> None:
    """Run both checks and write the results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="/tmp/demo_run/model")
    parser.add_argument("--cells", type=int, default=200, help="control cells perturbed (Papalexi)")
    parser.add_argument("--null", type=int, default=10, help="null draws per cell (Papalexi)")
    parser.add_argument("--kang-cells", type=int, default=20)
    parser.add_argument("--kang-genes", type=int, default=95, help="random candidate genes besides the markers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    screen = papalexi(args.model, args.cells, args.null, args.seed)
    print(screen.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    pbmc = kang(args.model, args.kang_cells, args.kang_genes, args.seed)
    print(pbmc.head(15).to_string(index=False, float_format=lambda v: f"{v:.2e}"))
    markers = pbmc[pbmc["b_marker"]]
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "settings": vars(args),
        "papalexi": screen.to_dict("records"),
        "kang_markers": markers.to_dict("records"),
    }
    payload["kang_n_candidates"] = len(pbmc)
    (RESULTS / "insilico_validation.json").write_text(json.dumps(payload, indent=1))
    text = [
        "# In-silico perturbation on real data\n",
        f"Model: `{args.model}`; seed {args.seed}.\n",
        f"## Papalexi: in-silico deletion vs real knock-out ({args.cells} control cells, {args.null} null draws)\n",
        markdown_table(screen, ".3f"),
        f"\n## Kang: over-expression in CD14+ monocytes toward B cells ({len(pbmc)} candidate genes)\n",
        markdown_table(markers, ".2e"),
        "",
    ]
    (RESULTS / "insilico_validation.md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
