"""``cellshift demo`` / ``make demo``: the main job on the bundled real data, in a few minutes on a CPU.

1. the model: by default the packaged ``cellshift-small-bundled`` (pre-trained by this project on
   the bundled PBMCs and pancreas cells, see its model card), evaluated on its held-out Kang PBMCs
   beside the gene-frequency baseline (``cellshift evaluate``). With ``--pretrain``, a ``small``
   model pre-trained here instead for a few hundred steps on a gene-median table and corpora of
   the bundled PBMCs, mouse pancreas cells and the Papalexi screen's cells (only 42 of the
   screen's 299 genes occur in the PBMC panel, so the screen's own cells join that corpus as
   unlabelled data: masked-gene modelling never sees their perturbation labels);
2. the bundled Papalexi CRISPR screen analysed end to end with that model (``cellshift screen``):
   DEGs, split, a short contrastive fine-tuning, PCA/HVG/model embeddings, distances against a
   control null, per-cell responder calls, 0-DEG enrichment, figures and ``report.html``.

The settings are sized for a demo, not for results: see the README for the full-size commands.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from cellshift._io import check_writable, write_csv_atomic, write_text_atomic
from cellshift._pretrained import PACKAGED_MODELS, resolve_model
from cellshift._validate import POSITIVE_INT
from cellshift.data.gene_table import GeneTable
from cellshift.datasets import bundled_corpora, papalexi2021
from cellshift.pipelines.screen import pick_cells, run_screen
from cellshift.pipelines.screen_run import ScreenRun, ScreenSettings
from cellshift.plotting.training import plot_loss_curve
from cellshift.tokenize import compute_gene_medians, tokenize
from cellshift.training import PretrainSettings, pretrain
from cellshift.training.evaluation import evaluate_model_dir

# min_genes per corpus: 500 as Zhao et al. 2025 where the panel allows; the Kang panel (2,511 genes,
# median 389 expressed per cell) and the Papalexi panel (299 genes) need less.
PRETRAIN_CORPORA = {"kang2018_pbmc": 200, "pancreas_mouse": 500, "papalexi2021": 20}
PACKAGED_MODEL = PACKAGED_MODELS[0]
PRETRAIN = dict(preset="small", max_steps=200, batch_size=16, max_length=256, save_every=100)
SCREEN = dict(max_cells_per_group=150, n_null=100, finetune_steps=40, finetune_lr=1e-4, permutations=2000)


def run_demo(out: Path, *, workers: int = 1, pretrain: bool = False, progress: bool = True) -> dict:
    """Run the demo into ``out`` (its previous results are replaced) and return the summary.

    By default the screen is analysed with the packaged model ``cellshift-small-bundled``
    (evaluated on its held-out PBMCs); ``pretrain=True`` pre-trains a small model from scratch
    first, on the bundled corpora and the screen's own cells (the demo of ``cellshift pretrain``).
    """
    POSITIVE_INT.check(workers, "workers")
    check_writable(out / "summary.json", overwrite=True)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"seconds": {}}
    if pretrain:
        model_dir, evaluation = _pretrain_from_scratch(out, summary, workers, progress)
        note = (
            "The pre-training corpus includes this screen's cells as unlabelled data (masked-gene modelling, no "
            "perturbation labels), because only 42 of its 299 genes occur in the PBMC corpus."
        )
    else:
        model_dir, evaluation = _packaged_model(out, summary, workers, progress)
        note = f"The packaged model {PACKAGED_MODEL} (see its MODEL_CARD.md), not trained on this screen."

    started = time.perf_counter()
    screen = papalexi2021()
    screen = pick_cells(
        screen, "target_gene", max_per_group=SCREEN["max_cells_per_group"], seed=0, always=["non-targeting"]
    )
    settings = ScreenSettings(
        perturbation_key="target_gene",
        control="non-targeting",
        metrics=("edistance", "cosine_edistance"),
        n_null=SCREEN["n_null"],
        finetune_steps=SCREEN["finetune_steps"],
        finetune_lr=SCREEN["finetune_lr"],
        permutations=SCREEN["permutations"],
        top=(3, 5),
    )
    run = run_screen(
        screen,
        out / "screen",
        settings,
        model=model_dir,
        notes={"pre-training": note},
        overwrite=True,
        progress=progress,
    )
    summary["seconds"]["screen"] = round(time.perf_counter() - started, 1)

    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str))
    _print_summary(summary, evaluation, run, out)
    return summary


def _packaged_model(out: Path, summary: dict, workers: int, progress: bool) -> tuple[Path, pd.DataFrame]:
    """The packaged model, evaluated on its held-out Kang PBMCs (re-tokenised here with its gene table)."""
    model_dir = resolve_model(PACKAGED_MODEL)
    started = time.perf_counter()
    corpus = tokenize(
        bundled_corpora()["kang2018_pbmc"],
        out / "corpora" / "kang2018_pbmc",
        gene_table=model_dir / "gene_table.tsv.gz",
        max_length=PRETRAIN["max_length"],
        min_genes=PRETRAIN_CORPORA["kang2018_pbmc"],
        workers=workers,
        overwrite=True,
        progress=progress,
    )
    summary["seconds"]["tokenise"] = round(time.perf_counter() - started, 1)
    summary["vocabulary"] = len(GeneTable.load(model_dir / "gene_table.tsv.gz"))
    summary["model"] = PACKAGED_MODEL
    return model_dir, _evaluate(model_dir, corpus.path, out, summary, progress)


def _pretrain_from_scratch(out: Path, summary: dict, workers: int, progress: bool) -> tuple[Path, pd.DataFrame]:
    """Medians and corpora of the bundled PBMCs, pancreas cells and screen cells; a small model pre-trained on them."""
    paths = bundled_corpora()
    started = time.perf_counter()
    medians = compute_gene_medians([paths[name] for name in PRETRAIN_CORPORA], min_genes=20, progress=progress)
    table = GeneTable.from_medians(medians, name="bundled-pbmc-pancreas-papalexi")
    corpora = []
    for name, min_genes in PRETRAIN_CORPORA.items():
        corpus = tokenize(
            paths[name],
            out / "corpora" / name,
            gene_table=table,
            min_genes=min_genes,
            workers=workers,
            overwrite=True,
            progress=progress,
        )
        corpora.append(corpus.path)
        summary[f"{name} cells tokenised"] = corpus.n_cells
    summary["vocabulary"] = len(table)
    summary["seconds"]["tokenise"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    result = pretrain(corpora, out / "model", PretrainSettings(**PRETRAIN), overwrite=True, progress=progress)
    plot_loss_curve(result.loss_log, result.loss_log.with_suffix(".png"))
    summary["seconds"]["pretrain"] = round(time.perf_counter() - started, 1)
    summary["pretrain"] = {"steps": result.steps, "tokens": result.tokens_seen, **PRETRAIN}
    summary["model"] = str(out / "model")
    return out / "model", _evaluate(out / "model", corpora[0], out, summary, progress)


def _evaluate(model_dir: Path, corpus: Path, out: Path, summary: dict, progress: bool) -> pd.DataFrame:
    """Masked-gene evaluation on the model's held-out Kang cells, beside the frequency baseline (``evaluation.csv``)."""
    started = time.perf_counter()
    evaluation = evaluate_model_dir(model_dir, corpus, max_cells=300, progress=progress)
    write_csv_atomic(evaluation.rename_axis("method").reset_index(), out / "evaluation.csv", overwrite=True)
    summary["seconds"]["evaluate"] = round(time.perf_counter() - started, 1)
    return evaluation


def _print_summary(summary: dict, evaluation: pd.DataFrame, run: ScreenRun, out: Path) -> None:
    """Print the evaluation, the top perturbations per embedding and the medians table."""
    print(f"\nmodel: {summary['model']}, vocabulary of {summary['vocabulary']} genes; held-out Kang cells:")
    columns = ["hits@1", "hits@10", "hits@100", "spearman@100"]
    print(evaluation[columns].to_string(float_format=lambda v: f"{v:.4f}"))
    print("\nPapalexi screen, top 5 perturbations by E-distance z-score:")
    for name, table in run.scores.items():
        top = table.sort_values("edistance_z", ascending=False)
        labels = [f"{p} ({n:.0f} DEGs)" for p, n in zip(top["perturbation"][:5], top["n_degs"][:5], strict=True)]
        print(f"  {name:>11}: {', '.join(labels)}")
    print("\nmedian normalised distance (z) per model and pool of perturbations:")
    print(run.medians.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nseconds: {summary['seconds']}")
    print(f"results: {out.resolve()}  (report: {run.report.resolve()})")
