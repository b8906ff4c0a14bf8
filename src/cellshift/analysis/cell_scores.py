"""Per-cell perturbation scores: how far each perturbed cell sits from the control cells.

A perturbation screen has escapers: cells that carry a guide but whose target was not knocked
out (Mixscape, Papalexi et al. 2021, found them in the bundled THP-1 screen). A group-level
distance averages over them; the per-cell score finds them.

For each scored perturbation ``g`` (``n`` cells) and the ``N`` control cells, in an embedding:

1. The cells of ``g`` and the controls are each split into ``K`` folds (seeded).
2. For fold ``k``, a shrinkage linear discriminant (Ledoit-Wolf covariance, the direction
   ``w = S^-1 (mean_g - mean_control)``; Mixscape also separates perturbed from control cells
   linearly) is fitted on the other folds, and scores the held-out cells of ``g`` and the
   held-out controls of fold ``k``: ``s = w . x``.
3. The held-out controls of the same fold are the null: a cell's p-value is the conformal
   ``p = (1 + #{controls of fold k with s_c >= s}) / (1 + N_k)``, and its score is
   ``(s - mean(s_c)) / sd(s_c)``, the distance from the controls in null standard deviations.
   A perturbed cell that responds no more than a control is exchangeable with the held-out
   controls, so its ``p`` is uniform (Bates et al. 2023, Ann. Stat., "Testing for outliers with
   conformal p-values": Benjamini-Hochberg on such p-values controls the FDR).
4. Within each perturbation, Benjamini-Hochberg q-values; a cell is a **responder** when
   ``q <= fdr``. Per perturbation: the fraction of responders (a lower bound at that FDR) and
   Storey's estimate of the responding fraction, ``1 - pi0`` with
   ``pi0 = #{p > 1/2} / (n / 2)`` (clipped to [0, 1]), which counts the cells that respond too
   weakly to be called one by one.

Random fold assignments come from generators seeded by ``(seed, CELL_FOLD_STREAM, group
index)``: results depend only on ``seed`` and the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from cellshift._validate import FOLDS, OPEN_FRACTION
from cellshift.analysis.screen_input import Screen, get_embedding, validate_screen

CELL_FOLD_STREAM = 11
MIN_CONTROLS_PER_FOLD = 20
DEFAULT_FOLDS = 5
RESPONDER, NON_RESPONDER, CONTROL, NOT_SCORED = "responder", "non-responder", "control", "not scored"


@dataclass(frozen=True)
class CellScores:
    """Out-of-fold scores of one perturbation's cells against held-out controls.

    Attributes
    ----------
    score
        Distance from the controls in null standard deviations, one per cell of the group.
    pvalue
        Conformal p-value of each cell against the held-out controls of its fold.
    """

    score: np.ndarray
    pvalue: np.ndarray


def fold_labels(n: int, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each of ``n`` items: a random permutation of ``0, 1, ..., n_folds - 1`` repeated."""
    return rng.permutation(np.arange(n) % n_folds)


def conformal_pvalues(scores: np.ndarray, null_scores: np.ndarray) -> np.ndarray:
    """``p_i = (1 + #{null >= s_i}) / (1 + len(null))``, large scores being extreme."""
    ordered = np.sort(null_scores)
    at_least = ordered.size - np.searchsorted(ordered, scores, side="left")
    return (1.0 + at_least) / (1.0 + ordered.size)


