"""Figures of a screen's scores: distance distributions, enrichment p-values, control null.

- :func:`distance_distributions`: per model, the normalised distances ``<metric>_z`` of the
  perturbations (violins and points), split by DEG class when the number of DEGs is known
  (Zhao et al. 2025, Figure 5).
- :func:`enrichment_pvalues`: ``-log10 p`` of the 0-DEG enrichment test vs the top ``n``,
  one line per metric, with the Bonferroni threshold (Figure 6).
- :func:`pair_distance_distributions`: per model, the normalised distances between pairs of
  perturbations (Figure 5, second half).
- :func:`control_null`: histogram of the control null with the observed distances (Figure A6).

The UMAP figures (Figures 2-4) are in :mod:`cellshift.plotting.umap`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cellshift.analysis.summary import attach_n_degs
from cellshift.plotting._deg_classes import MIN_DEGS, deg_class_labels, deg_classes
from cellshift.plotting._save import finish, new_figure

CLASS_COLORS = ("#7f7f7f", "#9ecae1", "#d62728")
METRIC_MARKERS = ("o", "s", "^", "D", "v")
ENRICHMENT_COLUMNS = ("gene_set", "metric", "top_n", "p_value")
JITTER_STREAM = 11


def distance_distributions(
    scores_by_model: Mapping[str, pd.DataFrame],
    *,
    metric: str = "edistance",
    degs: pd.DataFrame | Mapping[str, int] | None = None,
    min_degs: int = MIN_DEGS,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """Distribution of the normalised distances ``<metric>_z`` of the perturbations, per model.

    One violin (with the individual perturbations as jittered points and the median as a bar)
    per model, or, when the number of DEGs is known (an ``n_degs`` column, or ``degs``), one
    per model and DEG class: ``0 DEGs``, ``1 .. min_degs - 1`` and ``>= min_degs`` DEGs.
    Perturbations whose ``z`` is NaN (a null without spread) are left out and counted in the
    axis label; perturbations with unknown ``n_degs`` are left out of the split and counted too.

    Parameters
    ----------
    scores_by_model
        Model (embedding) name -> scores table from :func:`cellshift.analysis.score_perturbations`
        (``perturbation`` and ``<metric>_z`` columns).
    metric
        ``"edistance"``, ``"cosine_edistance"`` or ``"wasserstein"``.
    degs
        Number of DEGs per perturbation (a table with ``perturbation, n_degs`` or a mapping);
        overrides an ``n_degs`` column of the scores.
    min_degs
        Lower bound of the strong class (20 in the paper).
    seed
        Seed of the horizontal jitter of the points.
    path
        Write the figure there as PNG (atomically).
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (also saved when ``path`` is given).
    """
    column = f"{metric}_z"
    tidy = _tidy_scores(scores_by_model, column, degs, min_degs)
    split = "deg_class" in tidy.columns
    classes = deg_class_labels(min_degs) if split else [None]
    models = list(scores_by_model)
    rng = np.random.default_rng([seed, JITTER_STREAM])

    figure = new_figure(max(4.0, 1.0 + 1.1 * len(models) * len(classes)), 4.2)
    axis = figure.subplots()
    width = 0.8 / len(classes)
    for m, model in enumerate(models):
        for c, label in enumerate(classes):
            selected = tidy[tidy["model"] == model]
            if split:
                selected = selected[selected["deg_class"] == label]
            center = m + (c - (len(classes) - 1) / 2) * width
            color = CLASS_COLORS[c] if split else CLASS_COLORS[2]
            _violin(axis, selected[column].to_numpy(), center, width, color, rng)
    axis.set_xticks(range(len(models)), models)
    axis.axhline(0.0, color="black", linewidth=0.6, linestyle=":")
    _symlog_when_wide(axis, tidy[column])
    axis.set_ylabel(f"normalised {metric} (z vs control null)")
    dropped = int(tidy[column].isna().sum())
    unknown = int(tidy["deg_class"].isna().sum()) if split else 0
    notes = [f"{dropped} NaN z left out"] if dropped else []
    notes += [f"{unknown} without n_degs left out"] if unknown else []
    axis.set_xlabel("model" + (f" ({'; '.join(notes)})" if notes else ""))
    if split:
        handles = [
            axis.scatter([], [], color=color, label=name) for color, name in zip(CLASS_COLORS, classes, strict=True)
        ]
        axis.legend(handles=handles, title="perturbations", loc="upper left", fontsize="small")
    axis.set_title(f"Normalised {metric} per model")
    return finish(figure, path, overwrite)


def pair_distance_distributions(
    pairs_by_model: Mapping[str, pd.DataFrame],
    *,
    metric: str = "edistance",
    seed: int = 0,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """Normalised distances between pairs of perturbations, one violin per model.

    Parameters
    ----------
    pairs_by_model
        Model name -> table of :func:`cellshift.analysis.score_perturbation_pairs`
        (``<metric>_z`` column).
    metric
        ``"edistance"`` or ``"cosine_edistance"``.
    seed, path, overwrite
        As in :func:`distance_distributions`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (also saved when ``path`` is given).
    """
    if not pairs_by_model:
        raise ValueError("pairs_by_model is empty; give at least one model's pair table")
    column = f"{metric}_z"
    for model, pairs in pairs_by_model.items():
        if column not in pairs.columns:
            raise KeyError(f"pairs of model {model!r} lack {column!r}; columns: {list(pairs.columns)}")
    rng = np.random.default_rng([seed, JITTER_STREAM])
    models = list(pairs_by_model)
    figure = new_figure(max(5.0, 1.0 + 1.1 * len(models)), 4.2)
    axis = figure.subplots()
    for m, model in enumerate(models):
        _violin(axis, pairs_by_model[model][column].to_numpy(dtype=float), m, 0.8, CLASS_COLORS[1], rng)
    axis.set_xticks(range(len(models)), models)
    axis.axhline(0.0, color="black", linewidth=0.6, linestyle=":")
    _symlog_when_wide(axis, pd.concat([pairs[column] for pairs in pairs_by_model.values()]))
    n_pairs = len(next(iter(pairs_by_model.values())))
    axis.set_ylabel(f"normalised {metric} between perturbations")
    axis.set_xlabel(f"model ({n_pairs} pairs each)")
    axis.set_title(f"Normalised {metric} between perturbations")
    return finish(figure, path, overwrite)


def _symlog_when_wide(axis: Axes, values: pd.Series, linear_up_to: float = 10.0) -> None:
    """Symmetric-log y axis (linear within +-``linear_up_to``) when z-scores reach 10x beyond it.

    Normalised distances of strong perturbations can be 100-1,000x those of the rest; on a
    linear axis everything near the null collapses onto 0.
    """
    if np.nanmax(np.abs(values.to_numpy(dtype=float)), initial=0.0) > 10 * linear_up_to:
        axis.set_yscale("symlog", linthresh=linear_up_to)


def _tidy_scores(
    scores_by_model: Mapping[str, pd.DataFrame],
    column: str,
    degs: pd.DataFrame | Mapping[str, int] | None,
    min_degs: int,
) -> pd.DataFrame:
    """One row per (model, perturbation): ``model, perturbation, <column>`` and maybe ``deg_class``."""
    if not scores_by_model:
        raise ValueError("scores_by_model is empty; give at least one model's scores table")
    frames = []
    for model, scores in scores_by_model.items():
        if column not in scores.columns or "perturbation" not in scores.columns:
            raise KeyError(
                f"scores of model {model!r} lack 'perturbation' or {column!r}; columns: {list(scores.columns)}"
            )
        table = attach_n_degs(scores, degs)
        kept = ["perturbation", column] + (["n_degs"] if "n_degs" in table.columns else [])
        frames.append(table[kept].assign(model=model))
    tidy = pd.concat(frames, ignore_index=True)
    if "n_degs" in tidy.columns:
        tidy["deg_class"] = deg_classes(tidy["n_degs"], min_degs=min_degs)
    return tidy


def _violin(axis: Axes, values: np.ndarray, center: float, width: float, color: str, rng: np.random.Generator) -> None:
    """A violin (two or more distinct finite values), the points jittered, the median as a bar."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    if np.unique(values).size > 1:
        body = axis.violinplot([values], positions=[center], widths=width * 0.9, showextrema=False)["bodies"][0]
        body.set_facecolor(color)
        body.set_alpha(0.35)
    jitter = rng.uniform(-width * 0.2, width * 0.2, values.size)
    axis.scatter(center + jitter, values, s=9, color=color, edgecolors="black", linewidths=0.3, zorder=3)
    axis.hlines(np.median(values), center - width * 0.35, center + width * 0.35, color="black", linewidth=1.5, zorder=4)


