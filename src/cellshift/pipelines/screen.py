"""``cellshift screen``: a whole screen analysis, from counts to an HTML report (issue 4, DESIGN §2.4-2.7).

Steps, each written into the run directory as it finishes:

1. DEGs and on-target knock-down per perturbation (``degs.csv``, ``degs.genes.csv``);
2. split by perturbation (``split.json``): training perturbations (>= ``min_degs`` DEGs), held-out
   test perturbations, the 0-DEG pool, control cells split by cell;
3. optional contrastive fine-tuning of a pre-trained model on the training perturbations
   (``finetuned_model/``), or a model fine-tuned before (``finetuned=``, whose saved split is
   then used so that its held-out perturbations stay unseen);
4. cell embeddings: baselines (PCA, HVG, scVI), embeddings already in ``obsm``
   (``settings.embeddings``) and the models (pre-trained, fine-tuned);
5. distances of every perturbation to control per embedding, z-scored against a
   size-calibrated control null (``scores/<embedding>.csv``, null draws in
   ``scores/<embedding>.nulls.csv``), and between the perturbations held out from fine-tuning
   (``scores/<embedding>.pairs.csv``; the paper's Figure 5, second half);
6. 0-DEG enrichment of essential / cell-cycle genes among the top-ranked perturbations
   (``enrichment.csv``);
7. optionally, response prediction of unseen knock-downs from gene embeddings
   (``response/``, :func:`cellshift.analysis.response.benchmark`);
8. figures (``figures/*.png``) and one self-contained ``report.html``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from cellshift._io import check_writable, write_csv_atomic, write_text_atomic

BASELINES = ("pca", "hvg", "scvi-linear", "scvi-5l")
MODEL_KEYS = {"pretrained": "X_cellshift_pretrained", "finetuned": "X_cellshift_finetuned"}


@dataclass
class ScreenSettings:
    """Options of a screen run (the CLI flags of ``cellshift screen``).

    Attributes
    ----------
    perturbation_key, control
        ``obs`` column of the perturbation labels and the label of control cells.
    min_cells, exclude
        Groups below ``min_cells`` cells are reported, not scored; ``exclude`` labels are
        neither scored nor used as controls.
    baselines
        Baseline embeddings among ``pca``, ``hvg``, ``scvi-linear``, ``scvi-5l``.
    embeddings
        ``obsm`` keys of embeddings computed elsewhere, scored under their key.
    metrics, n_null, null_size
        Distances to compute and the control null (see :func:`cellshift.analysis.score_perturbations`).
    min_degs
        DEGs a perturbation needs to be used for fine-tuning.
    gene_sets, top, permutations
        0-DEG enrichment: bundled set names or files, the top-n values, the permutations.
    finetune_steps, finetune_lr, finetune_batch_size
        Contrastive fine-tuning: optimizer steps (0: none), AdamW learning rate (Zhao et al.:
        1e-5), pairs per batch.
    umap_perturbations
        Perturbations shown in the UMAP figure (default: the top 2 and the top 0-DEG ones).
    seed
        Seed of everything random.
    layer
        Layer with the raw counts (default: ``X``).
    response
        Also benchmark response prediction of unseen knock-downs (issue 5) and add its section.
    """

    perturbation_key: str
    control: str
    min_cells: int = 20
    exclude: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ("pca", "hvg")
    embeddings: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("edistance", "cosine_edistance", "wasserstein")
    n_null: int = 200
    null_size: int | None = None
    min_degs: int = 20
    gene_sets: tuple[str, ...] = ("essential", "cell_cycle")
    top: tuple[int, ...] = (3, 5, 10)
    permutations: int = 10_000
    finetune_steps: int = 200
    finetune_lr: float = 1e-5
    finetune_batch_size: int = 16
    umap_perturbations: tuple[str, ...] = ()
    seed: int = 0
    layer: str | None = None
    response: bool = False


@dataclass
class ScreenResult:
    """What a screen run produced (tables per embedding name, as written into ``out``)."""

    out: Path
    report: Path
    scores: dict[str, pd.DataFrame]
    degs: pd.DataFrame
    enrichment: pd.DataFrame | None
    seconds: dict[str, float]
    pairs: dict[str, pd.DataFrame]
    medians: pd.DataFrame


def run_screen(
    adata: ad.AnnData,
    out: str | os.PathLike,
    settings: ScreenSettings,
    *,
    model: str | os.PathLike | None = None,
    finetuned: str | os.PathLike | None = None,
    notes: dict[str, str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> ScreenResult:
    """Run steps 1-7 (see the module docstring) and write everything into ``out``.

    Parameters
    ----------
    adata
        The screen: cells x genes with raw counts, ``obs[settings.perturbation_key]``.
    out
        Run directory; refused when it holds a report unless ``overwrite``.
    settings
        :class:`ScreenSettings`.
    model
        A pre-trained cellshift model directory; its embeddings are added, and it is fine-tuned
        contrastively on the training perturbations when ``settings.finetune_steps > 0``.
    finetuned
        A model fine-tuned before (``cellshift finetune``): embedded as the fine-tuned model
        instead of fine-tuning ``model``; the split saved with it (``training/split.json``) is
        used, so its held-out perturbations stay unseen.
    notes
        Lines added to the report's summary (e.g. what the model was pre-trained on).
    overwrite, progress
        Replace an existing run; show progress bars.
    """
    from cellshift.analysis import degs as compute_degs
    from cellshift.analysis import score_perturbation_pairs, score_perturbations, validate_screen
    from cellshift.analysis.scoring import EDISTANCE_METRICS
    from cellshift.analysis.split import split_perturbations

    out = Path(out)
    check_writable(out / "report.html", overwrite, option="--out")
    saved_split = _finetuned_split(finetuned, adata, settings) if finetuned is not None else None
    missing = [key for key in settings.embeddings if key not in adata.obsm]
    if missing:
        raise KeyError(f"embeddings {missing} are not in adata.obsm; available keys: {list(adata.obsm)}")
    for folder in (out, out / "scores", out / "figures"):
        folder.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    s = settings
    validate_screen(adata, perturbation_key=s.perturbation_key, control=s.control, min_cells=s.min_cells)

    started = time.perf_counter()
    summary, per_gene = compute_degs(
        adata,
        perturbation_key=s.perturbation_key,
        control=s.control,
        layer=s.layer,
        min_cells=s.min_cells,
        exclude=s.exclude,
    )
    write_csv_atomic(summary, out / "degs.csv", overwrite=True)
    write_csv_atomic(per_gene, out / "degs.genes.csv", overwrite=True)
    seconds["degs"] = time.perf_counter() - started

    split = saved_split or split_perturbations(
        adata,
        degs=summary,
        perturbation_key=s.perturbation_key,
        control=s.control,
        min_degs=s.min_degs,
        seed=s.seed,
        exclude=s.exclude,
    )
    split.save(out / "split.json", overwrite=True)

    keys = _embed_all(adata, out, s, model, finetuned, split, seconds, progress)

    scores: dict[str, pd.DataFrame] = {}
    nulls: dict[str, pd.DataFrame] = {}
    pairs: dict[str, pd.DataFrame] = {}
    held_out = _held_out(split, summary, s.min_cells)
    for name, key in keys.items():
        started = time.perf_counter()
        table, nulls[name] = score_perturbations(
            adata,
            embedding=key,
            perturbation_key=s.perturbation_key,
            control=s.control,
            metrics=s.metrics,
            n_null=s.n_null,
            null_size=s.null_size,
            seed=s.seed,
            min_cells=s.min_cells,
            exclude=s.exclude,
            return_nulls=True,
        )
        table = table.merge(summary[["perturbation", "n_degs", "knockdown"]], on="perturbation", how="left")
        write_csv_atomic(table, out / "scores" / f"{name}.csv", overwrite=True)
        write_csv_atomic(nulls[name], out / "scores" / f"{name}.nulls.csv", overwrite=True)
        scores[name] = table
        pair_metrics = [metric for metric in s.metrics if metric in EDISTANCE_METRICS]
        if len(held_out) >= 2 and pair_metrics:
            pairs[name] = score_perturbation_pairs(
                adata,
                embedding=key,
                perturbation_key=s.perturbation_key,
                control=s.control,
                perturbations=held_out,
                metrics=pair_metrics,
                n_null=s.n_null,
                seed=s.seed,
                min_cells=s.min_cells,
                exclude=s.exclude,
            )
            write_csv_atomic(pairs[name], out / "scores" / f"{name}.pairs.csv", overwrite=True)
        seconds[f"score {name}"] = time.perf_counter() - started

    enrichment = _enrichment(scores, summary, s)
    if enrichment is not None:
        write_csv_atomic(enrichment, out / "enrichment.csv", overwrite=True)

    response = _response(adata, out, s, model, seconds) if s.response else None
    medians = screen_medians(scores, summary, split, pairs)
    write_csv_atomic(medians, out / "medians.csv", overwrite=True)
    tuned_dir = Path(finetuned) if finetuned is not None else out / "finetuned_model"
    tables = (scores, nulls, pairs, medians)
    report = _report(
        adata, out, s, keys, tables, summary, split, enrichment, seconds, notes or {}, response,
        tuned_dir if "finetuned" in keys else None,
    )  # fmt: skip
    write_text_atomic(out / "run.json", json.dumps({"settings": asdict(s), "seconds": seconds}, indent=2))
    return ScreenResult(out, report, scores, summary, enrichment, seconds, pairs, medians)


def screen_medians(scores, summary, split, pairs) -> pd.DataFrame:
    """The report's medians table: per model, the 0-DEG pool, the test perturbations and the pairs."""
    from cellshift.report.sections import medians_table, split_pools

    return medians_table(scores, summary, pools=split_pools(split), pairs_by_model=pairs)


