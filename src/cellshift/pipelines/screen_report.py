"""Figures and the HTML report of a screen run, from the tables its steps put into the :class:`ScreenRun`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import anndata as ad
import pandas as pd
from matplotlib.figure import Figure

from cellshift.analysis.calibration import standardised_nulls
from cellshift.analysis.findings import screen_findings
from cellshift.analysis.scoring import EDISTANCE_METRICS
from cellshift.analysis.screen_input import scored_rows
from cellshift.analysis.summary import ranked_table, split_overview, split_table
from cellshift.pipelines.screen_run import ScreenRun
from cellshift.plotting import (
    control_null,
    distance_distributions,
    enrichment_pvalues,
    pair_distance_distributions,
    responder_fractions,
    umap_compare_embeddings,
)
from cellshift.plotting.training import plot_loss_curve
from cellshift.report import build_report, screen_sections

RESPONDERS_TITLE = "Per-cell responders"
FIGURE_CAPTIONS = {
    "Normalised distances per embedding": (
        "z of every perturbation's distance to the controls, per embedding, grouped by its number of DEGs; "
        "z > 2 is far from the controls (read the exact p and FDR in the ranked table)."
    ),
    "Normalised distances between held-out perturbations": (
        "z of the E-distance between every pair of perturbations held out from fine-tuning; higher means the "
        "embedding tells the two apart (the bar is the median)."
    ),
    "Contrastive fine-tuning": (
        "Loss per step (similar and dissimilar pairs) and the mean distance of each kind of pair against the "
        "margin; dashed: the same on held-out validation pairs."
    ),
    "Control null (z-scores of random control groups, pooled over sizes)": (
        "Random groups of control cells on the same z scale as the perturbations, with the perturbations' z: "
        "perturbations beyond the bulk of the control null differ from the controls."
    ),
    "0-DEG enrichment p-values against the top n": (
        "-log10 p of the gene-set enrichment among the top n perturbations with no DEGs; points above the "
        "dashed Bonferroni line are significant."
    ),
    RESPONDERS_TITLE: (
        "In the ranking embedding. Left: the fraction of each perturbation's cells called responders (bar; "
        "cross-fitted score against "
        "held-out controls, Benjamini-Hochberg within the perturbation) and the estimated responding fraction "
        "(circle, Storey), which also counts cells shifted too weakly to be called one by one. Right: target "
        "expression over control in non-responders (grey) and responders (red), for the targets among the "
        "measured genes; responders sit further left when the call finds the knocked-down cells."
    ),
    "UMAP of perturbed vs control cells": (
        "Control cells in grey, the chosen perturbations' cells in colour, one UMAP per embedding: a "
        "perturbation that shifts cells forms its own region."
    ),
}


def draw_figures(run: ScreenRun, adata: ad.AnnData) -> None:
    """The run's figures, written into ``figures/`` and kept in ``run.figures`` under their report titles.

    ``distances.png``, ``pair_distances.png`` (with pair scores), ``finetune_loss.png`` (with a
    fine-tuned model that has a loss log), ``control_null.png``, ``enrichment.png`` (with an
    enrichment table), ``responders.png`` (with per-cell scores) and ``umap.png`` (of
    ``settings.umap_perturbations``, by default the two
    top-ranked perturbations and the two top-ranked 0-DEG ones of the first embedding).
    """
    s, folder = run.settings, run.out / "figures"
    metric = s.metrics[0]
    scores = {name: scored_rows(table) for name, table in run.scores.items()}
    run.figures["Normalised distances per embedding"] = distance_distributions(
        scores, metric=metric, degs=run.degs, path=folder / "distances.png", overwrite=True
    )
    pair_metric = next((m for m in s.metrics if m in EDISTANCE_METRICS), None)
    if run.pairs and pair_metric:
        run.figures["Normalised distances between held-out perturbations"] = pair_distance_distributions(
            run.pairs, metric=pair_metric, path=folder / "pair_distances.png", overwrite=True
        )
    if run.finetuned_model is not None and (run.finetuned_model / "training" / "loss.csv").is_file():
        run.figures["Contrastive fine-tuning"] = _finetune_loss(run.finetuned_model, folder / "finetune_loss.png")
    run.figures["Control null (z-scores of random control groups, pooled over sizes)"] = control_null(
        {name: standardised_nulls(null, metric) for name, null in run.nulls.items()},
        scores,
        metric=f"{metric}_z",
        path=folder / "control_null.png",
        overwrite=True,
    )
    if run.enrichment is not None:
        run.figures["0-DEG enrichment p-values against the top n"] = enrichment_pvalues(
            run.enrichment, path=folder / "enrichment.png", overwrite=True
        )
    if run.cells:
        run.figures[RESPONDERS_TITLE] = responder_fractions(
            adata.uns[f"{run.ranking_model}_cells_response"]["summary"],
            knockdown=run.responder_knockdown,
            path=folder / "responders.png",
            overwrite=True,
        )
    shown = list(s.umap_perturbations) or _umap_choice(scores, run.degs, metric)
    if shown:
        run.figures["UMAP of perturbed vs control cells"] = umap_compare_embeddings(
            adata,
            embeddings=run.embeddings,
            perturbation_key=s.perturbation_key,
            control=s.control,
            perturbations=shown,
            seed=s.seed,
            path=folder / "umap.png",
            overwrite=True,
        )


def _finetune_loss(model_dir: Path, path: Path) -> Figure:
    """Loss curve of a fine-tuned model, with the margin of its loss when its settings say it."""
    settings_file = model_dir / "training" / "settings.json"
    margin = json.loads(settings_file.read_text()).get("margin") if settings_file.is_file() else None
    return plot_loss_curve(model_dir / "training" / "loss.csv", path, margin=margin)


def _umap_choice(scores: dict[str, pd.DataFrame], degs: pd.DataFrame, metric: str, n: int = 2) -> list[str]:
    """The ``n`` top-ranked perturbations and the ``n`` top-ranked 0-DEG ones of the first embedding."""
    table = next(iter(scores.values())).sort_values(f"{metric}_z", ascending=False)
    zero = set(degs.loc[degs["n_degs"] == 0, "perturbation"])
    top = table["perturbation"].tolist()[:n]
    top_zero = [p for p in table["perturbation"] if p in zero][:n]
    return list(dict.fromkeys(top + top_zero))


def write_report(run: ScreenRun, n_cells: int, notes: dict[str, str]) -> None:
    """``report.html`` from the run's tables and figures; sets ``run.report``.

    The ranking is that of the fine-tuned model when there is one, else of the first embedding,
    by the first metric of the settings. ``notes`` are added to the summary.
    """
    s = run.settings
    metric = s.metrics[0]
    ranking_model = run.ranking_model
    first = next(iter(run.scores.values()))
    summary = {
        "cells": n_cells,
        "perturbations scored": len(scored_rows(first)),
        f"perturbations not scored (< {s.min_cells} cells)": len(first) - len(scored_rows(first)),
        "perturbations with 0 DEGs": int((run.degs["n_degs"] == 0).sum()),
        "embeddings": ", ".join(run.embeddings),
        "seconds": round(sum(run.seconds.values()), 1),
        **notes,
    }
    loss_log = run.finetuned_model / "training" / "loss.csv" if run.finetuned_model else None
    findings = screen_findings(
        run.scores,
        run.degs,
        metric=metric,
        enrichment=run.enrichment,
        medians=run.medians,
        finetune_log=pd.read_csv(loss_log) if loss_log is not None and loss_log.exists() else None,
        responders=(ranking_model, run.scores[ranking_model]) if run.cells else None,
        responder_knockdown=run.responder_knockdown,
    )
    sections = screen_sections(
        findings=findings,
        medians=run.medians,
        ranking=ranked_table(run.scores[ranking_model], metric=metric, degs=run.degs),
        ranking_model=ranking_model,
        metric=metric,
        summary=summary,
        enrichment=run.enrichment,
        figures=run.figures,
        captions=FIGURE_CAPTIONS,
        response=run.response,
        response_figure=run.response_figure,
        split=split_table(run.split),
        split_overview=split_overview(run.split),
        settings=asdict(s),
    )
    run.report = build_report(sections, title="cellshift screen report", path=run.out / "report.html", overwrite=True)
