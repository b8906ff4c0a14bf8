"""Benchmark: which graph embedding makes the prior vectors, and what the bundled tables cover.

What is measured
----------------
1. Graph embedding, ``walk`` (random walks + PPMI-SVD, the closed form of skip-gram) against
   ``spectral`` (regularised spectral embedding, DI-SIM for the directed GRN), both at dim 128,
   on three graphs: the GRN (DoRothEA A-C + TRRUST, TF -> target), the HGNC gene families
   (gene x group) and Kang PBMC co-expression (Pearson over all cells >= 0.5; 0.8 leaves too few
   pairs to score). For each of 3 seeds, 10% of the edges are held out (for the families: 10%
   of the gene-group links) and the embedding is fitted on the rest. Scores are cosine
   similarities of gene vectors. AUROC of

   * held-out pairs (GRN / co-expression: the held-out TF-target or gene-gene pairs; families:
     a held-out member paired with a random remaining member of its group) against random gene
     pairs with no link in the full graph (families: sharing no group), 5 negatives per positive;
   * the same for training pairs (how much of the graph the vectors keep).

   Only genes both methods embed are scored, so both are judged on the same pairs.
2. Genes covered by each source from the bundled tables (human Ensembl IDs with a vector).
3. Co-expression on the bundled Kang PBMCs (8,684 cells x 2,511 genes): pairs >= 0.8 and genes
   covered over all cells and over co-expressing cells (GeneCompass), seconds; and how often
   the pairs share an HGNC group, against random pairs.
4. The time of ``build_priors`` for grn + families + co-expression at dim 128.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/priors.py`` (~5 min on 2 cores). Results:
``benchmarks/results/priors.json`` and ``priors.md``.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _machine import git_state, machine_info
from _markdown import markdown_table
from sklearn.metrics import roc_auc_score

from cellshift._io import write_text_atomic
from cellshift.datasets import bundled_corpora
from cellshift.priors import build_priors
from cellshift.priors.coexpression import coexpression_pairs
from cellshift.priors.families import family_graph
from cellshift.priors.graph import GeneGraph, embed_graph
from cellshift.priors.grn import grn_graph

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("walk", "spectral")


def split_graph(graph: GeneGraph, seed: int, fraction: float = 0.1) -> tuple[GeneGraph, pd.DataFrame]:
    """Training graph and held-out edges."""
    rng = np.random.default_rng([seed, 7])
    held = rng.random(len(graph.edges)) < fraction
    return GeneGraph(graph.edges[~held], graph.kind), graph.edges[held]


def gene_pairs(graph: GeneGraph, edges: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Gene pairs a set of edges stands for (families: each member with a random other member of its group)."""
    if graph.kind != "bipartite":
        return edges.rename(columns={"source": "a", "target": "b"})[["a", "b"]]
    rng = np.random.default_rng([seed, 8])
    members = graph.edges.groupby("target")["source"].apply(np.array).to_dict()
    rows = []
    for gene, group in edges[["source", "target"]].itertuples(index=False):
        others = members.get(group, np.array([]))
        others = others[others != gene]
        if len(others):
            rows.append((gene, others[rng.integers(len(others))]))
    return pd.DataFrame(rows, columns=["a", "b"])


def linked(graph: GeneGraph) -> set:
    """Unordered gene pairs linked in the full graph (families: sharing a group)."""
    if graph.kind != "bipartite":
        return {frozenset(pair) for pair in graph.edges.itertuples(index=False)}
    pairs = set()
    for members in graph.edges.groupby("target")["source"].apply(list):
        if len(members) <= 200:  # the largest groups would add millions of pairs; random pairs rarely hit them
            pairs.update(frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1 :])
    return pairs


def auroc(vectors: pd.DataFrame, positives: pd.DataFrame, known: set, seed: int) -> tuple[float, int]:
    """AUROC of cosine similarity: positive pairs against 5x random unlinked pairs."""
    unit = vectors.to_numpy() / np.linalg.norm(vectors.to_numpy(), axis=1, keepdims=True)
    where = pd.Series(np.arange(len(vectors)), index=vectors.index)
    positives = positives[positives["a"].isin(where.index) & positives["b"].isin(where.index)]
    positives = positives[positives["a"] != positives["b"]]
    rng = np.random.default_rng([seed, 9])
    a, b = rng.integers(len(where), size=(2, 10 * len(positives)))
    keep = [i for i in range(len(a)) if a[i] != b[i] and frozenset((where.index[a[i]], where.index[b[i]])) not in known]
    a, b = a[keep][: 5 * len(positives)], b[keep][: 5 * len(positives)]
    pos = np.einsum("ij,ij->i", unit[where[positives["a"]].to_numpy()], unit[where[positives["b"]].to_numpy()])
    neg = np.einsum("ij,ij->i", unit[a], unit[b])
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(labels, np.r_[pos, neg])), len(pos)