def _finetuned_split(finetuned, adata, s: ScreenSettings):
    """The split saved with a fine-tuned model, checked against the screen."""
    from cellshift.analysis.split import PerturbationSplit
    from cellshift.training.contrastive import SPLIT_FILE

    path = Path(finetuned) / "training" / SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: without the split saved at fine-tuning the held-out perturbations of {finetuned} are "
            "unknown; fine-tune with `cellshift finetune` (it saves the split) or let `cellshift screen` fine-tune"
        )
    split = PerturbationSplit.load(path)
    labels = set(adata.obs[s.perturbation_key].astype(str))
    unknown = sorted(set(split.train + split.test + split.zero_deg) - labels)
    if unknown:
        raise ValueError(f"the split of {finetuned} names perturbations {unknown} that are not in this screen")
    return split


def _held_out(split, summary: pd.DataFrame, min_cells: int) -> list[str]:
    """Perturbations never seen in fine-tuning (test, 0-DEG and few-DEG ones) that are scored."""
    scored = set(summary.loc[summary["n_cells"] >= min_cells, "perturbation"].astype(str))
    return sorted(set(split.test + split.zero_deg + split.few_degs) & scored)


def _embed_all(adata, out, s, model, finetuned, split, seconds, progress) -> dict[str, str]:
    """Compute every embedding into ``adata.obsm``; return name -> obsm key."""
    from cellshift.embed import embed_hvg, embed_pca

    keys: dict[str, str] = {}
    for name in s.baselines:
        started = time.perf_counter()
        if name == "pca":
            embed_pca(adata, layer=s.layer)
            keys[name] = "X_pca"
        elif name == "hvg":
            embed_hvg(adata, layer=s.layer)
            keys[name] = "X_hvg"
        elif name in ("scvi-linear", "scvi-5l"):
            from cellshift.embed import embed_scvi

            variant = name.removeprefix("scvi-")
            embed_scvi(adata, variant=variant, layer=s.layer, seed=s.seed)
            keys[name] = f"X_scvi_{variant.replace('-', '_')}"
        else:
            raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
        seconds[f"embed {name}"] = time.perf_counter() - started
    keys.update({key: key for key in s.embeddings})
    from cellshift.embed.model_cells import embed_model

    if model is not None:
        started = time.perf_counter()
        embed_model(adata, model, layer=s.layer, key_added=MODEL_KEYS["pretrained"], progress=progress)
        keys["pretrained"] = MODEL_KEYS["pretrained"]
        seconds["embed pretrained"] = time.perf_counter() - started
    if finetuned is not None:
        started = time.perf_counter()
        embed_model(adata, finetuned, layer=s.layer, key_added=MODEL_KEYS["finetuned"], progress=progress)
        keys["finetuned"] = MODEL_KEYS["finetuned"]
        seconds["embed finetuned"] = time.perf_counter() - started
    elif model is not None and s.finetune_steps > 0 and split.train:
        from cellshift.training import FinetuneSettings, finetune

        started = time.perf_counter()
        tuned = finetune(
            model,
            adata,
            out / "finetuned_model",
            perturbation_key=s.perturbation_key,
            perturbations=split.train,
            control_cells=split.control_train,
            validation_controls=split.control_validation,
            settings=FinetuneSettings(
                max_steps=s.finetune_steps,
                learning_rate=s.finetune_lr,
                batch_size=s.finetune_batch_size,
                seed=s.seed,
            ),
            layer=s.layer,
            split=asdict(split),
            overwrite=True,
            progress=progress,
        ).model_dir
        seconds["finetune"] = time.perf_counter() - started
        started = time.perf_counter()
        embed_model(adata, tuned, layer=s.layer, key_added=MODEL_KEYS["finetuned"], progress=progress)
        keys["finetuned"] = MODEL_KEYS["finetuned"]
        seconds["embed finetuned"] = time.perf_counter() - started
    return keys


