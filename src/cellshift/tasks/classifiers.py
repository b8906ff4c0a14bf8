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
- ``model``: the foundation model fine-tuned with a linear head on that same embedding
  (:mod:`cellshift.tasks.finetuned_classifier`);
- ``celltypist``: CellTypist (Dominguez Conde et al. 2022) trained on the same reference, the
  peer users already know (optional extra ``celltypist``).

Genes a saved classifier knew but a query lacks are filled with zeros, after normalisation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anndata as ad
import joblib
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cellshift.embed import embed_model
from cellshift.tasks.cell_classifier import SETTINGS_FILE, CellClassifier, expression
from cellshift.tasks.finetuned_classifier import ModelFinetuned

MAX_COMPONENTS = 50
MAX_ITER = 2000


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

    Options: ``model`` (model directory, required), ``batch_size``, ``max_length`` (tokens per cell;
    default: the model's input size), ``device``, ``progress``.
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
            max_length=self.options.get("max_length"),
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
    method.name: method for method in (LogregPCA, Logreg, ModelFrozen, ModelFinetuned, CellTypist)
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


def _import_celltypist():
    """CellTypist, an optional extra: a clear message when it is not installed."""
    try:
        import celltypist
    except ImportError:
        raise ValueError(
            "method celltypist needs the CellTypist package: pip install 'cellshift[celltypist]'"
        ) from None
    return celltypist
