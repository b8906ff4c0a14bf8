"""Ablation: what expression values, each prior-knowledge source and the joint vocabulary add.

GeneCompass claims that prior knowledge in the input and pre-training on human and mouse together
make a better model. Every arm here has the same data (the bundled Kang PBMCs, mouse pancreas and
Baron human + mouse pancreas, 256 tokens per cell), the same budget (``--steps`` AdamW steps of 16
cells, the ``small`` preset) and the same seeds:

- ``base``: ortholog-mapped vocabulary (Geneformer), gene tokens only;
- ``values``: + expression values; ``grn`` / ``family`` / ``coexpression``: + one prior source
  (built by :func:`cellshift.priors.build_priors` from the bundled DoRothEA + TRRUST, HGNC groups,
  and Kang co-expression over the cells expressing both genes, GeneCompass's rule);
  ``all_priors``: + the three; no promoter prior (no promoter sequences are bundled);
- ``joint``: the joint human + mouse vocabulary (mouse genes keep their tokens, species embedding).

Measured per arm and seed: masked-gene hits@10 and rank Spearman@100 on held-out cells of each
species (Kang: human; pancreas: mouse), beside the gene-frequency baseline; cell-type annotation
macro-F1 with the frozen model (Kang by donor; Baron human -> mouse); dosage-sensitivity AUROC of
the model's gene embeddings in Baron's human cells (12,474 genes; 5-fold CV); GRN AUPRC against
DoRothEA (left out for arms whose input holds the GRN prior: circular). Then the scaling arm:
``--scaling-arm`` trained on 25% and 50% of every corpus for the same number of steps per cell
(so 25% and 50% of the steps), with the vocabulary of the whole corpus.

Each (arm, seed, fraction) runs in a fresh process (``--jobs`` at a time, one torch thread each)
and writes ``_work/ablation/<run>/result.json``; a rerun skips finished runs (resume).
Writes ``benchmarks/results/ablation.{json,md}`` and ``ablation_scaling.png``.

    PYTHONPATH=src python benchmarks/ablation.py [--steps 800] [--seeds 0,1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch
from _machine import machine_info
from _markdown import markdown_table

from cellshift._io import write_text_atomic
from cellshift.data.gene_table import GeneTable
from cellshift.datasets import baron2016_pancreas, bundled_corpora, kang2018_pbmc
from cellshift.plotting import save_png
from cellshift.plotting._save import new_figure
from cellshift.priors import PriorSettings, build_priors, load_priors
from cellshift.tasks import AnnotationSettings, annotate, classify_genes
from cellshift.tasks.grn_inference import GrnSettings, infer_grn
from cellshift.tokenize import compute_gene_medians, tokenize
from cellshift.training import PretrainSettings, pretrain
from cellshift.training.evaluation import evaluate_model_dir

HERE = Path(__file__).resolve().parent
WORK, RESULTS = HERE / "_work" / "ablation", HERE / "results"
ARMS = {
    "base": ("ortholog", False, ()),
    "values": ("ortholog", True, ()),
    "grn": ("ortholog", False, ("grn",)),
    "family": ("ortholog", False, ("family",)),
    "coexpression": ("ortholog", False, ("coexpression",)),
    "all_priors": ("ortholog", False, ("grn", "family", "coexpression")),
    "joint": ("joint", False, ()),
}
CORPORA = {"kang": 200, "pancreas": 500, "baron": 200}  # min_genes per corpus
EVALUATED = {"kang": "human", "pancreas": "mouse"}
SPECIES = {"kang": {"species": "human"}, "pancreas": {"species": "mouse"}, "baron": {"species_key": "species"}}
MAX_LENGTH, BATCH_SIZE = 256, 16


def corpus_inputs(fraction: float, seed: int = 0) -> dict[str, ad.AnnData]:
    """The three bundled corpora as AnnData, each a seeded random ``fraction`` of its cells."""
    paths = bundled_corpora()
    full = {
        "kang": ad.read_h5ad(paths["kang2018_pbmc"]),
        "pancreas": ad.read_h5ad(paths["pancreas_mouse"]),
        "baron": baron2016_pancreas(),
    }
    if fraction >= 1.0:
        return full
    rng = np.random.default_rng(seed)
    return {name: a[np.sort(rng.permutation(a.n_obs)[: int(fraction * a.n_obs)])].copy() for name, a in full.items()}


def prepare_corpora(vocabulary: str, fraction: float) -> dict[str, Path]:
    """Medians over the three corpora in ``vocabulary``, then each tokenised with that table (cached)."""
    folder = WORK / "corpora" / f"{vocabulary}_{fraction:g}"
    if (folder / "done.json").exists():
        return {name: folder / name for name in CORPORA}
    inputs = corpus_inputs(fraction)
    if fraction < 1.0:  # the same vocabulary as the whole corpus, so that only the number of cells changes
        table = GeneTable.load(prepare_corpora(vocabulary, 1.0)["kang"] / "gene_table.tsv.gz")
    else:
        medians = [
            compute_gene_medians(data, vocabulary=vocabulary, min_genes=CORPORA[name], progress=False, **SPECIES[name])
            for name, data in inputs.items()
        ]
        table = GeneTable.from_medians(pd.concat(medians).groupby(level=0).median(), name=f"ablation-{vocabulary}")
    for name, data in inputs.items():
        tokenize(
            data,
            folder / name,
            gene_table=table,
            max_length=MAX_LENGTH,
            values=True,
            vocabulary=vocabulary,
            min_genes=CORPORA[name],
            overwrite=True,
            progress=False,
            **SPECIES[name],
        )
    write_text_atomic(folder / "done.json", json.dumps({"vocabulary": len(table)}))
    return {name: folder / name for name in CORPORA}


def prepare_priors(kang_corpus: Path, dim: int) -> Path:
    """Priors from the bundled GRN and family tables and Kang co-expression (cached)."""
    out = WORK / "priors"
    if not (out / "manifest.json").exists():
        settings = PriorSettings(dim=dim, coexpression_cells="expressed")
        build_priors(out, grn=["dorothea", "trrust"], families="hgnc", coexpression=kang_corpus, settings=settings)
    return out


def train_and_measure(arm: str, seed: int, fraction: float, steps: int, priors_dir: str) -> dict:
    """One run: pre-train the arm, then every measurement; the result is also written as JSON."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    vocabulary, use_values, prior_names = ARMS[arm]
    corpora = prepare_corpora(vocabulary, fraction)
    run = WORK / f"{arm}_seed{seed}_frac{fraction:g}"
    priors = None
    if prior_names:
        priors = {name: load_priors(priors_dir).tables[name] for name in prior_names}
    settings = PretrainSettings(
        preset="small",
        use_values=use_values,
        max_steps=max(1, int(steps * fraction)),
        batch_size=BATCH_SIZE,
        max_length=MAX_LENGTH,
        seed=seed,
        save_every=100_000,
    )
    started = time.perf_counter()
    if not (run / "model" / "model.safetensors").exists():  # a run killed after pre-training keeps its model
        corpus_dirs = [str(p) for p in corpora.values()]
        pretrain(corpus_dirs, run / "model", settings, priors=priors, overwrite=True, progress=False)
    row = {"arm": arm, "seed": seed, "fraction": fraction, "steps": settings.max_steps}
    row["pretrain_seconds"] = time.perf_counter() - started
    row.update(masked_gene_scores(run / "model", corpora))
    row.update(downstream_scores(run / "model", prior_names))
    write_text_atomic(run / "result.json", json.dumps(row, indent=1))
    return row


