"""Predicting the change caused by knocking down a gene from that gene's embedding (Cole et al.).

Each training perturbation is one sample: features = the embedding of its target gene, outputs =
its change over all genes. The model (scikit-learn) is

    StandardScaler -> PCA(min(100, dimensions, training size)) -> regressor

with the regressor's setting chosen by 5-fold cross-validation on the training perturbations,
scored by the mean L2 norm of the prediction error (the benchmark's primary metric):

- ``"knn"`` (default, Cole et al.): k-nearest-neighbour regression (uniform weights); ``k`` from
  :data:`K_GRID` below the smallest cross-validation training fold, plus that fold size itself
  (where, within cross-validation, k-NN predicts the mean of the fold's training perturbations,
  so the search can choose the mean when the embedding does not help);
- ``"ridge"``: ridge regression, ``alpha`` from :data:`ALPHA_GRID`;
- ``"lasso"``: lasso (one per output gene; slow for whole transcriptomes), ``alpha`` from
  :data:`LASSO_GRID`.

Training perturbations whose gene has no embedding are left out of the fit; test perturbations
whose gene has no embedding, and all of them when fewer than :data:`MIN_TRAIN` training
perturbations have one, are predicted by the training mean and marked as fall-backs.
"""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import Lasso, Ridge
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from cellshift.analysis.response._knn import NeighbourMean
from cellshift.analysis.response.baselines import Prediction, fill_missing, training_mean
from cellshift.analysis.response.targets import changes_table
from cellshift.embed import gene_embedding

K_GRID = (1, 3, 5, 10, 20, 30, 50, 75, 100)
ALPHA_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
LASSO_GRID = (0.001, 0.01, 0.1, 1.0)
REGRESSORS = ("knn", "ridge", "lasso")
MAX_PCA = 100
MIN_TRAIN = 3  # fewer: a cross-validation fold would fit a PCA to a single perturbation


def embedding_regressor(regressor: str, *, n_train: int, n_features: int, n_folds: int = 5, seed: int = 0):
    """The cross-validated scikit-learn model for ``n_train`` perturbations with ``n_features`` dimensions.

    Parameters
    ----------
    regressor
        ``"knn"``, ``"ridge"`` or ``"lasso"``.
    n_train
        Number of training perturbations (at least :data:`MIN_TRAIN`).
    n_features
        Embedding dimension.
    n_folds
        Cross-validation folds (fewer when there are fewer training perturbations).
    seed
        Seed of the fold shuffle and of the PCA.

    Returns
    -------
    sklearn.model_selection.GridSearchCV
        Unfitted; ``refit=True``.
    """
    if n_train < MIN_TRAIN:
        raise ValueError(
            f"a regressor needs at least {MIN_TRAIN} training perturbations with an embedding, got {n_train}"
        )
    n_folds = min(n_folds, n_train)
    smallest_fold = n_train - int(np.ceil(n_train / n_folds))
    if regressor == "knn":
        model, grid = NeighbourMean(), {"model__n_neighbors": [k for k in K_GRID if k < smallest_fold]}
        grid["model__n_neighbors"].append(smallest_fold)
    elif regressor == "ridge":
        model, grid = Ridge(), {"model__alpha": list(ALPHA_GRID)}
    elif regressor == "lasso":
        model, grid = Lasso(max_iter=5000), {"model__alpha": list(LASSO_GRID)}
    else:
        raise ValueError(f"unknown regressor {regressor!r}; choose from {', '.join(REGRESSORS)}")
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("pca", PCA(n_components=min(MAX_PCA, n_features, smallest_fold), svd_solver="full", random_state=seed)),
            ("model", model),
        ]
    )
    scorer = make_scorer(_mean_l2, greater_is_better=False)
    return GridSearchCV(pipeline, grid, scoring=scorer, cv=KFold(n_folds, shuffle=True, random_state=seed))


