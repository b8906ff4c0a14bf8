import numpy as np
import pandas as pd
import pytest

from cellshift.analysis import PerturbationSplit
from cellshift.analysis.summary import (
    attach_n_degs,
    medians_table,
    ranked_table,
    split_overview,
    split_pools,
    split_table,
)

METRICS = ("edistance", "cosine_edistance", "wasserstein")


def fake_scores(seed):
    """A scores table like score_perturbations' of 30 perturbations (gene0 .. gene29), one NaN z-score."""
    rng, n = np.random.default_rng(seed), 30
    table = pd.DataFrame({"perturbation": [f"gene{i}" for i in range(n)], "n_cells": rng.integers(20, 400, n)})
    for metric in METRICS:
        table[metric] = rng.random(n)
        table[f"{metric}_z"] = rng.normal(2.0, 3.0, n)
        table[f"{metric}_pvalue"] = rng.uniform(0.001, 1, n)
    table.loc[5, "edistance_z"] = np.nan
    return table


@pytest.fixture(scope="module")
def degs():
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "perturbation": [f"gene{i}" for i in range(30)],
            "n_degs": rng.choice([0, 0, 4, 20, 31, 250], 30),
            "knockdown": rng.random(30),
        }
    )


def test_medians_table_equals_groupby_medians(degs):
    scores = {"pre-trained": fake_scores(0), "fine-tuned": fake_scores(2), "PCA": fake_scores(1)}
    table = medians_table(scores, degs)

    tidy = pd.concat([frame.assign(model=model) for model, frame in scores.items()]).merge(
        degs[["perturbation", "n_degs"]], on="perturbation"
    )
    tidy["pool"] = np.select([tidy["n_degs"] == 0, tidy["n_degs"] >= 20], ["0 DEGs", ">= 20 DEGs"], default="other")
    columns = [f"{metric}_z" for metric in METRICS]
    expected = tidy[tidy["pool"] != "other"].groupby(["model", "pool"])[columns].median()
    counts = tidy[tidy["pool"] != "other"].groupby(["model", "pool"]).size()

    got = table.set_index(["model", "pool"]).sort_index()
    pd.testing.assert_frame_equal(got[columns], expected.sort_index())
    np.testing.assert_array_equal(got["n_perturbations"], counts.sort_index())
    assert list(table["model"].unique()) == list(scores)

    pools = medians_table(scores, degs, pools={"test": ["gene1", "gene2", "gene3"]}, metrics=["wasserstein"])
    first = scores["pre-trained"].iloc[1:4]["wasserstein_z"].median()
    assert pools.loc[0, "wasserstein_z"] == pytest.approx(first) and list(pools["n_perturbations"]) == [3, 3, 3]
    assert list(medians_table({"m": fake_scores(0)})["pool"]) == ["all perturbations"]


def test_medians_table_adds_one_row_per_model_for_the_pairs(degs):
    pairs = pd.DataFrame(
        {"perturbation_1": ["gene1", "gene1"], "perturbation_2": ["gene2", "gene3"], "edistance_z": [1.0, 3.0]}
    )
    table = medians_table({"m": fake_scores(0)}, degs, pairs_by_model={"m": pairs})
    row = table[table["pool"] == "between perturbations (pairs)"].iloc[0]
    assert row["n_perturbations"] == 3 and row["edistance_z"] == 2.0 and np.isnan(row["wasserstein_z"])


def test_ranked_table_sorts_by_z_with_nan_last(degs):
    scores = fake_scores(3)
    table = ranked_table(scores, metric="edistance", degs=degs, top=None)
    assert list(table["rank"]) == list(range(1, 31))
    finite = table["edistance_z"].dropna()
    assert finite.is_monotonic_decreasing and np.isnan(table["edistance_z"].iloc[-1])
    assert list(table.columns) == [
        "rank", "perturbation", "n_cells", "n_degs", "knockdown",
        "edistance_z", "cosine_edistance_z", "wasserstein_z", "edistance_pvalue",
    ]  # fmt: skip
    by_label = table.set_index("perturbation")
    np.testing.assert_array_equal(by_label.loc[degs["perturbation"], "n_degs"], degs["n_degs"])
    assert len(ranked_table(scores, metric="wasserstein", top=5)) == 5
    with pytest.raises(KeyError, match="missing_z"):
        ranked_table(scores, metric="missing")


def test_attach_n_degs_takes_a_table_or_a_mapping_and_leaves_unknown_labels_nan(degs):
    scores = fake_scores(0).head(3).assign(n_degs=-1)
    from_table = attach_n_degs(scores, degs)
    np.testing.assert_array_equal(from_table["n_degs"], degs["n_degs"][:3])
    from_mapping = attach_n_degs(scores, {"gene0": 5})
    assert from_mapping["n_degs"].iloc[0] == 5 and from_mapping["n_degs"].iloc[1:].isna().all()
    assert (attach_n_degs(scores, None)["n_degs"] == -1).all() and (scores["n_degs"] == -1).all()
    with pytest.raises(KeyError, match="n_degs"):
        attach_n_degs(scores, degs.drop(columns="n_degs"))


def test_split_table_from_a_table():
    split = split_table(pd.DataFrame({"perturbation": ["b", "a", "c"], "split": ["train", "train", "test"]}))
    assert split.to_dict("list") == {
        "part": ["train", "test"],
        "n_perturbations": [2, 1],
        "perturbations": ["a, b", "c"],
    }


def test_a_perturbation_split_gives_the_pools_parts_and_overview(degs):
    split = PerturbationSplit(
        train=("gene1", "gene2"), test=("gene3", "gene4"), zero_deg=("gene5", "gene6", "gene7"), few_degs=("gene8",),
        control_train=("c1", "c2", "c3"), control_validation=("c4",), control_test=("c5",),
        n_degs={}, perturbation_key="guide", control="NT", min_degs=20, test_fraction=0.5,
        control_fractions=(0.6, 0.2, 0.2), seed=0,
    )  # fmt: skip
    scores = {"pre-trained": fake_scores(0)}
    medians = medians_table(scores, degs, pools=split_pools(split))
    assert list(medians["pool"]) == ["0-DEG pool", "test (>= 20 DEGs)"]
    frame = scores["pre-trained"].set_index("perturbation")
    expected = [
        frame.loc[list(split.zero_deg), "wasserstein_z"].median(),
        frame.loc[["gene3", "gene4"], "wasserstein_z"].median(),
    ]
    np.testing.assert_allclose(medians["wasserstein_z"], expected)
    assert list(split_table(split)["n_perturbations"]) == [2, 2, 3, 1]
    assert split_overview(split) == {
        "control cells (train / validation / test)": "3 / 1 / 1",
        "min_degs": 20,
        "test_fraction": 0.5,
        "seed": 0,
    }
