"""Cell-type annotation: learn labels from a reference, predict a query or held-out reference cells.

Three ways to run, one result:

- **reference + query**: every method learns the whole reference and labels the query. A query
  of the other species is first put into the reference's gene names through one-to-one
  orthologs (:func:`cellshift.tasks.gene_alignment.align_to_reference`); both are then restricted
  to their shared genes, so that every method sees the same genes on both sides. When the query
  has labels, they are scored (known classes only; others are counted as unknown labels).
- **reference only**: a hold-out split (whole donors with ``split_key``, else stratified cells)
  or ``n_folds``-fold cross-validation; every tested cell is predicted by a classifier that never
  saw it (or its donor).
- **a saved classifier + query**: no training; the query is aligned to the classifier's genes.

Labels may be renamed first with ``label_map`` (e.g. ``CD4 T cells -> T``) to compare data sets
that name types differently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import anndata as ad
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cellshift._validate import FOLDS, NON_NEGATIVE_INT, OPEN_FRACTION, Bounds, CheckedSettings
from cellshift.data import check_raw_counts
from cellshift.tasks.annotation_metrics import confusion_counts, per_class_scores, score_predictions
from cellshift.tasks.cell_classifier import CellClassifier
from cellshift.tasks.cell_labels import apply_label_map, query_labels, reference_labels
from cellshift.tasks.cell_splits import cell_folds, holdout_split
from cellshift.tasks.classifiers import load_classifier, make_classifier
from cellshift.tasks.gene_alignment import GeneAlignment, align_to_reference


@dataclass
class AnnotationResult:
    """Everything an annotation run found.

    Attributes
    ----------
    predictions
        One row per predicted cell and method: ``cell, method, fold, predicted, probability``
        (of the predicted class), ``true`` (NaN when unknown) and ``proba_<class>`` columns.
    metrics
        One row per method with ``fold = "all"`` (all predicted cells pooled), and with
        cross-validation one row per method and fold: ``n_scored, n_unknown_label, accuracy, macro_f1``.
    per_class
        ``method, label, precision, recall, f1, support`` over all predicted cells.
    confusion
        Method -> true label x predicted label cell counts.
    unknown_labels
        Query labels the reference does not have, with their numbers of cells.
    alignment
        How the query's genes were matched (``None`` without a query).
    classifiers
        Method -> the fitted classifier (trained on the whole reference when a query was given).
    """

    predictions: pd.DataFrame
    metrics: pd.DataFrame
    per_class: pd.DataFrame
    confusion: dict[str, pd.DataFrame]
    unknown_labels: pd.Series
    alignment: GeneAlignment | None = None
    classifiers: dict[str, CellClassifier] = field(default_factory=dict)


@dataclass(frozen=True)
class AnnotationSettings(CheckedSettings):
    """Options of :func:`annotate` (and of ``cellshift annotate``); see its parameters."""

    label_key: str
    methods: tuple[str, ...] = ("logreg-pca",)
    query_label_key: str | None = None
    split_key: str | None = None
    test_fraction: float = 0.2
    n_folds: int | None = None
    seed: int = 0
    key_added: str = "cellshift_annotation"

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "test_fraction": OPEN_FRACTION,
        "n_folds": FOLDS,
        "seed": NON_NEGATIVE_INT,
    }


def annotate(
    reference: ad.AnnData | None,
    query: ad.AnnData | None = None,
    *,
    settings: AnnotationSettings,
    label_map: dict[str, str] | None = None,
    classifier: str | os.PathLike | None = None,
    method_options: dict | None = None,
    query_species: str | None = None,
    reference_species: str | None = None,
    progress: bool = True,
) -> AnnotationResult:
    """Annotate cells; see the module docstring for the three ways to run.

    Parameters
    ----------
    reference
        Labelled cells with raw counts (``obs[settings.label_key]``); ``None`` with ``classifier``.
    query
        Cells with raw counts to label; labels in ``obs[settings.query_label_key or label_key]``
        are scored when present.
    settings
        :class:`AnnotationSettings`: methods (``logreg-pca``, ``logreg``, ``model-frozen``, ``model``, ``celltypist``),
        split (``split_key`` = donor column; ``n_folds`` for cross-validation), seed, ``key_added``.
    label_map
        Label -> shared name, applied to reference and query labels.
    classifier
        Folder of a classifier saved before: label ``query`` with it instead of training.
    method_options
        Options of the classifiers (e.g. ``model`` for ``model-frozen`` and ``model``, ``device``;
        ``model``'s fine-tuning options in :class:`cellshift.tasks.finetuned_classifier.ModelFinetuned`).
    query_species, reference_species
        ``human`` / ``mouse``; detected from gene names when not given.
    progress
        Show a progress bar.

    Returns
    -------
    AnnotationResult
        The tables. With a query, also writes ``query.obs[key_added]`` (the first method's
        label), ``query.obs[f"{key_added}_{method}"]`` per method and ``query.obsm[f"{key_added}_proba"]``
        (the first method's class probabilities, columns in ``query.uns[f"{key_added}_classes"]``).
    """
    options = method_options or {}
    for cells, which in ((reference, "reference"), (query, "query")):
        if cells is not None:
            _check_counts(cells, which)
    if classifier is not None:
        fitted = load_classifier(classifier, **options)
        return _label_query(query, {fitted.name: fitted}, settings, label_map, query_species, reference_species)
    labels = apply_label_map(reference_labels(reference, settings.label_key), label_map)
    if query is None:
        return _cross_validate(reference, labels, settings, options, progress)
    aligned, alignment = align_to_reference(
        query, reference.var_names, query_species=query_species, reference_species=reference_species
    )
    shared = reference[:, aligned.var_names]
    fitted = {}
    for method in tqdm(settings.methods, desc="training classifiers", disable=not progress):
        fitted[method] = make_classifier(method, seed=settings.seed, **options).fit(shared, labels)
    result = _label_query(query, fitted, settings, label_map, query_species, reference_species, aligned=aligned)
    result.alignment = alignment
    return result


def _label_query(query, fitted, settings, label_map, query_species, reference_species, *, aligned=None):
    """Predict ``query`` with fitted classifiers, score it when labelled, write its obs/obsm."""
    if query is None:
        raise ValueError("a saved classifier labels a query: give the query cells to label")
    first = next(iter(fitted.values()))
    if aligned is None:
        aligned, _ = align_to_reference(
            query, first.genes, query_species=query_species, reference_species=reference_species
        )
    truth = apply_label_map(query_labels(query, settings.query_label_key or settings.label_key), label_map)
    predictions = [_predict(classifier, aligned, truth, "query") for classifier in fitted.values()]
    result = _summarise(predictions, fitted)
    for rank, (method, classifier) in enumerate(fitted.items()):
        rows = result.predictions[result.predictions["method"] == method]
        query.obs[f"{settings.key_added}_{method}"] = pd.Categorical(rows["predicted"].to_numpy())
        if rank == 0:
            query.obs[settings.key_added] = query.obs[f"{settings.key_added}_{method}"]
            query.obsm[f"{settings.key_added}_proba"] = rows[[f"proba_{c}" for c in classifier.classes]].to_numpy()
            query.uns[f"{settings.key_added}_classes"] = list(classifier.classes)
    return result


def _cross_validate(reference, labels, settings, options, progress) -> AnnotationResult:
    """Held-out or cross-validated predictions of the reference's own cells.

    Each method computes the features of all reference cells once (they are per cell; for
    ``model``, the cells themselves); each fold fits a new classifier on its training rows. The
    classifier returned per method is fitted on the whole reference, ready to label new files.
    """
    folds = list(_folds(reference, labels, settings))
    names = reference.obs_names.astype(str)
    predictions, fitted = [], {}
    for method in tqdm(settings.methods, desc="cross-validating", disable=not progress):
        final = make_classifier(method, seed=settings.seed, **options)
        final.genes = [str(g) for g in reference.var_names]
        features = final.features(reference)
        for fold, (train, test) in enumerate(folds):
            classifier = make_classifier(method, seed=settings.seed, **options)
            classifier.genes = final.genes
            classifier.fit_features(features[train], labels.iloc[train])
            probabilities = classifier.proba_from_features(features[test], names[test])
            predictions.append(_prediction_table(classifier, probabilities, labels.iloc[test], fold))
        fitted[method] = final.fit_features(features, labels)
    return _summarise(predictions, fitted)


def _folds(reference: ad.AnnData, labels: pd.Series, settings: AnnotationSettings) -> Iterator:
    donors = None
    if settings.split_key is not None:
        if settings.split_key not in reference.obs:
            raise KeyError(f"split key {settings.split_key!r} is not an obs column of the reference")
        donors = reference.obs[settings.split_key]
    if settings.n_folds:
        yield from cell_folds(labels, donors=donors, n_folds=settings.n_folds, seed=settings.seed)
    else:
        yield holdout_split(labels, donors=donors, test_fraction=settings.test_fraction, seed=settings.seed)


def _predict(classifier: CellClassifier, cells: ad.AnnData, truth: pd.Series | None, fold) -> pd.DataFrame:
    """One method's predictions of ``cells`` as a tidy table."""
    return _prediction_table(classifier, classifier.predict_proba(cells), truth, fold)


def _prediction_table(classifier: CellClassifier, probabilities: pd.DataFrame, truth, fold) -> pd.DataFrame:
    """``cell, method, fold, predicted, probability, true, proba_<class>...`` from class probabilities."""
    best = probabilities.to_numpy().argmax(axis=1)
    table = pd.DataFrame(
        {
            "cell": probabilities.index,
            "method": classifier.name,
            "fold": str(fold),
            "predicted": np.asarray(classifier.classes)[best],
            "probability": probabilities.to_numpy().max(axis=1),
            "true": truth.to_numpy() if truth is not None else np.nan,
        }
    )
    return pd.concat([table, probabilities.add_prefix("proba_").reset_index(drop=True)], axis=1)


def _summarise(predictions: Sequence[pd.DataFrame], fitted: dict[str, CellClassifier]) -> AnnotationResult:
    """Metrics per method and fold, per-class scores, confusion counts and unknown labels."""
    table = pd.concat(predictions, ignore_index=True)
    metrics, per_class, confusion = [], [], {}
    unknown = pd.Series(dtype=int)
    for method, rows in table.groupby("method", sort=False):
        classes = fitted[method].classes
        truth = rows["true"]
        folds = list(rows.groupby("fold", sort=False)) if rows["fold"].nunique() > 1 else []
        for fold, fold_rows in [*folds, ("all", rows)]:
            scores = score_predictions(fold_rows["true"], fold_rows["predicted"], classes)
            metrics.append({"method": method, "fold": fold, **scores})
        if truth.notna().any():
            per_class.append(per_class_scores(truth, rows["predicted"], classes).assign(method=method))
            confusion[method] = confusion_counts(truth, rows["predicted"], classes)
            unknown = truth[truth.notna() & ~truth.isin(classes)].value_counts()
    per_class_table = pd.concat(per_class, ignore_index=True) if per_class else pd.DataFrame()
    if not per_class_table.empty:
        per_class_table = per_class_table[["method", "label", "precision", "recall", "f1", "support"]]
    return AnnotationResult(table, pd.DataFrame(metrics), per_class_table, confusion, unknown, classifiers=fitted)


def _check_counts(cells: ad.AnnData, which: str) -> None:
    """Every classifier normalises raw counts itself: refuse anything else with one clear line."""
    values = cells.X.data if hasattr(cells.X, "data") and not isinstance(cells.X, np.ndarray) else np.asarray(cells.X)
    check_raw_counts(np.asarray(values), where=f"X of the {which}", layers=list(cells.layers))
