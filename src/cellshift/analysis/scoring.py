"""Score every perturbation of a screen against control cells, with a size-calibrated null.

For perturbation ``g`` with ``n`` cells, embedding rows L2-normalised (``z_i / ||z_i||``):

- ``reference="all"`` (default): E-distances compare ``g`` with **all** control cells; the null
  draws random control subsets ``S`` of size ``s`` and compares each with the remaining controls
  (the same estimator). ``s`` is ``n`` rounded to a geometric grid, ``s = round(r^round(log_r n))``
  with ``r = 1.25``, so one null serves groups of similar size (``null_size`` fixes ``s``). The
  E-statistic is a degenerate U-statistic: under the null its mean is 0 at every size and its
  spread is proportional to ``f(n) = 1/n + 1/(N - n)`` (``N`` control cells; on Papalexi PCA,
  ``sd / f`` stays within +-5% from 44 to 1,262 cells). So the null draws of size ``s`` are
  scaled by ``f(n) / f(s)`` to the group's own size before ``z`` and ``p``; the returned raw
  draws (``return_nulls``) are per ``s``.
- ``reference="matched"``: the paper's statistic: ``g`` vs one random sample of ``n`` control
  cells; the null compares a random control subset of size ``s`` with a disjoint one.
- Wasserstein (exact, equal sizes: an assignment problem) compares a random subset of ``m``
  cells of ``g`` with random samples of ``m`` controls, averaged over ``WASSERSTEIN_DRAWS``
  samples; its null: a random control subset ``S`` of ``m`` cells vs samples of ``m`` from the
  other controls, averaged the same way, with at most ``WASSERSTEIN_MAX_NULL`` draws per size
  (each draw solves assignment problems). The empirical W1 of two samples from one distribution
  shrinks as ``m`` grows, so the null must have exactly the compared size: ``m`` is ``n`` rounded
  **down** to the grid, ``round(r^floor(log_r n))`` (at least 80% of the cells), at most
  ``N // 2`` for ``N`` control cells, or ``min(null_size, n, N // 2)``. (Rounding to the nearest
  grid size, as for the E-distance, biased W1 z-scores downwards by up to ~3 on Papalexi; the
  E-distance null has mean 0 at every size, so there rounding only scales its spread.) With
  ``reference="matched"``: ``m = min(n, N // 2)``, one control sample, the null of
  ``null_size`` or the bucketed size, as in the paper.

Then ``z = (D - mean_null) / sd_null`` (``sd`` with ``ddof=1``) and the empirical p-value
``p = (k + 1) / (n_null + 1)`` with ``k`` the number of null values ``>= D``. All random draws
come from generators seeded by ``(seed, stream, size or group index)``: results depend only on
``seed`` and the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd

from cellshift._validate import GROUP_CELLS, NON_NEGATIVE_INT, NULL_DRAWS, check_options
from cellshift.analysis.batched_scoring import batched_edistances
from cellshift.analysis.calibration import add_scores, size_bucket, size_bucket_below, standardise
from cellshift.analysis.screen_input import Screen, get_embedding, obs_labels, validate_screen
from cellshift.metrics import (
    ControlNull,
    ReferencePieces,
    get_metric,
    pairwise_group_edistance,
    threads_for_small_ops,
    wasserstein,
)

Reference = Literal["all", "matched"]
WASSERSTEIN_DRAWS = 5
WASSERSTEIN_MAX_NULL = 100
EDISTANCE_METRICS = ("edistance", "cosine_edistance")
# Streams of random numbers, so that different draws never share a generator.
NULL_STREAM, MATCHED_STREAM, WASSERSTEIN_STREAM, WASSERSTEIN_NULL_STREAM = range(4)


def l2_normalize(Z: np.ndarray) -> np.ndarray:
    """Divide every row by its Euclidean norm (rows of zeros stay zero): ``z_i / ||z_i||``."""
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.where(norms > 0, norms, 1.0)


def score_perturbations(
    adata: ad.AnnData,
    *,
    embedding: str,
    perturbation_key: str,
    control: str,
    metrics: Sequence[str] = ("edistance", "cosine_edistance", "wasserstein"),
    n_null: int = 1000,
    null_size: int | None = None,
    reference: Reference = "all",
    seed: int = 0,
    min_cells: int = 20,
    exclude: Iterable[str] = (),
    batch_key: str | None = None,
    return_nulls: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Distance of every perturbation to the control cells, with z-scores and p-values.

    See the module docstring for the estimators, the null and the formulas.

    Parameters
    ----------
    adata
        Screen with an embedding in ``obsm[embedding]``.
    embedding
        ``obsm`` key of the embedding (e.g. ``"X_pca"``); rows are L2-normalised first.
    perturbation_key
        ``obs`` column with the perturbation labels.
    control
        Label of the control cells.
    metrics
        Any of ``"edistance"``, ``"cosine_edistance"``, ``"wasserstein"``.
    n_null
        Null draws per group size (Wasserstein: at most ``WASSERSTEIN_MAX_NULL``).
    null_size
        One fixed null group size for all perturbations (the paper: 300); ``None`` calibrates
        the null to each group's size.
    reference
        ``"all"`` (all control cells) or ``"matched"`` (one random size-matched control sample).
    seed
        Seed of every random draw.
    min_cells
        Perturbations with fewer cells are not scored (see :func:`validate_screen`).
    exclude
        Labels neither scored nor used as controls.
    batch_key
        ``obs`` column of batches (gem groups, donors, replicates): E-distances are then computed
        within batches and averaged with each perturbation's batch composition, with an exact
        stratified-permutation z (:mod:`cellshift.analysis.batched_scoring`); the table gains
        ``<metric>_batches`` and ``table.attrs["controls_per_batch"]``. E-distances against all
        controls only; p-values take the shape of the unbatched control null.
    return_nulls
        Also return the null draws.

    Returns
    -------
    pandas.DataFrame
        One row per perturbation: ``perturbation, n_cells`` and, for each metric,
        ``<metric>, <metric>_z, <metric>_pvalue, <metric>_null_size`` (the size of the control
        groups of its null), then ``status``: ``"scored"``, or why not (groups below
        ``min_cells``, listed last with empty scores).
    pandas.DataFrame
        With ``return_nulls``: every null draw, columns ``metric, null_size, value`` and ``z`` (the
        draw on the z scale its p-values are read from).

    Raises
    ------
    ValueError
        For an unknown metric or reference, an option out of range, no perturbation to score,
        or too few control cells for the null.
    """
    if reference not in ("all", "matched"):
        raise ValueError(f"reference must be 'all' or 'matched', got {reference!r}")
    for metric in metrics:
        get_metric(metric)
    check_options(
        {"n_null": n_null, "null_size": null_size, "min_cells": min_cells, "seed": seed},
        {"n_null": NULL_DRAWS, "null_size": GROUP_CELLS, "min_cells": GROUP_CELLS, "seed": NON_NEGATIVE_INT},
    )
    screen = validate_screen(
        adata, perturbation_key=perturbation_key, control=control, min_cells=min_cells, exclude=exclude
    )
    screen.require_groups()
    batches = _batches(adata, batch_key, metrics, reference)
    Z = l2_normalize(get_embedding(adata, embedding))
    table = pd.DataFrame({"perturbation": list(screen.groups), "n_cells": list(screen.sizes)})
    with threads_for_small_ops():  # many small torch ops: no more threads than free CPUs
        null_frames = _score_metrics(table, Z, screen, metrics, batches, n_null, null_size, reference, seed)
    table = screen.with_unscored(table)
    if return_nulls:
        return table, pd.concat(null_frames, ignore_index=True)
    return table