def _enrichment(scores: dict[str, pd.DataFrame], summary: pd.DataFrame, s: ScreenSettings) -> pd.DataFrame | None:
    """0-DEG enrichment per embedding; ``None`` when the 0-DEG pool is too small to test."""
    from cellshift.analysis.enrichment import load_gene_set, zero_deg_enrichment

    scored = set(next(iter(scores.values()))["perturbation"])
    n_pool = int(summary.loc[summary["perturbation"].isin(scored), "n_degs"].eq(0).sum())
    top = tuple(n for n in s.top if n <= n_pool)
    if len(top) < len(s.top):
        warnings.warn(
            f"the 0-DEG pool has {n_pool} scored perturbations, so top n {[n for n in s.top if n > n_pool]} "
            f"cannot be tested; testing {list(top) or 'none'}",
            stacklevel=3,
        )
    if not top:
        return None
    sets = dict(load_gene_set(spec) for spec in s.gene_sets)
    tables = []
    for name, table in scores.items():
        result = zero_deg_enrichment(
            table.drop(columns=["n_degs", "knockdown"]),
            gene_sets=sets,
            degs=summary,
            top=top,
            n_permutations=s.permutations,
            seed=s.seed,
        )
        tables.append(result.assign(model=name))
    return pd.concat(tables, ignore_index=True)


