import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr

from cellshift.analysis import perturbation_distances, score_perturbation_pairs, score_perturbations
from cellshift.analysis.calibration import size_bucket, size_bucket_below
from cellshift.datasets import papalexi2021
from cellshift.embed import embed_pca
from cellshift.metrics import control_null_edistance, cosine_edistance, draw_control_subsets, edistance

KEYS = {"embedding": "X_emb", "perturbation_key": "guide", "control": "ctrl"}


def make_screen(seed=0):
    """60 controls, a shifted group 'A' (20 cells) and an unshifted group 'B' (24 cells)."""
    rng = np.random.default_rng(seed)
    labels = np.array(["ctrl"] * 60 + ["A"] * 20 + ["B"] * 24)
    Z = rng.normal(size=(labels.size, 5)) + 3.0
    Z[labels == "A", 0] += 3.0
    adata = ad.AnnData(X=np.zeros((labels.size, 1)), obs=pd.DataFrame({"guide": labels}))
    adata.obsm["X_emb"] = Z
    return adata


def normalized(adata, label):
    Z = adata.obsm["X_emb"][adata.obs["guide"].to_numpy() == label]
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def test_values_equal_direct_metrics_on_normalised_rows():
    adata = make_screen()
    table = score_perturbations(adata, **KEYS, metrics=("edistance", "cosine_edistance"), n_null=50).set_index(
        "perturbation"
    )
    for group in ("A", "B"):
        X, Y = normalized(adata, group), normalized(adata, "ctrl")
        assert table.loc[group, "edistance"] == pytest.approx(edistance(X, Y), rel=1e-9)
        assert table.loc[group, "cosine_edistance"] == pytest.approx(cosine_edistance(X, Y), rel=1e-9)
    assert table.loc["A", "n_cells"] == 20
    assert table.loc["A", "edistance_z"] > 5 and table.loc["A", "edistance_pvalue"] == pytest.approx(1 / 51)


def test_null_z_and_pvalue_by_hand():
    adata = make_screen()
    table = score_perturbations(adata, **KEYS, metrics=("edistance",), n_null=30, seed=3).set_index("perturbation")
    controls = normalized(adata, "ctrl")
    size = size_bucket(24)
    subsets = draw_control_subsets(60, size, 30, np.random.default_rng([3, 0, size]))
    null = np.array([edistance(controls[s], np.delete(controls, s, axis=0)) for s in subsets])
    null *= (1 / 24 + 1 / 36) / (1 / size + 1 / (60 - size))  # scaled from the grid size to B's 24 cells
    value = table.loc["B", "edistance"]
    assert table.loc["B", "edistance_z"] == pytest.approx((value - null.mean()) / null.std(ddof=1), rel=1e-8)
    assert table.loc["B", "edistance_pvalue"] == pytest.approx((np.sum(null >= value) + 1) / 31)


def test_matched_reference_and_wasserstein_are_deterministic():
    adata = make_screen()
    options = {"metrics": ("edistance", "wasserstein"), "n_null": 20, "reference": "matched", "seed": 1}
    first = score_perturbations(adata, **KEYS, **options)
    pd.testing.assert_frame_equal(first, score_perturbations(adata, **KEYS, **options))
    assert list(first.columns) == [
        "perturbation", "n_cells", "edistance", "edistance_z", "edistance_pvalue", "edistance_null_size",
        "wasserstein", "wasserstein_z", "wasserstein_pvalue", "wasserstein_null_size",
    ]  # fmt: skip
    table = first.set_index("perturbation")
    assert table.loc["A", "wasserstein_z"] > table.loc["B", "wasserstein_z"]
    assert table.loc["A", "wasserstein_pvalue"] == pytest.approx(1 / 21)


def test_returned_null_draws_give_the_z_scores():
    adata = make_screen()
    table, nulls = score_perturbations(
        adata, **KEYS, metrics=("edistance", "wasserstein"), n_null=25, seed=2, return_nulls=True
    )
    assert set(nulls.columns) == {"metric", "null_size", "value"}
    for metric in ("edistance", "wasserstein"):
        for _, row in table.iterrows():
            in_null = (nulls["metric"] == metric) & (nulls["null_size"] == row[f"{metric}_null_size"])
            null = nulls.loc[in_null, "value"].to_numpy()
            assert null.size == 25
            if metric == "edistance":  # the E-distance null is scaled to the group's own size
                n, s = row["n_cells"], row["edistance_null_size"]
                null = null * (1 / n + 1 / (60 - n)) / (1 / s + 1 / (60 - s))
            expected = (row[metric] - null.mean()) / null.std(ddof=1)
            assert row[f"{metric}_z"] == pytest.approx(expected, rel=1e-12)
    assert table.set_index("perturbation").loc["B", "edistance_null_size"] == size_bucket(24)


