"""Cell classifiers for annotation, one per method, behind one small interface and a registry.

Every classifier learns from raw-count reference cells and their labels, gives class
probabilities for new cells, and saves to / loads from a folder (``settings.json`` + weights),
so a fitted one can label later files:

- ``logreg-pca``: log-normalised expression (``log1p`` of counts per 10,000), PCA (centred, not
  scaled) to at most 50 components, multinomial logistic regression: the baseline a reviewer
  asks for;
- ``logreg``: the same logistic regression on the log-normalised genes themselves, a strong
  baseline across species on ortholog genes. Genes are not scaled to unit variance: on Baron
  human -> mouse pancreas, scaling with the reference's gene statistics lowered macro-F1 from
  0.98 to 0.58 (it inflates genes that are noise in the other species);
- ``model-frozen``: the foundation model's cell embeddings (mean of the penultimate layer over
  gene tokens, :func:`cellshift.embed.embed_model`), scaled, logistic regression;
- ``celltypist``: CellTypist (Dominguez Conde et al. 2022) trained on the same reference, the
  peer users already know (optional extra ``celltypist``).

Genes a saved classifier knew but a query lacks are filled with zeros, after normalisation.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import anndata as ad
import joblib
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cellshift.data import log_normalized
from cellshift.embed import embed_model

MAX_COMPONENTS = 50
MAX_ITER = 2000
SETTINGS_FILE = "settings.json"


class CellClassifier(ABC):
    """Learns cell labels from raw-count cells; subclasses say how cells become features.

    Features are computed cell by cell (normalisation and embeddings depend on the cell only),
    so cross-validation computes them once and fits each fold on its rows
    (:meth:`fit_features`, :meth:`proba_from_features`).
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

    def fit_features(self, features: np.ndarray, labels: pd.Series) -> CellClassifier:
        """Learn ``labels`` from features of :meth:`features` (``genes`` must be set); returns itself."""
        self.classes = sorted(pd.unique(labels.astype(str)))
        self._fit(features, labels.astype(str).to_numpy())
        return self

    def predict_proba(self, cells: ad.AnnData) -> pd.DataFrame:
        """Class probabilities: cells x classes (columns in :attr:`classes` order), rows = ``obs_names``."""
        return self.proba_from_features(self.features(cells), cells.obs_names.astype(str))

    def proba_from_features(self, features: np.ndarray, cell_names: Sequence[str]) -> pd.DataFrame:
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
    def features(self, cells: ad.AnnData) -> np.ndarray:
        """Cells x features, computed cell by cell over :attr:`genes`."""

    @abstractmethod
    def _fit(self, features: np.ndarray, labels: np.ndarray) -> None: ...

    @abstractmethod
    def _predict_proba(self, features: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _save_weights(self, folder: Path) -> None: ...

    @abstractmethod
    def _load_weights(self, folder: Path) -> None: ...


class _SklearnClassifier(CellClassifier):
    """A scikit-learn pipeline on the features, saved with joblib."""

    def _predict_proba(self, features: np.ndarray) -> np.ndarray:
        order = pd.Index(self.pipeline.classes_).get_indexer(self.classes)
        return self.pipeline.predict_proba(features)[:, order]

    def _save_weights(self, folder: Path) -> None:
        joblib.dump(self.pipeline, folder / "pipeline.joblib")

    def _load_weights(self, folder: Path) -> None:
        self.pipeline = joblib.load(folder / "pipeline.joblib")


class LogregPCA(_SklearnClassifier):
    """Log-normalised expression -> PCA (centred, <= 50 components) -> logistic regression."""

    name = "logreg-pca"

    def features(self, cells: ad.AnnData) -> np.ndarray:
        """Log-normalised expression over :attr:`genes`."""
        return expression(cells, self.genes)

    def _fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        n_components = min(MAX_COMPONENTS, features.shape[1], features.shape[0] - 1)
        self.pipeline = make_pipeline(
            PCA(n_components=n_components, random_state=self.seed), LogisticRegression(max_iter=MAX_ITER)
        )
        self.pipeline.fit(features, labels)


class Logreg(_SklearnClassifier):
    """Log-normalised expression of every gene -> logistic regression (no scaling, no PCA)."""

    name = "logreg"

    def features(self, cells: ad.AnnData) -> np.ndarray:
        """Log-normalised expression over :attr:`genes`."""
        return expression(cells, self.genes)

    def _fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        self.pipeline = make_pipeline(LogisticRegression(max_iter=MAX_ITER))
        self.pipeline.fit(features, labels)


class ModelFrozen(_SklearnClassifier):
    """Frozen foundation-model cell embeddings (penultimate layer, mean over genes) -> logistic regression.

    Options: ``model`` (model directory, required), ``batch_size``, ``device``, ``progress``.
    """

    name = "model-frozen"

    def features(self, cells: ad.AnnData) -> np.ndarray:
        """The model's cell embeddings (computed on the CPU or the GPU the model runs on)."""
        if not self.options.get("model"):
            raise ValueError("method model-frozen needs a model directory (--model)")
        work = ad.AnnData(X=cells.X, obs=pd.DataFrame(index=cells.obs_names), var=pd.DataFrame(index=cells.var_names))
        embed_model(
            work,
            self.options["model"],
            batch_size=self.options.get("batch_size", 64),
            device=self.options.get("device"),
            key_added="X_annotation",
            progress=self.options.get("progress", False),
        )
        return work.obsm["X_annotation"]

    def _fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        self.pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER))
        self.pipeline.fit(features, labels)