def _score_metrics(table, Z, screen, metrics, batches, n_null, null_size, reference, seed) -> list[pd.DataFrame]:
    """Add each metric's columns to ``table``; return the null draws of each metric and size."""
    null_frames = []
    for metric in metrics:
        if metric in EDISTANCE_METRICS:
            values, zs, sizes, nulls, standardised = _edistance_scores(
                Z, screen, metric, n_null, null_size, reference, seed
            )
            if batches is not None:
                batched = batched_edistances(Z, screen, batches, metric)
                values, zs = batched.values, batched.zs
                table[f"{metric}_batches"] = batched.n_batches
                table.attrs["controls_per_batch"] = batched.controls_per_batch.to_dict()
        else:
            n_null_wasserstein = min(n_null, WASSERSTEIN_MAX_NULL)
            values, sizes, nulls = _wasserstein_scores(Z, screen, n_null_wasserstein, null_size, reference, seed)
            zs, standardised = _standardise_each(values, [nulls[size] for size in sizes])
        add_scores(table, metric, values, zs, standardised)
        table[f"{metric}_null_size"] = sizes
        on_z_scale = dict(zip(sizes, standardised, strict=True))  # one standardisation per null size
        null_frames += [
            pd.DataFrame({"metric": metric, "null_size": size, "value": null, "z": on_z_scale[size]})
            for size, null in nulls.items()
        ]
    return null_frames


