"""Which cells of a screen contrastive fine-tuning trains and validates on.

Only the cells named by the caller are read: every cell of the training perturbations (those with
>= 20 DEGs minus the held-out test perturbations, chosen by
:func:`cellshift.analysis.split_perturbations`) and the control cells of the training share. With
validation controls, ``validation_fraction`` of each training perturbation's cells (seeded) are
held out of training for the validation pairs, together with those controls.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from cellshift.training.pairs import VALIDATION_STREAM, PairBatches, ValidationPairs

CELLS_FILE = "training_cells.json"


@dataclass(frozen=True)
class FinetuneCells:
    """Rows of the screen, by the part they play in fine-tuning.

    Attributes
    ----------
    perturbed
        ``{perturbation: rows}`` of the perturbed cells trained on.
    controls
        Rows of the control cells trained on.
    validation_perturbed, validation_controls
        Rows of the held-out perturbed cells and validation controls (empty without validation).
    """

    perturbed: dict[str, np.ndarray]
    controls: np.ndarray
    validation_perturbed: np.ndarray
    validation_controls: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        """Every row fine-tuning reads, ascending: the cells to tokenise."""
        parts = [*self.perturbed.values(), self.controls, self.validation_perturbed, self.validation_controls]
        return np.sort(np.concatenate(parts))

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Where screen rows ``rows`` lie among :attr:`rows` (the numbering of the tokenised cells)."""
        return np.searchsorted(self.rows, rows)

    def pair_batches(self, batch_size: int, seed: int) -> PairBatches:
        """The training pairs' batches, cells numbered by their position among :attr:`rows`."""
        perturbed = {label: self.positions(rows) for label, rows in self.perturbed.items()}
        return PairBatches(perturbed, self.positions(self.controls), batch_size=batch_size, seed=seed)

    def validation_pairs(self, n_pairs: int, seed: int) -> ValidationPairs | None:
        """Fixed validation pairs of the held-out cells (numbered as in :meth:`pair_batches`); ``None`` without."""
        if not self.validation_perturbed.size:
            return None
        perturbed, controls = self.positions(self.validation_perturbed), self.positions(self.validation_controls)
        return ValidationPairs.draw(perturbed, controls, n_pairs, seed)

    def record(self, adata: ad.AnnData, perturbation_key: str) -> dict:
        """The cells by name, as ``training/training_cells.json`` records them (a resumed run must match)."""
        names = adata.obs_names.astype(str)
        return {
            "perturbation_key": perturbation_key,
            "perturbations": {label: len(rows) for label, rows in self.perturbed.items()},
            "control_cells": names[self.controls].tolist(),
            "validation_perturbed_cells": names[self.validation_perturbed].tolist(),
            "validation_controls": names[self.validation_controls].tolist(),
        }


def choose_cells(
    adata: ad.AnnData,
    *,
    perturbation_key: str,
    perturbations: Sequence[str],
    control_cells: Sequence[str],
    validation_controls: Sequence[str],
    validation_fraction: float,
    seed: int,
) -> FinetuneCells:
    """The rows fine-tuning trains and validates on, checked.

    Parameters
    ----------
    adata
        The screen.
    perturbation_key
        ``obs`` column with the perturbation labels.
    perturbations
        Training perturbations.
    control_cells
        ``obs_names`` of the control cells to train on.
    validation_controls
        ``obs_names`` of held-out control cells; empty for no validation.
    validation_fraction
        With validation controls: share of each training perturbation's cells held out.
    seed
        Seed of the held-out share.

    Returns
    -------
    FinetuneCells
        The rows by role.
    """
    perturbed, controls = _training_rows(adata, perturbation_key, perturbations, control_cells)
    held_out = validation_control_rows = np.array([], dtype=np.int64)
    if len(validation_controls):
        if not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {validation_fraction}")
        _, validation_control_rows = _training_rows(adata, perturbation_key, perturbations, validation_controls)
        if len(validation_control_rows) < 2 or np.intersect1d(validation_control_rows, controls).size:
            raise ValueError(
                "validation_controls need at least 2 cells and must not overlap control_cells (the training controls)"
            )
        perturbed, held_out = _hold_out(perturbed, validation_fraction, seed)
    return FinetuneCells(perturbed, controls, held_out, validation_control_rows)


def record_cells(training_dir: Path, record: dict, *, resume: bool) -> None:
    """Write a new run's cells (:meth:`FinetuneCells.record`) to ``training_cells.json``; a resumed run must match.

    Parameters
    ----------
    training_dir
        The run's ``training/`` folder.
    record
        The cells of this run, by name.
    resume
        Check ``record`` against the file instead of writing it.
    """
    cells_file = training_dir / CELLS_FILE
    if not resume:
        cells_file.write_text(json.dumps(record, indent=1))
    elif json.loads(cells_file.read_text()) != record:
        raise ValueError(
            f"cannot resume {training_dir.parent}: the training perturbations or control cells differ from the "
            f"original run's ({cells_file}); use the same screen, DEGs and split settings"
        )


def _training_rows(
    adata: ad.AnnData, perturbation_key: str, perturbations: Sequence[str], control_cells: Sequence[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows of ``adata`` of each training perturbation and of the control training cells, checked."""
    if perturbation_key not in adata.obs.columns:
        raise KeyError(f"obs has no column {perturbation_key!r}; obs columns: {list(adata.obs.columns)}")
    if not adata.obs_names.is_unique:
        raise ValueError("adata.obs_names are not unique; call adata.obs_names_make_unique() first")
    labels = adata.obs[perturbation_key].astype(str).to_numpy()
    perturbed = {}
    for label in sorted(set(map(str, perturbations))):
        perturbed[label] = np.flatnonzero(labels == label)
        if perturbed[label].size == 0:
            raise ValueError(f"training perturbation {label!r} has no cells in obs[{perturbation_key!r}]")
    positions = adata.obs_names.get_indexer(pd.Index(list(map(str, control_cells))))
    if (positions < 0).any():
        missing = [name for name, p in zip(control_cells, positions, strict=True) if p < 0]
        raise KeyError(f"{len(missing)} control cell(s) are not in adata.obs_names, e.g. {missing[:3]}")
    control_rows = np.unique(positions)
    clash = sorted(set(labels[control_rows]) & set(perturbed))
    if clash:
        raise ValueError(f"control cells carry training perturbation label(s) {clash}; pass control cells only")
    return perturbed, control_rows


def _hold_out(
    perturbed_rows: dict[str, np.ndarray], fraction: float, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Split each perturbation's rows: ``floor(fraction * n)`` random rows held out, at least one kept."""
    rng = np.random.default_rng([seed, VALIDATION_STREAM, 0])
    kept, held_out = {}, []
    for label, rows in perturbed_rows.items():
        shuffled = rng.permutation(rows)
        n_out = min(int(fraction * len(rows)), len(rows) - 1)
        held_out.append(shuffled[:n_out])
        kept[label] = np.sort(shuffled[n_out:])
    return kept, np.sort(np.concatenate(held_out))