def masked_gene_scores(model: Path, corpora: dict[str, Path]) -> dict:
    """hits@10 and Spearman@100 of the model and the frequency baseline on held-out cells per species."""
    row = {}
    for name, species in EVALUATED.items():
        table = evaluate_model_dir(model, corpora[name], max_cells=300, progress=False)
        for method in ("model", "frequency"):
            row[f"{species}_hits@10_{method}"] = float(table.loc[method, "hits@10"])
            row[f"{species}_spearman@100_{method}"] = float(table.loc[method, "spearman@100"])
    return row


def downstream_scores(model: Path, prior_names: tuple[str, ...]) -> dict:
    """Annotation macro-F1 (frozen model), dosage-sensitivity AUROC, GRN AUPRC (NaN when circular)."""
    kang = kang2018_pbmc()
    kang = kang[np.random.default_rng(0).permutation(kang.n_obs)[:1500]].copy()
    baron = baron2016_pancreas()
    human, mouse = (baron[baron.obs["species"] == s].copy() for s in ("human", "mouse"))
    options = {"model": str(model)}
    by_donor = AnnotationSettings(label_key="cluster_id", methods=("model-frozen",), split_key="sample_id", n_folds=5)
    cross = AnnotationSettings(label_key="cell_type", methods=("model-frozen",))
    row = {
        "annotation_kang_f1": _macro_f1(annotate(kang, settings=by_donor, method_options=options, progress=False)),
        "annotation_human_to_mouse_f1": _macro_f1(
            annotate(human, mouse, settings=cross, method_options=options, progress=False)
        ),
    }
    dosage = classify_genes(methods=("model",), cells=human, model_dir=model).summary.set_index("method")
    row["dosage_auroc"] = float(dosage.loc["model", "auroc_mean"])
    row["dosage_coverage"] = float(dosage.loc["model", "coverage"])
    if "grn" in prior_names:
        row["grn_auprc"] = row["grn_auprc_random"] = float("nan")
    else:
        grn = infer_grn(kang, model, settings=GrnSettings(methods=("model",), max_cells=500), progress=False)
        metrics = grn.metrics[grn.metrics["reference"].astype(str).str.startswith("dorothea")]
        dorothea = metrics.iloc[0]
        row["grn_auprc"], row["grn_auprc_random"] = float(dorothea["auprc"]), float(dorothea["auprc_random"])
    return row


