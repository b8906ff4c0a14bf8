"""The steps of a screen run: each fills its fields of a :class:`ScreenRun` and writes them into the run directory."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import anndata as ad
import pandas as pd

from cellshift._io import write_csv_atomic
from cellshift.analysis.cell_scores import DEFAULT_FOLDS, MIN_CONTROLS_PER_FOLD, per_cell_table, score_cells
from cellshift.analysis.enrichment import load_gene_set, zero_deg_enrichment
from cellshift.analysis.pair_scoring import score_perturbation_pairs
from cellshift.analysis.responders import responder_knockdown
from cellshift.analysis.response import benchmark
from cellshift.analysis.scoring import EDISTANCE_METRICS, score_perturbations
from cellshift.analysis.split import PerturbationSplit
from cellshift.analysis.summary import medians_table, split_pools
from cellshift.embed.registry import EmbedOptions, add_cell_embedding
from cellshift.pipelines.finetune import finetune_on_screen
from cellshift.pipelines.screen_run import ScreenRun, timed
from cellshift.pipelines.split import degs_and_split
from cellshift.plotting.response import l2_boxplot
from cellshift.training import FinetuneSettings

RESPONSE_EMBEDDINGS = ("pca", "grn", "family", "random")


def find_degs_and_split(run: ScreenRun, adata: ad.AnnData, saved_split: PerturbationSplit | None) -> None:
    """DEGs per perturbation and the split by perturbation (``saved_split`` when given)."""
    s = run.settings
    with timed(run.seconds, "degs"):
        found = degs_and_split(
            adata,
            perturbation_key=s.perturbation_key,
            control=s.control,
            min_cells=s.min_cells,
            exclude=s.exclude,
            layer=s.layer,
            min_degs=s.min_degs,
            seed=s.seed,
            split=saved_split,
        )
        write_csv_atomic(found.degs, run.out / "degs.csv", overwrite=True)
        write_csv_atomic(found.degs_per_gene, run.out / "degs.genes.csv", overwrite=True)
    run.degs, run.degs_per_gene, run.split = found.degs, found.degs_per_gene, found.split
    run.split.save(run.out / "split.json", overwrite=True)


def add_embeddings(
    run: ScreenRun,
    adata: ad.AnnData,
    model: str | os.PathLike | None,
    finetuned: str | os.PathLike | None,
    progress: bool,
) -> None:
    """Baselines, the embeddings already in ``obsm``, the pre-trained model and the fine-tuned one.

    The fine-tuned model is ``finetuned`` when given, else ``model`` fine-tuned here on the
    training perturbations (when ``settings.finetune_steps > 0`` and the split has some).
    """
    s = run.settings
    for name in s.baselines:
        with timed(run.seconds, f"embed {name}"):
            run.embeddings[name] = add_cell_embedding(adata, name, EmbedOptions(layer=s.layer, seed=s.seed))
    run.embeddings.update({key: key for key in s.embeddings})
    if model is not None:
        _embed_model(run, adata, "pretrained", model, progress)
    if finetuned is not None:
        run.finetuned_model = Path(finetuned)
    elif model is not None and s.finetune_steps > 0 and run.split.train:
        with timed(run.seconds, "finetune"):
            run.finetuned_model = _finetune(run, adata, model, progress)
    if run.finetuned_model is not None:
        _embed_model(run, adata, "finetuned", run.finetuned_model, progress)


def _embed_model(run: ScreenRun, adata: ad.AnnData, name: str, model_dir: str | os.PathLike, progress: bool) -> None:
    """One model's embedding, registered under ``name`` (``pretrained`` or ``finetuned``)."""
    with timed(run.seconds, f"embed {name}"):
        options = EmbedOptions(layer=run.settings.layer, model=model_dir, progress=progress)
        run.embeddings[name] = add_cell_embedding(adata, name, options)


