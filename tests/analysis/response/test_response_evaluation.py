import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cellshift.analysis.response import method_ranks, perturbation_splits, response_metrics, summarize_scores


def test_metrics_match_numpy_and_scipy_over_the_unmasked_genes():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4, 30))
    truth[1, [2, 5, 7]] = np.nan
    predicted = truth + rng.normal(scale=0.5, size=truth.shape)
    predicted[1, [2, 5, 7]] = 100.0  # masked genes never count
    metrics = response_metrics(np.nan_to_num(predicted), truth)
    for row in range(4):
        seen = np.isfinite(truth[row])
        difference = predicted[row, seen] - truth[row, seen]
        assert metrics.loc[row, "l2"] == pytest.approx(np.linalg.norm(difference))
        assert metrics.loc[row, "mse"] == pytest.approx(np.mean(difference**2))
        assert metrics.loc[row, "pearson"] == pytest.approx(stats.pearsonr(predicted[row, seen], truth[row, seen])[0])
        assert metrics.loc[row, "n_genes"] == seen.sum()
    zero = response_metrics(np.zeros_like(truth), truth)
    np.testing.assert_allclose(zero["l2"], np.sqrt(np.nansum(truth**2, axis=1)))  # no change: L2 = norm of the truth
    assert zero["pearson"].isna().all()  # a constant prediction has no correlation
    with pytest.raises(ValueError, match="differ in shape"):
        response_metrics(predicted[:2], truth)


def test_splits_never_put_a_perturbation_in_train_and_test_and_are_seeded():
    labels = [f"G{i}" for i in range(23)]
    splits = perturbation_splits(labels, n_splits=5, seed=3)
    assert len(splits) == 5
    tested = []
    for split in splits:
        assert not set(split.train) & set(split.test)
        assert set(split.train) | set(split.test) == set(labels)
        tested.extend(split.test)
    assert sorted(tested) == sorted(labels)  # every perturbation is predicted exactly once
    assert {len(split.test) for split in splits} == {4, 5}
    assert perturbation_splits(labels, n_splits=5, seed=3) == splits
    assert perturbation_splits(labels, n_splits=5, seed=4)[0].test != splits[0].test
    assert splits[0].test != tuple(labels[: len(splits[0].test)])  # shuffled, not the first rows
    with pytest.raises(ValueError, match="n_splits"):
        perturbation_splits(labels[:3], n_splits=5)
    with pytest.raises(ValueError, match="distinct"):
        perturbation_splits(["A", "A", "B"], n_splits=2)


def test_summary_compares_every_method_with_the_training_mean_on_the_same_perturbations():
    rows = []
    l2 = {"training_mean": [2.0, 2.0, 2.0, 2.0], "emb": [1.0, 3.0, 1.0, 2.0], "no_change": [5.0, 5.0, 5.0, 5.0]}
    fallback = {"emb": [False, False, False, True]}
    for method, values in l2.items():
        for k, value in enumerate(values):
            perturbation, split = f"P{k}", k % 2
            for metric, metric_value in [("l2", value), ("pearson", 0.1 * k), ("mse", value**2)]:
                flag = fallback.get(method, [False] * 4)[k]
                rows.append((split, method, perturbation, flag, metric, metric_value))
    scores = pd.DataFrame(rows, columns=["split", "method", "perturbation", "fallback", "metric", "value"])
    summary = summarize_scores(scores).set_index("method")
    assert list(summary.index) == ["emb", "training_mean", "no_change"]  # sorted by median L2
    assert summary.loc["emb", "median_l2"] == pytest.approx(1.5)
    assert summary.loc["emb", "n_fallback"] == 1
    assert summary.loc["emb", "win_rate_vs_mean"] == pytest.approx(2 / 3)  # the fall-back is not counted
    assert summary.loc["emb", "mean_l2_gain_vs_mean"] == pytest.approx((1 - 1 + 1) / 3)
    assert np.isnan(summary.loc["training_mean", "win_rate_vs_mean"])
    ranks = method_ranks(scores)
    split0 = ranks[ranks["split"] == 0].set_index("method")["rank"]
    assert split0.to_dict() == {"emb": 1, "no_change": 3, "training_mean": 2}  # split 0 holds P0 and P2