def enrichment_pvalues(
    enrichment: pd.DataFrame,
    *,
    alpha: float = 0.05,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """``-log10 p`` of the 0-DEG enrichment vs the number ``n`` of top perturbations (Figure 6).

    A grid: one row per gene set, one column per model (when there is a ``model`` column), one
    line per metric, one legend.
    The dashed line is the Bonferroni threshold ``-log10(alpha / m)``, ``m`` the number of
    distinct ``top_n`` tested in the panel (the p-values shown are unadjusted, so a point above
    the line has ``p_bonferroni < alpha``).

    Parameters
    ----------
    enrichment
        Table from :mod:`cellshift.analysis.enrichment`: ``gene_set, metric, top_n, p_value``
        (other columns such as ``k``, ``expected``, ``p_bonferroni`` are allowed), optionally
        ``model``.
    alpha
        Family-wise error rate of the threshold.
    path
        Write the figure there as PNG (atomically).
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (also saved when ``path`` is given).
    """
    missing = [name for name in ENRICHMENT_COLUMNS if name not in enrichment.columns]
    if missing:
        raise KeyError(f"enrichment table lacks column(s) {missing}; columns: {list(enrichment.columns)}")
    if enrichment.empty:
        raise ValueError("enrichment table is empty; nothing to plot")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    models = list(dict.fromkeys(enrichment["model"])) if "model" in enrichment.columns else [None]
    gene_sets = list(dict.fromkeys(enrichment["gene_set"]))
    metrics = list(dict.fromkeys(enrichment["metric"]))
    figure = new_figure(0.6 + 3.0 * len(models), 0.6 + 2.6 * len(gene_sets))
    grid = figure.subplots(len(gene_sets), len(models), squeeze=False, sharey="row")
    for row, gene_set in enumerate(gene_sets):
        for column, model in enumerate(models):
            in_panel = enrichment["gene_set"] == gene_set
            if model is not None:
                in_panel &= enrichment["model"] == model
            axis = grid[row, column]
            _enrichment_panel(axis, enrichment[in_panel], metrics, alpha)
            axis.set_title(gene_set if model is None else f"{model} / {gene_set}", fontsize="medium")
            if row == len(gene_sets) - 1:
                axis.set_xlabel("top n 0-DEG perturbations")
            if column == 0:
                axis.set_ylabel("-log10 p")
    handles, labels = grid[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small")
    return finish(figure, path, overwrite)


def _enrichment_panel(axis: Axes, panel: pd.DataFrame, metrics: list[str], alpha: float) -> None:
    """One metric line per metric and the Bonferroni line of the panel's number of tests."""
    for index, metric in enumerate(metrics):
        rows = panel[panel["metric"] == metric].sort_values("top_n")
        axis.plot(rows["top_n"], -np.log10(rows["p_value"]), marker=METRIC_MARKERS[index % 5], label=metric)
    n_tests = max(1, panel["top_n"].nunique())
    threshold = -np.log10(alpha / n_tests)
    axis.axhline(threshold, color="black", linestyle="--", linewidth=0.8, label=f"Bonferroni {alpha}")
    axis.set_ylim(bottom=0.0, top=max(threshold, float(-np.log10(panel["p_value"]).max())) * 1.15)
    axis.set_xticks(sorted(panel["top_n"].unique()))


def control_null(
    null_values: np.ndarray | Mapping[str, np.ndarray],
    observed: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    *,
    metric: str = "edistance",
    label_top: int = 5,
    bins: int = 40,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """Histogram of control-null distances with the observed distances marked (Figure A6).

    One panel per null (a mapping gives one panel per key, e.g. per model or per group size).
    Observed distances of perturbations are drawn as ticks under the histogram and as vertical
    lines, the ``label_top`` largest named; the dashed line is the null's 95th percentile. With a
    size-calibrated null each perturbation has the null of its size bucket, so compare a
    perturbation with the null drawn for its size (or use a fixed ``null_size``).

    Parameters
    ----------
    null_values
        Null distances: one array, or a mapping from panel title to array (e.g. the values of
        :func:`cellshift.metrics.control_null_edistance`).
    observed
        Scores table(s) with ``perturbation`` and ``<metric>`` columns; a mapping must use the
        keys of ``null_values``.
    metric
        Column of ``observed`` to mark.
    label_top
        Number of largest observed distances labelled by name.
    bins
        Histogram bins.
    path
        Write the figure there as PNG (atomically).
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (also saved when ``path`` is given).
    """
    nulls = {"control null": null_values} if not isinstance(null_values, Mapping) else dict(null_values)
    if isinstance(observed, Mapping):
        unknown = set(observed) - set(nulls)
        if unknown:
            raise KeyError(f"observed has keys {sorted(unknown)} without a null; null keys: {list(nulls)}")
        observed_by_panel = dict(observed)
    else:
        observed_by_panel = dict.fromkeys(nulls, observed)

    figure = new_figure(4.4 * len(nulls), 3.6)
    axes = figure.subplots(1, len(nulls), squeeze=False).ravel()
    for axis, (title, values) in zip(axes, nulls.items(), strict=True):
        values = np.asarray(values, dtype=float).ravel()
        if values.size == 0 or not np.isfinite(values).all():
            raise ValueError(f"null {title!r} must be a non-empty array of finite values")
        axis.hist(values, bins=bins, color=CLASS_COLORS[0], alpha=0.7)
        axis.axvline(np.quantile(values, 0.95), color="black", linestyle="--", linewidth=0.8, label="null 95%")
        frame = observed_by_panel.get(title)
        if frame is not None:
            _mark_observed(axis, frame, metric, label_top)
        axis.legend(fontsize="small", loc="center right")
        axis.set_xlabel(metric)
        axis.set_ylabel("null draws")
        axis.set_title(f"{title} ({values.size} null draws, all sizes)")
    return finish(figure, path, overwrite)


def _mark_observed(axis: Axes, observed: pd.DataFrame, metric: str, label_top: int) -> None:
    """Ticks at every observed distance, lines and names at the ``label_top`` largest."""
    if metric not in observed.columns or "perturbation" not in observed.columns:
        raise KeyError(f"observed lacks 'perturbation' or {metric!r}; columns: {list(observed.columns)}")
    rows = observed[["perturbation", metric]].dropna().sort_values(metric, ascending=False)
    axis.plot(
        rows[metric], np.zeros(len(rows)), "|", color=CLASS_COLORS[2], markersize=12, clip_on=False, label="observed"
    )
    top = axis.get_ylim()[1]
    low, high = axis.get_xlim()
    placed: list[tuple[float, int]] = []  # (x, level) of the names written so far
    for _, row in rows.head(label_top).iterrows():
        axis.axvline(row[metric], color=CLASS_COLORS[2], linewidth=0.7)
        # a name goes to the highest of 4 heights not taken by a name within 4% of the axis, so none overlap
        taken = {level for x, level in placed if abs(row[metric] - x) < 0.04 * (high - low)}
        level = next((level for level in range(4) if level not in taken), 0)
        height = top * (1.0 - 0.28 * level)
        axis.text(row[metric], height, str(row["perturbation"]), rotation=90, va="top", ha="right", fontsize="x-small")
        placed.append((row[metric], level))