def predict_from_embedding(
    train: pd.DataFrame,
    genes: Sequence[str],
    embedding: pd.DataFrame,
    *,
    regressor: str = "knn",
    n_folds: int = 5,
    seed: int = 0,
) -> Prediction:
    """Fit the embedding regressor on ``train`` and predict the perturbations ``genes``.

    Parameters
    ----------
    train
        Training perturbations x genes (index = target gene; NaN = missing, set to the gene's
        training mean for fitting).
    genes
        Target genes of the perturbations to predict.
    embedding
        Genes x dimensions; rows with a missing value count as no embedding.
    regressor
        ``"knn"``, ``"ridge"`` or ``"lasso"`` (see the module docstring).
    n_folds
        Cross-validation folds.
    seed
        Seed of the folds and the PCA.

    Returns
    -------
    Prediction
        ``parameters``: the chosen setting (``n_neighbors`` or ``alpha``), ``n_train`` (training
        perturbations with an embedding).
    """
    complete = embedding.loc[embedding.notna().all(axis=1) & ~embedding.index.duplicated()]
    complete.index = complete.index.astype(str)
    train_rows = complete.index.get_indexer(train.index.astype(str))
    test_rows = complete.index.get_indexer(pd.Index(genes, dtype=str))
    fallback = test_rows < 0
    mean = training_mean(train)
    prediction = pd.DataFrame(
        np.tile(mean.to_numpy(), (len(genes), 1)), index=pd.Index(genes, dtype=str), columns=train.columns
    )
    fitted = train_rows >= 0
    parameters = {"n_train": int(fitted.sum())}
    if fitted.sum() < MIN_TRAIN or fallback.all():
        return Prediction(prediction, np.ones(len(genes), dtype=bool), parameters)
    features = complete.to_numpy(dtype=np.float64)
    search = embedding_regressor(
        regressor, n_train=int(fitted.sum()), n_features=features.shape[1], n_folds=n_folds, seed=seed
    )
    search.fit(features[train_rows[fitted]], fill_missing(train).to_numpy()[fitted])
    parameters |= {name.removeprefix("model__"): value for name, value in search.best_params_.items()}
    prediction.iloc[~fallback] = search.predict(features[test_rows[~fallback]])
    return Prediction(prediction, fallback, parameters)


def predict(
    train_adata: ad.AnnData,
    genes_to_predict: Sequence[str],
    embedding: pd.DataFrame | str,
    *,
    regressor: str = "knn",
    n_folds: int = 5,
    seed: int = 0,
    **embedding_inputs,
) -> ad.AnnData:
    """Predict the change caused by knocking down each of ``genes_to_predict``, from gene embeddings.

    Parameters
    ----------
    train_adata
        Measured changes, perturbations x genes (``obs`` index = target gene), e.g. from
        :func:`~cellshift.analysis.response.response_targets` or
        :func:`~cellshift.analysis.response.mask_deltas`; NaN = missing.
    genes_to_predict
        Target genes of the perturbations to predict.
    embedding
        A genes x dimensions table, or the name of a method of
        :func:`cellshift.embed.gene_embedding` (``pca`` then uses the training changes).
    regressor
        ``"knn"``, ``"ridge"`` or ``"lasso"``.
    n_folds
        Cross-validation folds for the regressor's setting.
    seed
        Seed of the folds, the PCA and the ``random`` embedding.
    **embedding_inputs
        Passed to :func:`cellshift.embed.gene_embedding` when ``embedding`` is a name (e.g.
        ``cells=`` control cells and ``model_dir=`` for ``model``, ``n_components=``).

    Returns
    -------
    anndata.AnnData
        ``genes_to_predict`` x genes of ``train_adata``: ``X`` = predicted change;
        ``obs['fallback']``: ``True`` where the gene had no embedding and the training mean was
        used; ``uns['response_prediction']``: ``regressor`` and the chosen ``parameters``.
    """
    train = changes_table(train_adata)
    genes = [str(g) for g in genes_to_predict]
    if isinstance(embedding, str):
        inputs = {"changes": train, "seed": seed} | embedding_inputs
        embedding = gene_embedding(embedding, [*train.index, *genes], **inputs)
    result = predict_from_embedding(train, genes, embedding, regressor=regressor, n_folds=n_folds, seed=seed)
    predicted = ad.AnnData(
        result.values.to_numpy(),
        obs=pd.DataFrame({"fallback": result.fallback}, index=pd.Index(genes, dtype=str)),
        var=pd.DataFrame(index=train.columns),
    )
    predicted.uns["response_prediction"] = {"regressor": regressor, "parameters": result.parameters}
    return predicted


def _mean_l2(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over rows of the Euclidean norm of the error."""
    return float(np.linalg.norm(np.asarray(predicted) - np.asarray(truth), axis=1).mean())