def _response(adata, out, s, model, seconds) -> tuple[pd.DataFrame, object]:
    """Response-prediction benchmark on this screen: summary table and the L2 box plot."""
    from cellshift.analysis.response import benchmark
    from cellshift.plotting.response import l2_boxplot

    started = time.perf_counter()
    embeddings = ("pca", "grn", "family", "random") + (("model",) if model is not None else ())
    result = benchmark(
        adata,
        perturbation_key=s.perturbation_key,
        control=s.control,
        min_cells=s.min_cells,
        layer=s.layer,
        exclude=s.exclude,
        embeddings=embeddings,
        model_dir=model,
        seed=s.seed,
    )
    (out / "response").mkdir(exist_ok=True)
    write_csv_atomic(result.scores, out / "response" / "scores.csv", overwrite=True)
    write_csv_atomic(result.summary, out / "response" / "summary.csv", overwrite=True)
    figure = l2_boxplot(result.scores, path=out / "figures" / "response_l2.png", overwrite=True)
    seconds["response"] = time.perf_counter() - started
    return result.summary, figure


def _report(adata, out, s, keys, tables, summary, split, enrichment, seconds, notes, response, tuned_dir) -> Path:
    """Figures and the HTML report; ``tables``: scores, null draws and pair scores per embedding, medians."""
    from cellshift.analysis.calibration import standardised_nulls
    from cellshift.analysis.scoring import EDISTANCE_METRICS
    from cellshift.plotting import (
        control_null,
        distance_distributions,
        enrichment_pvalues,
        pair_distance_distributions,
        umap_compare_embeddings,
    )
    from cellshift.report import Section, build_report, screen_sections

    scores, nulls, pairs, medians = tables
    figures = {}
    metric = s.metrics[0]
    figures["Normalised distances per embedding"] = distance_distributions(
        scores, metric=metric, degs=summary, path=out / "figures" / "distances.png", overwrite=True
    )
    pair_metric = next((m for m in s.metrics if m in EDISTANCE_METRICS), None)
    if pairs and pair_metric:
        figures["Normalised distances between held-out perturbations"] = pair_distance_distributions(
            pairs, metric=pair_metric, path=out / "figures" / "pair_distances.png", overwrite=True
        )
    if tuned_dir is not None and (tuned_dir / "training" / "loss.csv").is_file():
        from cellshift.plotting.training import plot_loss_curve

        settings_file = tuned_dir / "training" / "settings.json"
        margin = json.loads(settings_file.read_text()).get("margin") if settings_file.is_file() else None
        figures["Contrastive fine-tuning"] = plot_loss_curve(
            tuned_dir / "training" / "loss.csv", out / "figures" / "finetune_loss.png", margin=margin
        )
    figures["Control null (z-scores of random control groups, pooled over sizes)"] = control_null(
        {name: standardised_nulls(null, metric) for name, null in nulls.items()},
        scores,
        metric=f"{metric}_z",
        path=out / "figures" / "control_null.png",
        overwrite=True,
    )
    if enrichment is not None:
        figures["0-DEG enrichment p-values against the top n"] = enrichment_pvalues(
            enrichment, path=out / "figures" / "enrichment.png", overwrite=True
        )
    shown = list(s.umap_perturbations) or _umap_choice(scores, summary, keys, metric)
    if shown:
        figures["UMAP of perturbed vs control cells"] = umap_compare_embeddings(
            adata,
            embeddings={name: key for name, key in keys.items()},
            perturbation_key=s.perturbation_key,
            control=s.control,
            perturbations=shown,
            seed=s.seed,
            path=out / "figures" / "umap.png",
            overwrite=True,
        )
    ranking = "finetuned" if "finetuned" in scores else next(iter(scores))
    n_zero = int((summary["n_degs"] == 0).sum())
    run_summary = {
        "cells": adata.n_obs,
        "perturbations scored": len(next(iter(scores.values()))),
        "perturbations with 0 DEGs": n_zero,
        "embeddings": ", ".join(keys),
        "seconds": round(sum(seconds.values()), 1),
        **notes,
    }
    sections = screen_sections(
        scores,
        degs=summary,
        enrichment=enrichment,
        figures=figures,
        summary=run_summary,
        split=split,
        settings=asdict(s),
        ranking_model=ranking,
        metric=metric,
        min_degs=s.min_degs,
        medians=medians,
    )
    if response is not None:
        table, figure = response
        text = (
            "Pseudobulk change of each held-out knock-down predicted from gene embeddings (kNN, 5 splits of the "
            "perturbations); L2 = norm of predicted minus measured change, lower is better."
        )
        sections.insert(-3, Section("Response prediction of unseen knock-downs", text=text, table=table, figure=figure))
    return build_report(sections, title="cellshift screen report", path=out / "report.html", overwrite=True)


def _umap_choice(scores, summary, keys, metric, n: int = 2) -> list[str]:
    """The two top-ranked perturbations and the two top-ranked 0-DEG ones of the first embedding."""
    table = next(iter(scores.values())).sort_values(f"{metric}_z", ascending=False)
    zero = set(summary.loc[summary["n_degs"] == 0, "perturbation"])
    top = table["perturbation"].tolist()[:n]
    top_zero = [p for p in table["perturbation"] if p in zero][:n]
    return list(dict.fromkeys(top + top_zero))


def pick_cells(adata: ad.AnnData, key: str, *, max_per_group: int, seed: int, always: Sequence[str] = ()) -> ad.AnnData:
    """At most ``max_per_group`` random cells of every group (labels in ``always`` kept whole)."""
    rng = np.random.default_rng(seed)
    keep = []
    for label, rows in adata.obs.groupby(key, observed=True).indices.items():
        if label in always or len(rows) <= max_per_group:
            keep.append(rows)
        else:
            keep.append(np.sort(rng.choice(rows, max_per_group, replace=False)))
    return adata[np.sort(np.concatenate(keep))].copy()
