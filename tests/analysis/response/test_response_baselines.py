import numpy as np
import pandas as pd

from cellshift.analysis.response import (
    predict_linear,
    predict_no_change,
    predict_training_mean,
    response_metrics,
    training_mean,
)


def planted_linear_screen(seed=0, n_genes=60, rank=4):
    """Changes Y = b + G W G[target]^T, with perturbations of genes 0..39 and balanced training embeddings."""
    rng = np.random.default_rng(seed)
    half = rng.normal(size=(15, rank))
    rest = rng.normal(size=(n_genes - 30, rank))
    embedding = np.vstack([half, -half, rest - rest.mean(axis=0)])  # genes 0..29 (training) sum to zero
    weights = rng.normal(size=(rank, rank))
    offset = rng.normal(size=n_genes)
    genes = [f"g{j}" for j in range(n_genes)]
    changes = offset + (embedding @ weights @ embedding[:40].T).T
    table = pd.DataFrame(changes, index=genes[:40], columns=genes)
    return table.iloc[:30], table.iloc[30:40]


def test_no_change_scores_the_norm_of_the_truth():
    train, test = planted_linear_screen()
    prediction = predict_no_change(train, list(test.index))
    assert (prediction.values.to_numpy() == 0).all() and not prediction.fallback.any()
    l2 = response_metrics(prediction.values.to_numpy(), test.to_numpy())["l2"]
    np.testing.assert_allclose(l2, np.linalg.norm(test.to_numpy(), axis=1))


def test_training_mean_is_the_mean_over_training_perturbations_ignoring_missing_values():
    train = pd.DataFrame([[1.0, np.nan, 2.0], [3.0, np.nan, np.nan], [5.0, np.nan, 4.0]], columns=list("abc"))
    np.testing.assert_allclose(training_mean(train), [3.0, 0.0, 3.0])  # a gene never measured: 0
    prediction = predict_training_mean(train, ["x", "y"])
    np.testing.assert_allclose(prediction.values.to_numpy(), [[3.0, 0.0, 3.0]] * 2)
    assert list(prediction.values.index) == ["x", "y"]


def test_linear_model_recovers_a_planted_low_rank_model():
    train, test = planted_linear_screen()
    prediction = predict_linear(train, list(test.index), n_components=4, ridge=1e-9)
    assert not prediction.fallback.any()
    assert prediction.parameters == {"n_components": 4, "ridge": 1e-9, "n_train": 30}
    np.testing.assert_allclose(prediction.values.to_numpy(), test.to_numpy(), atol=1e-5)
    mean_error = np.linalg.norm(predict_training_mean(train, list(test.index)).values - test.to_numpy(), axis=1)
    default = predict_linear(train, list(test.index))  # K=10, lambda=0.1: still far better than the mean
    default_error = np.linalg.norm(default.values.to_numpy() - test.to_numpy(), axis=1)
    assert (default_error < 0.05 * mean_error).all()


def test_linear_model_falls_back_to_the_mean_for_genes_it_did_not_measure():
    train, test = planted_linear_screen()
    prediction = predict_linear(train, ["g31", "NOT_MEASURED"], n_components=4, ridge=1e-9)
    np.testing.assert_array_equal(prediction.fallback, [False, True])
    np.testing.assert_allclose(prediction.values.loc["NOT_MEASURED"], training_mean(train))
    np.testing.assert_allclose(prediction.values.loc["g31"], test.loc["g31"], atol=1e-5)


def test_linear_model_fits_a_masked_value_as_the_gene_mean_of_the_other_perturbations():
    train, test = planted_linear_screen()
    holes = train.copy()
    holes.iloc[3, 50] = np.nan
    imputed = train.copy()
    imputed.iloc[3, 50] = train.iloc[[i for i in range(30) if i != 3], 50].mean()
    masked = predict_linear(holes, list(test.index))
    np.testing.assert_allclose(masked.values, predict_linear(imputed, list(test.index)).values, atol=1e-10)
    assert np.isfinite(masked.values.to_numpy()).all()