class CellTypist(CellClassifier):
    """CellTypist's logistic regression on log-normalised counts (all shared genes, no feature selection).

    Trained in CellTypist's SGD mode (stochastic-gradient logistic regression, seeded): CellTypist
    1.7.1's default solver passes ``multi_class`` to scikit-learn, which scikit-learn 1.8 removed.
    """

    name = "celltypist"

    def features(self, cells: ad.AnnData) -> np.ndarray:
        """Log-normalised expression over :attr:`genes` (CellTypist's expected input)."""
        return expression(cells, self.genes)

    def _fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        self.model = _import_celltypist().train(
            features,
            labels=labels,
            genes=self.genes,
            check_expression=False,
            max_iter=MAX_ITER,
            n_jobs=1,
            feature_selection=False,
            use_SGD=True,
            random_state=self.seed,
        )

    def _predict_proba(self, features: np.ndarray) -> np.ndarray:
        cells = ad.AnnData(X=features, var=pd.DataFrame(index=self.genes))
        result = _import_celltypist().annotate(cells, model=self.model)
        return result.probability_matrix[self.classes].to_numpy()

    def _save_weights(self, folder: Path) -> None:
        self.model.write(str(folder / "celltypist.pkl"))

    def _load_weights(self, folder: Path) -> None:
        self.model = _import_celltypist().models.Model.load(str(folder / "celltypist.pkl"))


CLASSIFIERS: dict[str, type[CellClassifier]] = {
    method.name: method for method in (LogregPCA, Logreg, ModelFrozen, CellTypist)
}


def make_classifier(method: str, *, seed: int = 0, **options) -> CellClassifier:
    """A new, unfitted classifier of a registered method; the error lists the valid names."""
    if method not in CLASSIFIERS:
        raise ValueError(f"unknown annotation method {method!r}; choose from {sorted(CLASSIFIERS)}")
    return CLASSIFIERS[method](seed=seed, **options)


def load_classifier(folder: str | os.PathLike, **options) -> CellClassifier:
    """Load a classifier saved by :meth:`CellClassifier.save`; ``options`` override saved ones (e.g. device)."""
    folder = Path(folder)
    settings_path = folder / SETTINGS_FILE
    if not settings_path.is_file():
        raise FileNotFoundError(f"{folder} holds no saved classifier ({SETTINGS_FILE} is missing)")
    settings = json.loads(settings_path.read_text())
    classifier = make_classifier(settings["method"], seed=settings["seed"], **{**settings["options"], **options})
    classifier.genes, classifier.classes = settings["genes"], settings["classes"]
    classifier._load_weights(folder)
    return classifier


def expression(cells: ad.AnnData, genes: list[str]) -> np.ndarray:
    """Log-normalised expression of ``cells`` as a dense float32 matrix over ``genes`` (absent genes: 0)."""
    normalized = log_normalized(cells)
    values = normalized.X.toarray() if hasattr(normalized.X, "toarray") else np.asarray(normalized.X)
    columns = pd.Index(normalized.var_names.astype(str)).get_indexer(genes)
    features = np.zeros((cells.n_obs, len(genes)), dtype=np.float32)
    present = columns >= 0
    features[:, present] = values[:, columns[present]]
    return features


def _import_celltypist():
    """CellTypist, an optional extra: a clear message when it is not installed."""
    try:
        import celltypist
    except ImportError:
        raise ValueError(
            "method celltypist needs the CellTypist package: pip install 'cellshift[celltypist]'"
        ) from None
    return celltypist