def compare(name: str, graph: GeneGraph, seeds: list[int], dim: int) -> list[dict]:
    """Held-out and training AUROC of each method on one graph."""
    known, rows = linked(graph), []
    for seed in seeds:
        train, heldout = split_graph(graph, seed)
        fitted, seconds = {}, {}
        for method in METHODS:
            started = time.perf_counter()
            fitted[method] = embed_graph(train, method=method, dim=dim, seed=seed)
            seconds[method] = time.perf_counter() - started
        common = fitted[METHODS[0]].index.intersection(fitted[METHODS[1]].index)
        sample = train.edges.sample(min(len(train.edges), 20_000), random_state=seed)
        for method in METHODS:
            vectors = fitted[method].loc[common]
            held_auc, n_held = auroc(vectors, gene_pairs(train, heldout, seed), known, seed)
            fit_auc, n_fit = auroc(vectors, gene_pairs(train, sample, seed), known, seed)
            rows.append(
                dict(
                    graph=name,
                    method=method,
                    seed=seed,
                    heldout_auroc=held_auc,
                    heldout_pairs=n_held,
                    train_auroc=fit_auc,
                    train_pairs=n_fit,
                    genes_embedded=len(fitted[method]),
                    genes_scored=len(common),
                    seconds=seconds[method],
                )
            )
            print(rows[-1], flush=True)
    return rows


def family_share(pairs: pd.DataFrame, families: GeneGraph) -> float:
    """Share of gene pairs with a common HGNC group."""
    groups = families.edges.groupby("source")["target"].apply(set).to_dict()
    hits = [
        bool(groups.get(a, set()) & groups.get(b, set())) for a, b in zip(pairs["source"], pairs["target"], strict=True)
    ]
    return float(np.mean(hits)) if hits else float("nan")


def coexpression_numbers(kang: Path, families: GeneGraph) -> list[dict]:
    """Kang PBMC co-expression over all cells (r >= 0.8 and 0.5) and over co-expressing cells (r >= 0.8)."""
    rows = []
    for cells, threshold in (("all", 0.8), ("all", 0.5), ("expressed", 0.8)):
        started = time.perf_counter()
        result = coexpression_pairs(kang, cells=cells, min_correlation=threshold)
        seconds = time.perf_counter() - started
        genes = np.unique(np.concatenate([result.edges["source"], result.edges["target"]]))
        sample = result.edges.sample(min(len(result.edges), 20_000), random_state=0)
        rng = np.random.default_rng(0)
        random = pd.DataFrame({"source": rng.choice(result.panel, 20_000), "target": rng.choice(result.panel, 20_000)})
        rows.append(
            dict(
                cells=cells,
                min_correlation=threshold,
                pairs=len(result.edges),
                genes=len(genes),
                panel=len(result.panel),
                seconds=seconds,
                same_family=family_share(sample, families),
                same_family_random=family_share(random[random.source != random.target], families),
            )
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    kang = bundled_corpora()["kang2018_pbmc"]
    grn, _ = grn_graph(["dorothea", "trrust"])
    families, _ = family_graph("hgnc")
    coexpression = GeneGraph(coexpression_pairs(kang, min_correlation=0.5).edges, "undirected")
    comparison = []
    for name, graph in (("grn", grn), ("family", families), ("coexpression>=0.5", coexpression)):
        comparison += compare(name, graph, seeds, args.dim)
    coexpression_rows = coexpression_numbers(kang, families)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        built = build_priors(
            Path(folder) / "priors", grn=["dorothea", "trrust"], families="hgnc", coexpression=kang, progress=False
        )
        build_seconds = time.perf_counter() - started
        coverage = {name: source["n_genes"] for name, source in built.manifest["sources"].items()}
    table = pd.DataFrame(comparison)
    summary = (
        table.groupby(["graph", "method"], sort=False)
        .agg(
            heldout_auroc=("heldout_auroc", "mean"),
            heldout_sd=("heldout_auroc", "std"),
            train_auroc=("train_auroc", "mean"),
            heldout_pairs=("heldout_pairs", "mean"),
            genes_embedded=("genes_embedded", "mean"),
            seconds=("seconds", "mean"),
        )
        .reset_index()
    )
    results = dict(
        comparison=comparison,
        coexpression=coexpression_rows,
        coverage=coverage,
        build_seconds=build_seconds,
        machine=machine_info(("numpy", "scipy", "scikit-learn")),
        code=git_state(),
    )
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "priors.json", json.dumps(results, indent=2, default=str))
    lines = [
        "# Prior-knowledge gene vectors",
        "",
        f"## Graph embedding: walk vs spectral (dim {args.dim}, seeds {args.seeds})",
        "",
        markdown_table(summary),
        "",
        "## Co-expression, Kang PBMC (8,684 cells, min_cells 30)",
        "",
        markdown_table(pd.DataFrame(coexpression_rows)),
        "",
        "## Genes covered per source (build_priors, dim 128)",
        "",
        markdown_table(pd.DataFrame({"source": list(coverage), "genes": list(coverage.values())})),
        "",
        f"Whole build (grn + families + co-expression, walk, dim {args.dim}): {build_seconds:.1f} s",
        "",
    ]
    write_text_atomic(RESULTS / "priors.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