def _batches(adata: ad.AnnData, batch_key: str | None, metrics: Sequence[str], reference: str) -> np.ndarray | None:
    """The batch of every cell, after checking that batches can be used with these options."""
    if batch_key is None:
        return None
    batches = obs_labels(adata, batch_key, "batch key")
    others = [metric for metric in metrics if metric not in EDISTANCE_METRICS]
    if others or reference != "all":
        raise ValueError(
            f"a batch key works with {', '.join(EDISTANCE_METRICS)} against all controls; drop {others or reference}"
        )
    return batches


def _null_sizes(screen: Screen, null_size: int | None, largest: int) -> list[int]:
    """Null group size of each scored perturbation (bucketed, or ``null_size``), at most ``largest``."""
    if null_size is not None:
        return [null_size] * len(screen.groups)
    return [min(size_bucket(n), largest) for n in screen.sizes]


def _edistance_scores(
    Z: np.ndarray, screen: Screen, metric: str, n_null: int, null_size: int | None, reference: Reference, seed: int
) -> tuple[list[float], list[float], list[int], dict[int, np.ndarray], list[np.ndarray]]:
    """E-distance (or cosine E-distance) of every scored group, its z, null size, raw null per size, standardised null.

    Against all controls, ``z = E / sd_perm`` with the exact permutation sd of the pooled group and
    controls (:class:`cellshift.metrics.ReferencePieces`), and the null draws of size ``s`` are put
    on the z scale by their own exact sd (``s`` controls vs the other ``N - s``). With the paper's
    matched reference, ``z`` and the standardised null come from the null draws' mean and sd.
    """
    control_Z = Z[screen.control_mask]
    n_control = screen.n_control
    if reference == "all":
        if null_size is not None:
            screen.require_controls(null_size + 2, f"a null group of {null_size} cells vs the other controls")
        screen.require_controls(4, "a null of control groups vs the other controls")
        pieces = ReferencePieces(control_Z, metric=metric)
        statistics = [pieces.group_statistics(Z[screen.group_rows[group]]) for group in screen.groups]
        values = [value for value, _ in statistics]
        sizes = _null_sizes(screen, null_size, n_control // 2)
    else:
        largest = null_size or max(screen.sizes)
        screen.require_controls(max(screen.sizes), f"a control sample matching {max(screen.sizes)} perturbed cells")
        screen.require_controls(2 * largest, f"the matched null (two disjoint control groups of {largest} cells)")
        values = []
        for index, group in enumerate(screen.groups):
            X = Z[screen.group_rows[group]]
            draw = np.random.default_rng([seed, MATCHED_STREAM, index]).choice(n_control, X.shape[0], replace=False)
            values.append(get_metric(metric)(X, control_Z[draw]))
        sizes = _null_sizes(screen, null_size, n_control // 2)

    control_null = ControlNull(control_Z, metric=metric)
    against = "rest" if reference == "all" else "subset"
    nulls = {
        size: control_null.sample(size, n_null, np.random.default_rng([seed, NULL_STREAM, size]), against=against)
        for size in sorted(set(sizes))
    }
    if reference != "all":
        zs, standardised = _standardise_each(values, [nulls[size] for size in sizes])
        return values, zs, sizes, nulls, standardised
    unit = {size: nulls[size] / pieces.subset_sd(size) for size in nulls}
    zs = [value / sd for value, sd in statistics]
    return values, zs, sizes, nulls, [unit[size] for size in sizes]


def _standardise_each(values: list[float], nulls: list[np.ndarray]) -> tuple[list[float], list[np.ndarray]]:
    """Each value and its null on the z scale of that null (:func:`standardise`)."""
    pairs = [standardise(value, null) for value, null in zip(values, nulls, strict=True)]
    return [z for z, _ in pairs], [null for _, null in pairs]


def _wasserstein_scores(
    Z: np.ndarray, screen: Screen, n_null: int, null_size: int | None, reference: Reference, seed: int
) -> tuple[list[float], list[int], dict[int, np.ndarray]]:
    """Averaged size-matched Wasserstein distance of every scored group, its null size, and the null per size."""
    control_Z = Z[screen.control_mask]
    n_control = screen.n_control
    screen.require_controls(2 * max(null_size or 2, 2), "the Wasserstein null (two disjoint control groups)")
    n_draws = WASSERSTEIN_DRAWS if reference == "all" else 1
    largest = n_control // 2
    if reference == "matched":
        compared = [min(n, largest) for n in screen.sizes]
        sizes = _null_sizes(screen, null_size, largest)
    elif null_size is not None:
        compared = sizes = [min(null_size, n, largest) for n in screen.sizes]
    else:
        compared = sizes = [min(size_bucket_below(n), largest) for n in screen.sizes]
    values = []
    for index, (group, size) in enumerate(zip(screen.groups, compared, strict=True)):
        X = Z[screen.group_rows[group]]
        rng = np.random.default_rng([seed, WASSERSTEIN_STREAM, index])
        if size < X.shape[0]:
            X = X[rng.choice(X.shape[0], size, replace=False)]
        draws = [control_Z[rng.choice(n_control, size, replace=False)] for _ in range(n_draws)]
        values.append(float(np.mean([wasserstein(X, Y) for Y in draws])))

    nulls = {size: _wasserstein_null(control_Z, size, n_draws, n_null, seed) for size in sorted(set(sizes))}
    return values, sizes, nulls


def _wasserstein_null(control_Z: np.ndarray, size: int, n_draws: int, n_null: int, seed: int) -> np.ndarray:
    """``n_null`` values of ``mean_k W(S, Y_k)``: ``S`` random controls, ``Y_k`` drawn from the other controls."""
    rng = np.random.default_rng([seed, WASSERSTEIN_NULL_STREAM, size])
    null = np.empty(n_null)
    for draw in range(n_null):
        order = rng.permutation(control_Z.shape[0])
        subset, rest = control_Z[order[:size]], order[size:]
        others = [control_Z[rng.choice(rest, size, replace=False)] for _ in range(n_draws)]
        null[draw] = np.mean([wasserstein(subset, Y) for Y in others])
    return null


def perturbation_distances(
    adata: ad.AnnData,
    *,
    embedding: str,
    perturbation_key: str,
    metric: str = "edistance",
    min_cells: int = 20,
    exclude: Iterable[str] = (),
) -> pd.DataFrame:
    """E-distance between every pair of groups (perturbations and control), rows L2-normalised.

    ``E_gh = 2 mean_{i in g, j in h} d - mean_{i != i' in g} d - mean_{j != j' in h} d``, with
    the diagonal set to 0 (see :func:`cellshift.metrics.pairwise_group_edistance`).

    Parameters
    ----------
    adata
        Screen with an embedding in ``obsm[embedding]``.
    embedding
        ``obsm`` key of the embedding.
    perturbation_key
        ``obs`` column with the labels.
    metric
        ``"edistance"`` or ``"cosine_edistance"``.
    min_cells
        Groups with fewer cells are left out.
    exclude
        Labels left out.

    Returns
    -------
    pandas.DataFrame
        Symmetric ``G x G`` matrix indexed by the sorted labels of the groups kept.
    """
    labels = obs_labels(adata, perturbation_key, "perturbation key")
    Z = l2_normalize(get_embedding(adata, embedding))
    counts = pd.Series(labels).value_counts()
    kept = counts[(counts >= min_cells) & ~counts.index.isin([str(label) for label in exclude])].index
    mask = pd.Index(kept).get_indexer(labels) >= 0
    return pairwise_group_edistance(Z[mask], labels[mask], metric=metric)
