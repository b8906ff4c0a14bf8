import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cellshift.analysis.response import embedding_regressor, predict, predict_from_embedding, training_mean


def clustered_screen(seed=0, n_clusters=4, per_cluster=12, n_genes=50, noise=0.1):
    """Perturbations in clusters: the same change profile within a cluster, embeddings near the cluster's centre."""
    rng = np.random.default_rng(seed)
    profiles = rng.normal(scale=2.0, size=(n_clusters, n_genes))
    centres = rng.normal(scale=5.0, size=(n_clusters, 8))
    cluster = np.repeat(np.arange(n_clusters), per_cluster)
    labels = [f"T{i}" for i in range(len(cluster))]
    changes = profiles[cluster] + rng.normal(scale=noise, size=(len(cluster), n_genes))
    embedding = centres[cluster] + rng.normal(scale=0.3, size=(len(cluster), 8))
    table = pd.DataFrame(changes, index=labels, columns=[f"g{j}" for j in range(n_genes)])
    return table, pd.DataFrame(embedding, index=labels), cluster


def test_knn_on_an_informative_embedding_picks_few_neighbours_and_beats_the_mean():
    table, embedding, cluster = clustered_screen()
    test = [label for k, label in enumerate(table.index) if k % 6 == 0]
    train = table.drop(index=test)
    prediction = predict_from_embedding(train, test, embedding, seed=0)
    assert prediction.parameters["n_train"] == len(train)
    assert prediction.parameters["n_neighbors"] <= 10  # a cluster holds 10 training perturbations
    error = np.linalg.norm(prediction.values.to_numpy() - table.loc[test].to_numpy(), axis=1)
    mean_error = np.linalg.norm(training_mean(train).to_numpy() - table.loc[test].to_numpy(), axis=1)
    assert (error < 0.2 * mean_error).all()
    assert not prediction.fallback.any()


def test_knn_on_an_uninformative_embedding_chooses_many_neighbours():
    rng = np.random.default_rng(1)
    labels = [f"T{i}" for i in range(60)]
    table = pd.DataFrame(rng.normal(size=(60, 40)) + 3.0, index=labels)  # one effect plus noise
    embedding = pd.DataFrame(rng.normal(size=(60, 16)), index=labels)
    prediction = predict_from_embedding(table.iloc[:50], labels[50:], embedding)
    assert prediction.parameters["n_neighbors"] >= 20  # close to averaging everything, i.e. the mean


def test_the_k_grid_is_clipped_to_the_cross_validation_training_size():
    search = embedding_regressor("knn", n_train=23, n_features=8, n_folds=5)
    assert search.param_grid == {"model__n_neighbors": [1, 3, 5, 10, 18]}  # 23 - ceil(23 / 5) = 18: the mean
    assert search.estimator.named_steps["pca"].n_components == 8
    assert embedding_regressor("knn", n_train=300, n_features=512).estimator.named_steps["pca"].n_components == 100
    assert embedding_regressor("ridge", n_train=10, n_features=4).param_grid["model__alpha"][0] == 0.01
    with pytest.raises(ValueError, match="unknown regressor"):
        embedding_regressor("forest", n_train=10, n_features=4)
    with pytest.raises(ValueError, match="at least 3"):
        embedding_regressor("knn", n_train=2, n_features=4)


def test_genes_without_embedding_fall_back_to_the_training_mean_and_are_counted():
    table, embedding, _ = clustered_screen()
    train = table.iloc[:40]
    genes = ["T41", "NO_EMBEDDING", "T45"]
    partial = embedding.drop(index=["T3", "T4"])  # two training perturbations cannot be used either
    prediction = predict_from_embedding(train, genes, partial)
    np.testing.assert_array_equal(prediction.fallback, [False, True, False])
    np.testing.assert_allclose(prediction.values.loc["NO_EMBEDDING"], training_mean(train))
    assert prediction.parameters["n_train"] == 38
    none = predict_from_embedding(train, genes, embedding.iloc[[0, 1, 41]])
    assert none.fallback.all()  # fewer than 3 training perturbations with an embedding


@pytest.mark.parametrize("regressor", ["ridge", "lasso"])
def test_linear_regressors_are_options(regressor):
    table, embedding, _ = clustered_screen(n_genes=10)
    prediction = predict_from_embedding(table.iloc[:40], list(table.index[40:]), embedding, regressor=regressor)
    assert "alpha" in prediction.parameters
    error = np.linalg.norm(prediction.values.to_numpy() - table.iloc[40:].to_numpy(), axis=1)
    mean_error = np.linalg.norm(training_mean(table.iloc[:40]).to_numpy() - table.iloc[40:].to_numpy(), axis=1)
    assert error.mean() < mean_error.mean()


def test_predict_takes_an_anndata_and_an_embedding_table_or_name():
    table, embedding, _ = clustered_screen()
    train = ad.AnnData(table.iloc[:40].to_numpy(), obs=pd.DataFrame(index=table.index[:40]))
    train.var_names = table.columns
    predicted = predict(train, ["T44", "UNKNOWN"], embedding)
    assert predicted.shape == (2, table.shape[1])
    assert list(predicted.obs["fallback"]) == [False, True]
    assert "n_neighbors" in predicted.uns["response_prediction"]["parameters"]
    by_name = predict(train, ["T44"], "random", n_components=8)
    assert by_name.shape == (1, table.shape[1]) and not by_name.obs["fallback"].any()
    with pytest.raises(ValueError, match="model_dir"):
        predict(train, ["T44"], "model")
