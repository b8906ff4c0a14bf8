"""E-distances between pairs of perturbations, z-scored against pairs of disjoint control groups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import anndata as ad
import numpy as np
import pandas as pd

from cellshift.analysis.calibration import add_scores, size_bucket, size_scale, standardise
from cellshift.analysis.scoring import EDISTANCE_METRICS, l2_normalize
from cellshift.analysis.screen_input import get_embedding, validate_screen
from cellshift.metrics import ControlNull, pairwise_group_edistance, threads_for_small_ops

PAIR_MAX_NULL = 200
PAIR_NULL_STREAM = 4  # after the streams of cellshift.analysis.scoring


def score_perturbation_pairs(
    adata: ad.AnnData,
    *,
    embedding: str,
    perturbation_key: str,
    control: str,
    perturbations: Sequence[str] | None = None,
    metrics: Sequence[str] = ("edistance", "cosine_edistance"),
    n_null: int = 200,
    seed: int = 0,
    min_cells: int = 20,
    exclude: Iterable[str] = (),
) -> pd.DataFrame:
    """E-distance between every pair of perturbations, z-scored against a control null.

    The second half of Figure 5 of Zhao et al. 2025: do the perturbations differ from each
    other, not only from control? For perturbations ``g`` and ``h`` (rows L2-normalised),
    ``E_gh = 2 mean_{i in g, j in h} d - mean_{i != i' in g} d - mean_{j != j' in h} d``
    (:func:`cellshift.metrics.pairwise_group_edistance`). Its null is the E-distance between
    two disjoint random groups of ``s`` control cells with
    ``s = size_bucket(2 n_g n_h / (n_g + n_h))``: the spread of the statistic is proportional to
    ``1 / n_g + 1 / n_h``, which equals ``2 / s`` at the harmonic mean, and the draws are scaled
    by ``(1 / n_g + 1 / n_h) / (2 / s)`` for the rounding to the grid. ``s`` is at most half the
    control cells. ``z`` and the p-value are as in :func:`score_perturbations`.

    Parameters
    ----------
    adata, embedding, perturbation_key, control, seed, min_cells, exclude
        As in :func:`score_perturbations`.
    perturbations
        The perturbations to compare (e.g. the held-out test perturbations); default: every
        scored perturbation.
    metrics
        ``"edistance"`` and/or ``"cosine_edistance"``.
    n_null
        Null draws per control-group size, at most ``PAIR_MAX_NULL`` (each draw computes the
        distances among ``2 s`` control cells, and ``s`` is large for pairs of large groups).

    Returns
    -------
    pandas.DataFrame
        One row per unordered pair: ``perturbation_1, perturbation_2, n_cells_1, n_cells_2`` and
        for each metric ``<metric>, <metric>_z, <metric>_pvalue``.

    Raises
    ------
    ValueError
        For a metric that is not an E-distance, fewer than 2 perturbations, a perturbation that
        is not scored (unknown, excluded or below ``min_cells``), or too few control cells.
    """
    unknown_metrics = [metric for metric in metrics if metric not in EDISTANCE_METRICS]
    if unknown_metrics:
        raise ValueError(f"pairs are scored with {', '.join(EDISTANCE_METRICS)} only, got {unknown_metrics}")
    screen = validate_screen(
        adata, perturbation_key=perturbation_key, control=control, min_cells=min_cells, exclude=exclude
    )
    chosen = list(screen.groups) if perturbations is None else [str(label) for label in perturbations]
    not_scored = sorted(set(chosen) - set(screen.groups))
    if not_scored:
        raise ValueError(
            f"perturbation(s) {not_scored} are not scored (unknown, excluded or with fewer than {min_cells} cells)"
        )
    if len(set(chosen)) < 2:
        raise ValueError(f"pairs need at least 2 perturbations, got {sorted(set(chosen))}")
    sizes = dict(zip(screen.groups, screen.sizes, strict=True))
    largest = screen.n_control // 2
    Z = l2_normalize(get_embedding(adata, embedding))
    in_pairs = screen.in_groups(chosen)
    first, second = np.triu_indices(len(set(chosen)), k=1)
    draws = min(n_null, PAIR_MAX_NULL)
    table = pd.DataFrame()
    with threads_for_small_ops():  # many small torch ops: no more threads than free CPUs
        for metric in metrics:
            matrix = pairwise_group_edistance(Z[in_pairs], screen.labels[in_pairs], metric=metric)
            names = matrix.index.to_numpy()
            if table.empty:
                table = pd.DataFrame({"perturbation_1": names[first], "perturbation_2": names[second]})
                table["n_cells_1"] = [sizes[name] for name in table["perturbation_1"]]
                table["n_cells_2"] = [sizes[name] for name in table["perturbation_2"]]
                harmonic = 2 * table["n_cells_1"] * table["n_cells_2"] / (table["n_cells_1"] + table["n_cells_2"])
                null_sizes = [min(size_bucket(int(round(n))), largest) for n in harmonic]
                screen.require_controls(2 * max(null_sizes), "the pair null (two disjoint control groups)")
            control_null = ControlNull(Z[screen.control_mask], metric=metric)
            nulls = {
                size: control_null.sample(
                    size, draws, np.random.default_rng([seed, PAIR_NULL_STREAM, size]), against="subset"
                )
                for size in sorted(set(null_sizes))
            }
            values = matrix.to_numpy()[first, second]
            pair_sizes = zip(table["n_cells_1"], table["n_cells_2"], null_sizes, strict=True)
            scaled = [nulls[size] * size_scale(a, b, size, size) for a, b, size in pair_sizes]
            on_z_scale = [standardise(value, null) for value, null in zip(values, scaled, strict=True)]
            add_scores(table, metric, values, [z for z, _ in on_z_scale], [null for _, null in on_z_scale])
    return table