def _finetune(run: ScreenRun, adata: ad.AnnData, model: str | os.PathLike, progress: bool) -> Path:
    """Fine-tune ``model`` on the run's split into ``finetuned_model/``; return that directory."""
    s = run.settings
    settings = FinetuneSettings(
        max_steps=s.finetune_steps, learning_rate=s.finetune_lr, batch_size=s.finetune_batch_size, seed=s.seed
    )
    result = finetune_on_screen(
        model,
        adata,
        run.out / "finetuned_model",
        perturbation_key=s.perturbation_key,
        control=s.control,
        settings=settings,
        layer=s.layer,
        degs=run.degs,
        split=run.split,
        overwrite=True,
        progress=progress,
    )
    return result.training.model_dir


def score_embeddings(run: ScreenRun, adata: ad.AnnData) -> None:
    """Per embedding, distances of every perturbation to control and between the held-out perturbations."""
    s = run.settings
    held_out = _held_out(run.split, run.degs, s.min_cells)
    pair_metrics = [metric for metric in s.metrics if metric in EDISTANCE_METRICS]
    for name, key in run.embeddings.items():
        with timed(run.seconds, f"score {name}"):
            _score_to_control(run, adata, name, key)
            if len(held_out) >= 2 and pair_metrics:
                _score_pairs(run, adata, name, key, held_out, pair_metrics)


def _held_out(split: PerturbationSplit, degs: pd.DataFrame, min_cells: int) -> list[str]:
    """Perturbations never seen in fine-tuning (test, 0-DEG and few-DEG ones) that are scored."""
    scored = set(degs.loc[degs["n_cells"] >= min_cells, "perturbation"].astype(str))
    return sorted(set(split.test + split.zero_deg + split.few_degs) & scored)


def _score_to_control(run: ScreenRun, adata: ad.AnnData, name: str, key: str) -> None:
    """Distances to control of one embedding, z-scored against the control null, with the DEG counts."""
    s = run.settings
    table, nulls = score_perturbations(
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
        batch_key=s.batch_key,
        return_nulls=True,
    )
    table = table.merge(run.degs[["perturbation", "n_degs", "knockdown"]], on="perturbation", how="left")
    if s.per_cell and _enough_controls_per_fold(run, adata):
        table = table.merge(_score_cells(run, adata, name, key), on="perturbation", how="left")
    write_csv_atomic(table, run.out / "scores" / f"{name}.csv", overwrite=True)
    write_csv_atomic(nulls, run.out / "scores" / f"{name}.nulls.csv", overwrite=True)
    run.scores[name], run.nulls[name] = table, nulls


def _score_cells(run: ScreenRun, adata: ad.AnnData, name: str, key: str) -> pd.DataFrame:
    """Per-cell scores and responder calls in one embedding (``obs['<name>_cells_*']``); returns their summary."""
    s = run.settings
    score_cells(
        adata,
        embedding=key,
        perturbation_key=s.perturbation_key,
        control=s.control,
        min_cells=s.min_cells,
        exclude=s.exclude,
        fdr=s.fdr,
        seed=s.seed,
        key_added=f"{name}_cells",
    )
    run.cells[name] = per_cell_table(adata, s.perturbation_key, key_added=f"{name}_cells")
    write_csv_atomic(run.cells[name], run.out / "scores" / f"{name}.cells.csv", overwrite=True)
    summary = adata.uns[f"{name}_cells_response"]["summary"]
    return summary[["perturbation", "n_responders", "fraction_responders", "responding_fraction_storey"]]


def _enough_controls_per_fold(run: ScreenRun, adata: ad.AnnData) -> bool:
    """Whether the controls fill every fold of the per-cell scores; warn (once per embedding) when not."""
    s = run.settings
    n_control = int((adata.obs[s.perturbation_key].astype(str) == s.control).sum())
    needed = MIN_CONTROLS_PER_FOLD * DEFAULT_FOLDS
    if n_control < needed:
        warnings.warn(
            f"per-cell scores skipped: they need {needed} control cells and the screen has {n_control}", stacklevel=4
        )
    return n_control >= needed


