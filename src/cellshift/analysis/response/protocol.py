"""Benchmark of response prediction for unseen knock-downs (Cole et al. 2025).

Protocol: the perturbations are split ``n_splits`` times (shuffled K-fold, seeded; every test
perturbation is unseen in its split's training set). In every split each method is fitted on the
training perturbations only and predicts the change of each test perturbation, scored by
``l2`` (primary), ``pearson`` and ``mse`` over the measured (unmasked) genes. Methods:

- ``no_change`` (zero), ``training_mean``, ``linear`` (Ahlmann-Eltze et al. 2024), see
  :mod:`~cellshift.analysis.response.baselines`;
- one k-NN (or ridge/lasso) regressor per gene embedding (:func:`cellshift.embed.gene_embedding`),
  named after the embedding: ``pca`` (control cells' gene loadings; from changes alone, refitted
  on each split's training perturbations so test perturbations never leak), ``grn``, ``family``,
  ``random`` (the dimension of ``model`` when that runs, else ``n_components``), ``model``, and any
  precomputed tables passed as ``gene_embeddings``;
- ``experimental_error``: the bootstrap measurement error of each test perturbation
  (:func:`~cellshift.analysis.response.experimental_error`), a bound no method should beat
  (only with cells).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from cellshift._validate import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, check_options
from cellshift.analysis.response.baselines import Prediction, predict_linear, predict_no_change, predict_training_mean
from cellshift.analysis.response.evaluation import (
    EXPERIMENTAL_ERROR,
    METRICS,
    TRAINING_MEAN,
    method_ranks,
    response_metrics,
    summarize_scores,
)
from cellshift.analysis.response.noise import experimental_error
from cellshift.analysis.response.regressors import predict_from_embedding
from cellshift.analysis.response.splits import Split, perturbation_splits
from cellshift.analysis.response.targets import changes_table, mask_deltas, response_targets
from cellshift.embed import gene_embedding
from cellshift.embed.gene_embeddings import GENE_EMBEDDINGS

NO_CHANGE = "no_change"
LINEAR = "linear"
BASELINES = (NO_CHANGE, TRAINING_MEAN, LINEAR)
DEFAULT_EMBEDDINGS = ("pca", "grn", "family", "random")
SCORE_COLUMNS = ["split", "method", "perturbation", "fallback", "metric", "value"]
OPTION_BOUNDS = {
    "min_cells": POSITIVE_INT,
    "clip": POSITIVE,
    "n_splits": POSITIVE_INT,
    "seed": NON_NEGATIVE_INT,
    "n_components": POSITIVE_INT,
    "n_bootstrap": NON_NEGATIVE_INT,
}


@dataclass(frozen=True)
class ResponseBenchmark:
    """Results of :func:`benchmark`.

    Attributes
    ----------
    scores
        Tidy: one row per split, method, test perturbation and metric; columns
        ``split, method, perturbation, fallback, metric, value`` (``fallback``: the method
        predicted the training mean because the gene had no embedding).
    fits
        One row per split and method: ``split, method, n_train, n_test, n_fallback, parameters``
        (``n_train``: training perturbations the method could use; ``parameters``: JSON of the
        chosen settings, e.g. ``{"n_neighbors": 5}``).
    coverage
        One row per method: ``method, n_perturbations, n_covered`` (perturbations whose gene the
        method can embed; all of them for ``no_change`` and ``training_mean``).
    settings
        Input and protocol settings, for the record.
    """

    scores: pd.DataFrame
    fits: pd.DataFrame
    coverage: pd.DataFrame
    settings: dict

    @property
    def summary(self) -> pd.DataFrame:
        """Median L2 and the other summaries per method (:func:`summarize_scores`)."""
        return summarize_scores(self.scores)

    @property
    def ranks(self) -> pd.DataFrame:
        """Rank of each method by median L2 within each split (:func:`method_ranks`)."""
        return method_ranks(self.scores)


def benchmark(
    adata: ad.AnnData,
    *,
    perturbation_key: str | None = None,
    control: str | None = None,
    batch_key: str | None = None,
    min_cells: int = 20,
    layer: str | None = None,
    exclude: Iterable[str] = (),
    clip: float | None = 10.0,
    embeddings: Sequence[str] = DEFAULT_EMBEDDINGS,
    gene_embeddings: Mapping[str, pd.DataFrame] | None = None,
    model_dir: str | None = None,
    model_cells: ad.AnnData | None = None,
    model_layer: int = -1,
    regressor: str = "knn",
    n_splits: int = 5,
    seed: int = 0,
    n_components: int = 64,
    n_bootstrap: int = 20,
) -> ResponseBenchmark:
    """Benchmark predictions of unseen perturbations' changes against baselines (module docstring).

    Parameters
    ----------
    adata
        Either raw-count cells (give ``perturbation_key`` and ``control``), whose pseudobulk
        changes are computed (:func:`response_targets`), or perturbations x genes changes computed
        elsewhere (give neither; ``obs`` index = perturbed gene), masked by :func:`mask_deltas`.
    perturbation_key
        ``obs`` column with the perturbation labels (cells only).
    control
        Label of the control cells (cells only).
    batch_key
        ``obs`` column with the batch or gem group (cells only).
    min_cells
        Perturbations with fewer cells are left out (cells only).
    layer
        Layer holding the counts (cells only); ``None`` uses ``X``.
    exclude
        Labels neither predicted nor used as controls (cells only).
    clip
        Changes with ``|x| >= clip`` are masked (changes only).
    embeddings
        Gene-embedding methods to benchmark (``pca``, ``grn``, ``family``, ``random``, ``model``).
    gene_embeddings
        Extra precomputed embeddings (name -> genes x dimensions), benchmarked like the others.
    model_dir
        Model checkpoint, for ``model``.
    model_cells
        Cells whose contexts the ``model`` embedding averages; default: the control cells
        (required with changes, which have no cells).
    model_layer
        Hidden layer of the ``model`` embedding (``-1``: the last).
    regressor
        ``"knn"`` (default), ``"ridge"`` or ``"lasso"``.
    n_splits
        Number of splits of the perturbations.
    seed
        Seed of the splits, the regressors' folds and the random embedding.
    n_components
        Dimension of the ``pca``, ``grn``, ``family`` and ``random`` embeddings.
    n_bootstrap
        Bootstrap draws of the experimental error (cells only; 0 skips it).

    Returns
    -------
    ResponseBenchmark
        ``scores`` (tidy), ``fits``, ``coverage``, ``settings``; ``summary`` and ``ranks`` derive
        from ``scores``.
    """
    options = {"min_cells": min_cells, "clip": clip, "n_splits": n_splits, "seed": seed}
    options.update(n_components=n_components, n_bootstrap=n_bootstrap)
    check_options(options, OPTION_BOUNDS)
    from_cells = perturbation_key is not None or control is not None
    if from_cells and (perturbation_key is None or control is None):
        raise ValueError("cells need both perturbation_key (--perturbation-key) and control (--control)")
    methods = _embedding_methods(embeddings, gene_embeddings)
    control_cells, error = None, None
    if from_cells:
        options = {"perturbation_key": perturbation_key, "control": control, "batch_key": batch_key, "layer": layer}
        targets = response_targets(adata, min_cells=min_cells, exclude=exclude, **options)
        control_cells = adata[adata.obs[perturbation_key].astype(str).to_numpy() == control]
        if n_bootstrap > 0:
            error = experimental_error(adata, exclude=exclude, n_bootstrap=n_bootstrap, seed=seed, **options)
    else:
        targets = mask_deltas(adata, clip=clip)
    table = changes_table(targets)
    labels = list(table.index)
    splits = perturbation_splits(labels, n_splits=n_splits, seed=seed)
    fixed = _fixed_embeddings(
        embeddings,
        labels,
        control_cells=control_cells,
        model_cells=model_cells if model_cells is not None else control_cells,
        model_dir=model_dir,
        model_layer=model_layer,
        n_components=n_components,
        seed=seed,
    ) | dict(gene_embeddings or {})

    scores, fits = [], []
    for split in splits:
        train, test = table.loc[list(split.train)], table.loc[list(split.test)]
        genes = list(split.test)
        predictions = {
            NO_CHANGE: predict_no_change(train, genes),
            TRAINING_MEAN: predict_training_mean(train, genes),
            LINEAR: predict_linear(train, genes),
        }
        for name in methods:
            embedding = fixed[name] if name in fixed else _split_pca(labels, train, n_components)
            predictions[name] = predict_from_embedding(train, genes, embedding, regressor=regressor, seed=seed)
        for method, prediction in predictions.items():
            scores.append(_scores(split, method, prediction, test))
            fits.append(_fit_row(split, method, prediction, len(train)))
        if error is not None:
            scores.append(_long(split, EXPERIMENTAL_ERROR, genes, np.zeros(len(genes), dtype=bool), error.loc[genes]))

    coverage = _coverage(labels, table.columns, methods, fixed)
    settings = {
        "source": targets.uns["response_targets"]["source"],
        "n_perturbations": len(labels),
        "n_genes": table.shape[1],
        "n_masked": int(np.isnan(table.to_numpy()).sum()),
        "n_splits": n_splits,
        "seed": seed,
        "regressor": regressor,
        "embeddings": methods,
        "n_components": n_components,
        "n_bootstrap": n_bootstrap if error is not None else 0,
        "targets": {k: v for k, v in targets.uns["response_targets"].items() if not isinstance(v, dict)},
    }
    return ResponseBenchmark(pd.concat(scores, ignore_index=True), pd.DataFrame(fits), coverage, settings)


def _embedding_methods(embeddings: Sequence[str], gene_embeddings: Mapping[str, pd.DataFrame] | None) -> list[str]:
    names = [*embeddings, *(gene_embeddings or {})]
    unknown = [name for name in embeddings if name not in GENE_EMBEDDINGS]
    if unknown:
        raise ValueError(f"unknown gene embedding(s) {unknown}; choose from {', '.join(GENE_EMBEDDINGS)}")
    taken = [name for name in names if name in (*BASELINES, EXPERIMENTAL_ERROR) or names.count(name) > 1]
    if taken:
        clash = sorted(set(taken))
        raise ValueError(f"embedding names must be distinct and differ from the baselines {BASELINES}: {clash}")
    return names


def _fixed_embeddings(
    embeddings: Sequence[str],
    labels: list[str],
    *,
    control_cells: ad.AnnData | None,
    model_cells: ad.AnnData | None,
    model_dir: str | None,
    model_layer: int,
    n_components: int,
    seed: int,
) -> dict[str, pd.DataFrame]:
    """Embeddings that do not depend on the split (``pca`` from changes does: it is left out)."""
    fixed: dict[str, pd.DataFrame] = {}
    for name in sorted(embeddings, key=lambda method: method == "random"):  # random last: it takes the model's size
        if name == "pca" and control_cells is None:
            continue
        size = fixed["model"].shape[1] if name == "random" and "model" in fixed else n_components
        cells = control_cells if name == "pca" else model_cells
        fixed[name] = gene_embedding(
            name, labels, cells=cells, model_dir=model_dir, model_layer=model_layer, n_components=size, seed=seed
        )
    return fixed


def _split_pca(labels: list[str], train: pd.DataFrame, n_components: int) -> pd.DataFrame:
    """Gene loadings of a PCA of the training changes only (no test perturbation leaks in)."""
    return gene_embedding("pca", labels, changes=train, n_components=n_components)


def _scores(split: Split, method: str, prediction: Prediction, test: pd.DataFrame) -> pd.DataFrame:
    metrics = response_metrics(prediction.values.loc[test.index].to_numpy(), test.to_numpy())
    return _long(split, method, list(test.index), prediction.fallback, metrics)


def _long(
    split: Split, method: str, perturbations: list[str], fallback: np.ndarray, metrics: pd.DataFrame
) -> pd.DataFrame:
    frame = pd.DataFrame({name: metrics[name].to_numpy() for name in METRICS})
    frame.insert(0, "split", split.index)
    frame.insert(1, "method", method)
    frame.insert(2, "perturbation", perturbations)
    frame.insert(3, "fallback", np.asarray(fallback, dtype=bool))
    return frame.melt(id_vars=SCORE_COLUMNS[:4], value_vars=list(METRICS), var_name="metric")[SCORE_COLUMNS]


def _fit_row(split: Split, method: str, prediction: Prediction, n_train: int) -> dict:
    parameters = {name: value for name, value in prediction.parameters.items() if name != "n_train"}
    return {
        "split": split.index,
        "method": method,
        "n_train": prediction.parameters.get("n_train", n_train),
        "n_test": len(prediction.fallback),
        "n_fallback": int(prediction.fallback.sum()),
        "parameters": json.dumps(parameters, default=float),
    }


def _coverage(labels: list[str], genes: pd.Index, methods: list[str], fixed: dict[str, pd.DataFrame]) -> pd.DataFrame:
    measured = int(pd.Index(labels).isin(genes).sum())
    rows = [(NO_CHANGE, len(labels)), (TRAINING_MEAN, len(labels)), (LINEAR, measured)]
    for name in methods:
        if name in fixed:
            complete = fixed[name].index[fixed[name].notna().all(axis=1)]
            rows.append((name, int(pd.Index(labels).isin(complete).sum())))
        else:  # pca of the changes: every measured gene has a loading
            rows.append((name, measured))
    return pd.DataFrame(
        {"method": [m for m, _ in rows], "n_perturbations": len(labels), "n_covered": [n for _, n in rows]}
    )