def _macro_f1(result) -> float:
    """Macro-F1 over all predicted cells of an annotation run."""
    return float(result.metrics.loc[result.metrics["fold"] == "all", "macro_f1"].iloc[0])


MEASURES = {
    "human_hits@10_model": "hits@10 human",
    "mouse_hits@10_model": "hits@10 mouse",
    "human_spearman@100_model": "Spearman@100 human",
    "mouse_spearman@100_model": "Spearman@100 mouse",
    "annotation_kang_f1": "annotation F1 Kang",
    "annotation_human_to_mouse_f1": "annotation F1 human->mouse",
    "dosage_auroc": "dosage AUROC",
    "grn_auprc": "GRN AUPRC",
}


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per arm (whole corpus): mean ± half the seed-to-seed range of every measure; the baselines last."""
    full = rows[rows["fraction"] == 1.0]
    grouped = full.groupby("arm")[list(MEASURES)]
    mean, half_range = grouped.mean(), (grouped.max() - grouped.min()) / 2
    table = pd.DataFrame(index=[arm for arm in ARMS if arm in mean.index])
    for measure, label in MEASURES.items():
        table[label] = [_mean_spread(mean.loc[arm, measure], half_range.loc[arm, measure]) for arm in table.index]
    baseline = {label: "" for label in MEASURES.values()}
    for species in ("human", "mouse"):
        for metric, label in (("hits@10", "hits@10"), ("spearman@100", "Spearman@100")):
            baseline[f"{label} {species}"] = f"{full[f'{species}_{metric}_frequency'].mean():.3f}"
    baseline["GRN AUPRC"] = f"{full['grn_auprc_random'].mean():.4f} (random)"
    table.loc["gene-frequency baseline"] = baseline
    table["seeds"] = [int(full["arm"].eq(arm).sum()) if arm in mean.index else "" for arm in table.index]
    return table.rename_axis("arm").reset_index()


def _mean_spread(mean: float, spread: float) -> str:
    """``mean ± spread`` with 3 decimals (4 below 0.01); ``n/a`` for NaN (a circular GRN score)."""
    if np.isnan(mean):
        return "n/a"
    digits = 4 if abs(mean) < 0.01 else 3
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def scaling_plot(rows: pd.DataFrame, arm: str, path: Path) -> None:
    """hits@10 and annotation macro-F1 against the fraction of the corpus (mean over seeds)."""
    chosen = rows[rows["arm"] == arm].groupby("fraction").mean(numeric_only=True)
    figure = new_figure(9.0, 3.2)
    axes = figure.subplots(1, 3)
    for axis, measure in zip(
        axes, ("human_hits@10_model", "mouse_hits@10_model", "annotation_human_to_mouse_f1"), strict=True
    ):
        axis.plot(chosen.index * 100, chosen[measure], marker="o")
        axis.set_xlabel("% of the corpus (same steps per cell)")
        axis.set_title(measure, fontsize=9)
    save_png(figure, path, overwrite=True)


def main() -> None:
    """Prepare corpora and priors, run every (arm, seed) and the scaling arm, write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--scaling-arm", default="base")
    parser.add_argument("--scaling-seeds", default=None, help="seeds of the scaling arm (default: --seeds)")
    parser.add_argument("--prior-dim", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    seeds = [int(s) for s in args.seeds.split(",")]
    for vocabulary in ("ortholog", "joint"):
        prepare_corpora(vocabulary, 1.0)
    for fraction in (0.25, 0.5):
        prepare_corpora(ARMS[args.scaling_arm][0], fraction)
    priors_dir = prepare_priors(WORK / "corpora" / "ortholog_1" / "kang", args.prior_dim)
    runs = [(arm, seed, 1.0) for arm in args.arms.split(",") for seed in seeds]
    scaling_seeds = [int(s) for s in args.scaling_seeds.split(",")] if args.scaling_seeds else seeds
    runs += [(args.scaling_arm, seed, fraction) for fraction in (0.25, 0.5) for seed in scaling_seeds]
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = []
        for arm, seed, fraction in runs:
            done = WORK / f"{arm}_seed{seed}_frac{fraction:g}" / "result.json"
            if done.exists():
                rows.append(json.loads(done.read_text()))
                continue
            futures.append(pool.submit(train_and_measure, arm, seed, fraction, args.steps, str(priors_dir)))
        for future in as_completed(futures):
            rows.append(future.result())  # a failed run stops the benchmark here, naming its error
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = summarise(table)
    RESULTS.mkdir(exist_ok=True)
    scaling_plot(table, args.scaling_arm, RESULTS / "ablation_scaling.png")
    payload = {"settings": vars(args), "runs": table.to_dict("records"), "priors": load_priors(priors_dir).manifest}
    payload["machine"] = machine_info(("torch", "transformers"))
    write_text_atomic(RESULTS / "ablation.json", json.dumps(payload, indent=1, default=str))
    write_text_atomic(RESULTS / "ablation.md", "# Ablation\n\n" + markdown_table(summary) + "\n")
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
