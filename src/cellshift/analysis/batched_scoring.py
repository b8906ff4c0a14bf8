"""E-distances within batches: each perturbation against the controls of its own batches.

Screens have gem groups, donors or replicates (Papalexi: ``bio_rep``), and a batch effect can
look like a perturbation when a group's cells and the controls are spread unevenly over the
batches. With a batch key, perturbation ``g`` is compared within every batch ``b`` that holds at
least 2 of its cells and 2 controls, and the batch E-distances are averaged with the group's
batch composition as weights:

``E_g = sum_b w_b E(g_b, C_b)`` with ``w_b = n_gb / sum_b' n_gb'``.

The null is the stratified permutation (cells relabelled within each batch only). Batches are
relabelled independently, so ``var(E_g) = sum_b w_b^2 sd_b^2`` with ``sd_b`` the exact
permutation sd of batch ``b`` (:class:`cellshift.metrics.ReferencePieces`), and
``z_g = E_g / sqrt(sum_b w_b^2 sd_b^2)`` has mean 0 and variance 1 under that null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cellshift.analysis.screen_input import Screen
from cellshift.metrics import ReferencePieces

MIN_CELLS_PER_BATCH = 2


@dataclass(frozen=True)
class BatchedEDistances:
    """Batch-weighted E-distances of every scored perturbation.

    Attributes
    ----------
    values, zs
        ``E_g`` and ``z_g`` per perturbation, in the screen's group order (NaN without a usable batch).
    n_batches
        Batches each perturbation was compared in.
    controls_per_batch
        Control cells in every batch.
    """

    values: list[float]
    zs: list[float]
    n_batches: list[int]
    controls_per_batch: pd.Series


def batched_edistances(Z: np.ndarray, screen: Screen, batches: np.ndarray, metric: str) -> BatchedEDistances:
    """Batch-weighted E-distance and its exact stratified-permutation z for every scored perturbation.

    Parameters
    ----------
    Z
        L2-normalised embedding, cells x dimensions (all cells of the screen).
    screen
        The validated screen (labels, groups, controls).
    batches
        Batch of every cell.
    metric
        ``"edistance"`` or ``"cosine_edistance"``.
    """
    batches = np.asarray(batches).astype(str)
    controls_per_batch = pd.Series(batches[screen.control_mask]).value_counts().sort_index()
    pieces = {
        batch: ReferencePieces(Z[screen.control_mask & (batches == batch)], metric=metric)
        for batch, count in controls_per_batch.items()
        if count >= MIN_CELLS_PER_BATCH
    }
    values, zs, used = [], [], []
    for group in screen.groups:
        in_group = screen.group_mask(group)
        parts = []
        for batch, reference in pieces.items():
            cells = Z[in_group & (batches == batch)]
            if len(cells) >= MIN_CELLS_PER_BATCH:
                parts.append((len(cells), *reference.group_statistics(cells)))
        values.append(np.nan if not parts else _weighted(parts)[0])
        zs.append(np.nan if not parts else _weighted(parts)[1])
        used.append(len(parts))
    return BatchedEDistances(values, zs, used, controls_per_batch)


def _weighted(parts: list[tuple[int, float, float]]) -> tuple[float, float]:
    """``(sum_b w_b E_b, that / sqrt(sum_b w_b^2 sd_b^2))`` with ``w_b`` proportional to the batch's cells."""
    sizes = np.array([size for size, _, _ in parts], dtype=float)
    weights = sizes / sizes.sum()
    values = np.array([value for _, value, _ in parts])
    sds = np.array([sd for _, _, sd in parts])
    value = float(weights @ values)
    spread = float(np.sqrt(np.sum(weights**2 * sds**2)))
    return value, value / spread if spread > 0 else float("nan")