def score_group_cells(group: np.ndarray, controls: np.ndarray, *, n_folds: int, rng: np.random.Generator) -> CellScores:
    """Cross-fitted discriminant scores of one group's cells, calibrated on held-out controls.

    Parameters
    ----------
    group, controls
        Embedding rows (cells x dimensions) of the perturbed cells and of the control cells.
    n_folds
        ``K``; each fold holds about ``1/K`` of the group and of the controls.
    rng
        Generator of the fold assignments.

    Returns
    -------
    CellScores
        Score and p-value of every row of ``group``, in its order.
    """
    group_folds = fold_labels(len(group), n_folds, rng)
    control_folds = fold_labels(len(controls), n_folds, rng)
    score, pvalue = np.empty(len(group)), np.empty(len(group))
    for fold in range(n_folds):
        test_group, test_controls = group_folds == fold, control_folds == fold
        train = np.vstack([group[~test_group], controls[~test_controls]])
        labels = np.r_[np.ones(int((~test_group).sum())), np.zeros(int((~test_controls).sum()))]
        discriminant = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(train, labels)
        group_scores = discriminant.decision_function(group[test_group])
        null_scores = discriminant.decision_function(controls[test_controls])
        spread = null_scores.std(ddof=1) or 1.0
        score[test_group] = (group_scores - null_scores.mean()) / spread
        pvalue[test_group] = conformal_pvalues(group_scores, null_scores)
    return CellScores(score=score, pvalue=pvalue)


def storey_responding_fraction(pvalues: np.ndarray, threshold: float = 0.5) -> float:
    """``1 - pi0`` with Storey's ``pi0 = #{p > threshold} / ((1 - threshold) n)``, clipped to [0, 1]."""
    pi0 = float((pvalues > threshold).sum()) / ((1.0 - threshold) * pvalues.size)
    return float(np.clip(1.0 - pi0, 0.0, 1.0))


def score_cells(
    adata: ad.AnnData,
    *,
    embedding: str,
    perturbation_key: str,
    control: str,
    min_cells: int = 20,
    exclude: Iterable[str] = (),
    n_folds: int = DEFAULT_FOLDS,
    fdr: float = 0.05,
    seed: int = 0,
    key_added: str = "perturbation",
    copy: bool = False,
) -> ad.AnnData | None:
    """Score every perturbed cell against the control cells; call responders at an FDR.

    See the module docstring for the method (cross-fitted linear discriminant per perturbation,
    conformal p-values from held-out controls, Benjamini-Hochberg within each perturbation).

    Parameters
    ----------
    adata
        Cells with ``adata.obsm[embedding]`` and ``adata.obs[perturbation_key]``.
    embedding
        ``obsm`` key of the embedding (e.g. ``X_pca``, a model's embedding).
    perturbation_key, control, min_cells, exclude
        As in :func:`cellshift.analysis.validate_screen`; cells of groups below ``min_cells``
        (or below ``2 * n_folds``, too few to train on in every fold) are labelled ``"not scored"``.
    n_folds
        Folds of the cross-fitting (at least 2; each control fold must hold at least
        :data:`MIN_CONTROLS_PER_FOLD` cells).
    fdr
        False discovery rate of the responder call, within each perturbation.
    seed
        Seed of the fold assignments.
    key_added
        Prefix of the fields written.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    AnnData or None
        ``adata`` (a copy when ``copy``) or ``None``, with

        - ``obs['{key_added}_score']``: distance from controls in null sd (NaN if not scored);
        - ``obs['{key_added}_pvalue']``, ``obs['{key_added}_fdr']``: conformal p-value and
          Benjamini-Hochberg q-value within the cell's perturbation;
        - ``obs['{key_added}_response']``: ``responder``, ``non-responder``, ``control`` or
          ``not scored``;
        - ``uns['{key_added}_response']``: ``{'params': ..., 'summary': DataFrame}``, one row per
          perturbation with ``n_cells``, ``n_responders``, ``fraction_responders``,
          ``responding_fraction_storey``, ``median_score``.
    """
    _check_settings(n_folds, fdr)
    screen = validate_screen(
        adata, perturbation_key=perturbation_key, control=control, min_cells=min_cells, exclude=exclude
    )
    if screen.n_control < MIN_CONTROLS_PER_FOLD * n_folds:
        raise ValueError(
            f"per-cell scores with {n_folds} folds need at least {MIN_CONTROLS_PER_FOLD * n_folds} control cells "
            f"({MIN_CONTROLS_PER_FOLD} per fold, so that a p-value can fall below 0.05), but {control!r} has "
            f"{screen.n_control}; use fewer folds or more control cells"
        )
    values = get_embedding(adata, embedding)
    adata = adata.copy() if copy else adata
    controls = values[screen.control_mask]
    score, pvalue, qvalue = (np.full(adata.n_obs, np.nan) for _ in range(3))
    rows = []
    for index, group in enumerate(screen.groups):
        cells = screen.group_rows[group]
        if cells.size < 2 * n_folds:
            continue
        rng = np.random.default_rng([seed, CELL_FOLD_STREAM, index])
        result = score_group_cells(values[cells], controls, n_folds=n_folds, rng=rng)
        score[cells], pvalue[cells] = result.score, result.pvalue
        qvalue[cells] = false_discovery_control(result.pvalue, method="bh")
        rows.append(_group_summary(group, result, qvalue[cells], fdr))
    adata.obs[f"{key_added}_score"] = score
    adata.obs[f"{key_added}_pvalue"] = pvalue
    adata.obs[f"{key_added}_fdr"] = qvalue
    adata.obs[f"{key_added}_response"] = pd.Categorical(
        _response_labels(screen, qvalue, fdr), categories=[RESPONDER, NON_RESPONDER, CONTROL, NOT_SCORED]
    )
    params = {"embedding": embedding, "perturbation_key": perturbation_key, "control": control}
    params.update(min_cells=min_cells, n_folds=n_folds, fdr=fdr, seed=seed)
    adata.uns[f"{key_added}_response"] = {"params": params, "summary": pd.DataFrame(rows, columns=SUMMARY_COLUMNS)}
    return adata if copy else None