def check_responders(run: ScreenRun, adata: ad.AnnData) -> None:
    """On-target knock-down in responders vs non-responders of the ranking embedding (``responders_knockdown.csv``)."""
    if not run.cells:
        return
    s = run.settings
    run.responder_knockdown = responder_knockdown(
        adata, perturbation_key=s.perturbation_key, layer=s.layer, key_added=f"{run.ranking_model}_cells"
    )
    write_csv_atomic(run.responder_knockdown, run.out / "responders_knockdown.csv", overwrite=True)


def _score_pairs(
    run: ScreenRun, adata: ad.AnnData, name: str, key: str, held_out: list[str], metrics: list[str]
) -> None:
    """Distances between the held-out perturbations in one embedding, z-scored."""
    s = run.settings
    run.pairs[name] = score_perturbation_pairs(
        adata,
        embedding=key,
        perturbation_key=s.perturbation_key,
        control=s.control,
        perturbations=held_out,
        metrics=metrics,
        n_null=s.n_null,
        seed=s.seed,
        min_cells=s.min_cells,
        exclude=s.exclude,
    )
    write_csv_atomic(run.pairs[name], run.out / "scores" / f"{name}.pairs.csv", overwrite=True)


def enrich_zero_deg_pool(run: ScreenRun) -> None:
    """0-DEG enrichment per embedding; left ``None`` when the 0-DEG pool is too small to test."""
    s = run.settings
    scored = set(next(iter(run.scores.values()))["perturbation"])
    n_pool = int(run.degs.loc[run.degs["perturbation"].isin(scored), "n_degs"].eq(0).sum())
    top = tuple(n for n in s.top if n <= n_pool)
    if len(top) < len(s.top):
        warnings.warn(
            f"the 0-DEG pool has {n_pool} scored perturbations, so top n {[n for n in s.top if n > n_pool]} "
            f"cannot be tested; testing {list(top) or 'none'}",
            stacklevel=3,
        )
    if not top:
        return
    sets = dict(load_gene_set(spec) for spec in s.gene_sets)
    tables = []
    for name, table in run.scores.items():
        result = zero_deg_enrichment(
            table.drop(columns=["n_degs", "knockdown"]),
            gene_sets=sets,
            degs=run.degs,
            top=top,
            n_permutations=s.permutations,
            seed=s.seed,
        )
        tables.append(result.assign(model=name))
    run.enrichment = pd.concat(tables, ignore_index=True)
    write_csv_atomic(run.enrichment, run.out / "enrichment.csv", overwrite=True)


def predict_responses(run: ScreenRun, adata: ad.AnnData, model: str | os.PathLike | None) -> None:
    """Response-prediction benchmark on this screen: summary table, per-split scores and the L2 box plot."""
    s = run.settings
    with timed(run.seconds, "response"):
        result = benchmark(
            adata,
            perturbation_key=s.perturbation_key,
            control=s.control,
            min_cells=s.min_cells,
            layer=s.layer,
            exclude=s.exclude,
            embeddings=RESPONSE_EMBEDDINGS + (("model",) if model is not None else ()),
            model_dir=model,
            seed=s.seed,
        )
        (run.out / "response").mkdir(exist_ok=True)
        write_csv_atomic(result.scores, run.out / "response" / "scores.csv", overwrite=True)
        write_csv_atomic(result.summary, run.out / "response" / "summary.csv", overwrite=True)
        run.response_figure = l2_boxplot(result.scores, path=run.out / "figures" / "response_l2.png", overwrite=True)
    run.response = result.summary


def summarise_medians(run: ScreenRun) -> None:
    """Median normalised distance per embedding: 0-DEG pool, test perturbations and pairs (``medians.csv``)."""
    run.medians = medians_table(run.scores, run.degs, pools=split_pools(run.split), pairs_by_model=run.pairs)
    write_csv_atomic(run.medians, run.out / "medians.csv", overwrite=True)
