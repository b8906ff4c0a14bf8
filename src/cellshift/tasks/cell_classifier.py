"""The interface of every annotation classifier: fit on raw-count cells and labels, class probabilities, save.

A fitted classifier saves to a folder (``settings.json`` + weights) and loads back with
:func:`cellshift.tasks.classifiers.load_classifier`, so it can label later files.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import anndata as ad
import numpy as np
import pandas as pd

from cellshift.data import log_normalized

SETTINGS_FILE = "settings.json"
Features = np.ndarray | ad.AnnData  # cells x features, or the cells themselves


class CellClassifier(ABC):
    """Learns cell labels from raw-count cells; subclasses say how cells become features.

    Features are computed cell by cell (normalisation and embeddings depend on the cell only),
    so cross-validation computes them once and fits each fold on its rows
    (:meth:`fit_features`, :meth:`proba_from_features`). A method that learns from the counts
    themselves (fine-tuning) returns the cells as its features: an AnnData, whose rows a fold
    takes in the same way.
    """

    name: ClassVar[str]

    def __init__(self, *, seed: int = 0, **options) -> None:
        self.seed = seed
        self.options = options
        self.genes: list[str] = []
        self.classes: list[str] = []

    def fit(self, cells: ad.AnnData, labels: pd.Series) -> CellClassifier:
        """Learn ``labels`` (one per cell, in order) from ``cells``; returns itself."""
        self.genes = [str(g) for g in cells.var_names]
        return self.fit_features(self.features(cells), labels)

    def fit_features(self, features: Features, labels: pd.Series) -> CellClassifier:
        """Learn ``labels`` from features of :meth:`features` (``genes`` must be set); returns itself."""
        self.classes = sorted(pd.unique(labels.astype(str)))
        self._fit(features, labels.astype(str).to_numpy())
        return self

    def predict_proba(self, cells: ad.AnnData) -> pd.DataFrame:
        """Class probabilities: cells x classes (columns in :attr:`classes` order), rows = ``obs_names``."""
        return self.proba_from_features(self.features(cells), cells.obs_names.astype(str))

    def proba_from_features(self, features: Features, cell_names: Sequence[str]) -> pd.DataFrame:
        """Class probabilities from features of :meth:`features`, as in :meth:`predict_proba`."""
        return pd.DataFrame(self._predict_proba(features), index=list(cell_names), columns=self.classes)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``settings.json`` and the fitted weights into ``folder`` (created)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_weights(folder)
        settings = {"method": self.name, "seed": self.seed, "options": self.options, "genes": self.genes}
        (folder / SETTINGS_FILE).write_text(json.dumps({**settings, "classes": self.classes}, indent=1) + "\n")
        return folder

    @abstractmethod
    def features(self, cells: ad.AnnData) -> Features:
        """Cells x features, computed cell by cell over :attr:`genes`."""

    @abstractmethod
    def _fit(self, features: Features, labels: np.ndarray) -> None: ...

    @abstractmethod
    def _predict_proba(self, features: Features) -> np.ndarray: ...

    @abstractmethod
    def _save_weights(self, folder: Path) -> None: ...

    @abstractmethod
    def _load_weights(self, folder: Path) -> None: ...


def expression(cells: ad.AnnData, genes: list[str]) -> np.ndarray:
    """Log-normalised expression of ``cells`` as a dense float32 matrix over ``genes`` (absent genes: 0)."""
    normalized = log_normalized(cells)
    values = normalized.X.toarray() if hasattr(normalized.X, "toarray") else np.asarray(normalized.X)
    columns = pd.Index(normalized.var_names.astype(str)).get_indexer(genes)
    features = np.zeros((cells.n_obs, len(genes)), dtype=np.float32)
    present = columns >= 0
    features[:, present] = values[:, columns[present]]
    return features