SUMMARY_COLUMNS = [
    "perturbation",
    "n_cells",
    "n_responders",
    "fraction_responders",
    "responding_fraction_storey",
    "median_score",
]


def per_cell_table(adata: ad.AnnData, perturbation_key: str, key_added: str = "perturbation") -> pd.DataFrame:
    """The scored cells of :func:`score_cells` as a table: cell, perturbation, score, p-value, q-value, response."""
    fields = [f"{key_added}_{name}" for name in ("score", "pvalue", "fdr", "response")]
    scored = adata.obs[f"{key_added}_response"].isin([RESPONDER, NON_RESPONDER]).to_numpy()
    table = adata.obs.loc[scored, [perturbation_key, *fields]].copy()
    table.columns = ["perturbation", "score", "pvalue", "fdr", "response"]
    return table.rename_axis("cell").reset_index()


def _group_summary(group: str, result: CellScores, qvalue: np.ndarray, fdr: float) -> dict:
    """One row of the per-perturbation summary."""
    n_responders = int((qvalue <= fdr).sum())
    return {
        "perturbation": group,
        "n_cells": len(qvalue),
        "n_responders": n_responders,
        "fraction_responders": n_responders / len(qvalue),
        "responding_fraction_storey": storey_responding_fraction(result.pvalue),
        "median_score": float(np.median(result.score)),
    }


def _response_labels(screen: Screen, qvalue: np.ndarray, fdr: float) -> np.ndarray:
    """``responder`` / ``non-responder`` for scored cells, ``control``, else ``not scored``."""
    labels = np.full(qvalue.size, NOT_SCORED, dtype=object)
    scored = ~np.isnan(qvalue)
    labels[scored] = np.where(qvalue[scored] <= fdr, RESPONDER, NON_RESPONDER)
    labels[screen.control_mask] = CONTROL
    return labels


def _check_settings(n_folds: int, fdr: float) -> None:
    """Refuse fold counts below 2 and FDRs outside (0, 1) (the CLI's ranges, :mod:`cellshift._validate`)."""
    FOLDS.check(n_folds, "n_folds")
    OPEN_FRACTION.check(fdr, "fdr")