def test_pair_scores_match_direct_edistance_and_a_subset_null_by_hand():
    labels = np.array(["ctrl"] * 80 + ["A"] * 20 + ["B"] * 30 + ["C"] * 20)
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(labels.size, 5)) + 3.0
    Z[labels == "A", 0] += 3.0
    adata = ad.AnnData(X=np.zeros((labels.size, 1)), obs=pd.DataFrame({"guide": labels}))
    adata.obsm["X_emb"] = Z
    pairs = score_perturbation_pairs(adata, **KEYS, metrics=("edistance", "cosine_edistance"), n_null=30, seed=5)
    assert list(zip(pairs["perturbation_1"], pairs["perturbation_2"])) == [("A", "B"), ("A", "C"), ("B", "C")]
    row = pairs.set_index(["perturbation_1", "perturbation_2"]).loc[("A", "B")]
    assert row["edistance"] == pytest.approx(edistance(normalized(adata, "A"), normalized(adata, "B")), rel=1e-9)
    assert row["cosine_edistance"] == pytest.approx(
        cosine_edistance(normalized(adata, "A"), normalized(adata, "B")), rel=1e-9
    )
    size = size_bucket(24)  # harmonic mean of 20 and 30
    drawn = draw_control_subsets(80, 2 * size, 30, np.random.default_rng([5, 4, size]))
    controls = normalized(adata, "ctrl")
    null = np.array([edistance(controls[d[:size]], controls[d[size:]]) for d in drawn])
    null *= (1 / 20 + 1 / 30) / (2 / size)  # scaled from two groups of the grid size to 20 and 30 cells
    assert row["edistance_z"] == pytest.approx((row["edistance"] - null.mean()) / null.std(ddof=1), rel=1e-8)
    table = pairs.set_index(["perturbation_1", "perturbation_2"])
    assert table.loc[("B", "C"), "edistance_z"] < table.loc[("A", "B"), "edistance_z"]
    with pytest.raises(ValueError, match=r"\['D'\] are not scored"):
        score_perturbation_pairs(adata, **KEYS, perturbations=["A", "D"])
    with pytest.raises(ValueError, match="at least 2 perturbations"):
        score_perturbation_pairs(adata, **KEYS, perturbations=["A"])
    with pytest.raises(ValueError, match="E-distance|edistance"):
        score_perturbation_pairs(adata, **KEYS, metrics=("wasserstein",))


def exact_w1(X, Y):
    cost = cdist(X, Y)
    rows, columns = linear_sum_assignment(cost)
    return cost[rows, columns].mean()


def test_wasserstein_compares_and_calibrates_at_the_same_size_by_hand():
    adata = make_screen()
    table = score_perturbations(adata, **KEYS, metrics=("wasserstein",), n_null=12, seed=7).set_index("perturbation")
    controls, group = normalized(adata, "ctrl"), normalized(adata, "B")  # B has 24 cells
    size = size_bucket_below(24)
    assert size == 23 and table.loc["B", "wasserstein_null_size"] == size
    rng = np.random.default_rng([7, 2, 1])  # seed, Wasserstein stream, index of B
    cells = group[rng.choice(24, size, replace=False)]
    value = np.mean([exact_w1(cells, controls[rng.choice(60, size, replace=False)]) for _ in range(5)])
    assert table.loc["B", "wasserstein"] == pytest.approx(value, rel=1e-9)
    rng = np.random.default_rng([7, 3, size])  # seed, Wasserstein null stream, size
    null = []
    for _ in range(12):
        order = rng.permutation(60)
        subset, rest = controls[order[:size]], order[size:]
        null.append(np.mean([exact_w1(subset, controls[rng.choice(rest, size, replace=False)]) for _ in range(5)]))
    assert table.loc["B", "wasserstein_z"] == pytest.approx((value - np.mean(null)) / np.std(null, ddof=1), rel=1e-8)


def test_too_few_controls_for_the_null():
    with pytest.raises(ValueError, match="needs at least 80 control cells"):
        score_perturbations(make_screen(), **KEYS, metrics=("edistance",), reference="matched", null_size=40)
    with pytest.raises(ValueError, match="unknown metric"):
        score_perturbations(make_screen(), **KEYS, metrics=("mmd",))


def test_perturbation_distances_match_direct_edistance():
    adata = make_screen()
    matrix = perturbation_distances(adata, embedding="X_emb", perturbation_key="guide")
    assert list(matrix.index) == ["A", "B", "ctrl"]
    assert matrix.loc["A", "B"] == pytest.approx(edistance(normalized(adata, "A"), normalized(adata, "B")))
    assert matrix.loc["A", "A"] == 0.0


def test_papalexi_rankings_are_stable_across_seeds_and_find_strong_targets():
    adata = papalexi2021()
    embed_pca(adata, n_comps=50)
    keys = {"embedding": "X_pca", "perturbation_key": "target_gene", "control": "non-targeting"}
    correlations = {}
    for reference, null_size in (("all", None), ("matched", 300)):
        runs = [
            score_perturbations(
                adata, **keys, metrics=("edistance",), n_null=50, reference=reference, null_size=null_size, seed=seed
            )
            for seed in (0, 1)
        ]
        correlations[reference] = spearmanr(runs[0]["edistance_z"], runs[1]["edistance_z"]).statistic
        if reference == "all":
            ranked = runs[0].sort_values("edistance_z", ascending=False)["perturbation"].tolist()
    print(f"Spearman of E-distance z between seeds 0 and 1: {correlations}")
    assert correlations["all"] >= 0.95
    top_third = ranked[: len(ranked) // 3 + 1]
    assert {"IFNGR1", "IFNGR2", "JAK2", "STAT1"} <= set(top_third)


def test_null_spread_scales_with_one_over_n_plus_one_over_the_rest_on_papalexi():
    """The scaling of the bucketed null rests on sd(E) ~ 1/n + 1/(N - n) for the E-statistic under the null."""
    adata = papalexi2021()
    embed_pca(adata, n_comps=50)
    control = adata.obs["target_gene"].to_numpy() == "non-targeting"
    Z = adata.obsm["X_pca"][control]
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    n_control, sizes = len(Z), [50, 200, 800]
    nulls = control_null_edistance(Z, sizes, n_draws=300, rng=0)
    ratios = [null.std(ddof=1) / (1 / n + 1 / (n_control - n)) for null, n in zip(nulls, sizes)]
    assert max(ratios) / min(ratios) < 1.2  # the raw spread itself changes 10-fold over these sizes
    assert nulls[0].std() / nulls[2].std() > 5
