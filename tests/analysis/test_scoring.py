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
from cellshift.metrics import cosine_edistance, draw_control_subsets, edistance

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
    assert table.loc["A", "edistance_z"] > 5
    assert table.loc["A", "edistance_pvalue"] < 1 / 51 and table.loc["A", "edistance_pvalue_source"] == "tail fit"


def exact_permutation_sd(X, Y):
    """The E-statistic's sd over random relabellings of X + Y, from the U-centred pooled distances (numpy)."""
    n, m = len(X), len(Y)
    pooled = np.vstack([X, Y])
    size = n + m
    distances = cdist(pooled, pooled)
    rows = distances.sum(axis=1)
    centred = (
        distances - rows[:, None] / (size - 2) - rows[None, :] / (size - 2) + rows.sum() / ((size - 1) * (size - 2))
    )
    np.fill_diagonal(centred, 0.0)
    q2 = n * (n - 1) / (size * (size - 1))
    q3, q4 = q2 * (n - 2) / (size - 2), q2 * (n - 2) * (n - 3) / ((size - 2) * (size - 3))
    b = 2 / (n * m) + 1 / (n * (n - 1)) + 1 / (m * (m - 1))
    return np.sqrt(2 * b**2 * (centred**2).sum() * (q2 - 2 * q3 + q4))


def test_z_is_the_edistance_over_its_exact_permutation_sd_and_p_comes_from_standardised_draws():
    adata = make_screen()
    table = score_perturbations(adata, **KEYS, metrics=("edistance",), n_null=30, seed=3).set_index("perturbation")
    controls, group = normalized(adata, "ctrl"), normalized(adata, "B")
    value = table.loc["B", "edistance"]
    assert table.loc["B", "edistance_z"] == pytest.approx(value / exact_permutation_sd(group, controls), rel=1e-8)
    size = size_bucket(24)
    subsets = draw_control_subsets(60, size, 30, np.random.default_rng([3, 0, size]))
    null = np.array([edistance(controls[s], np.delete(controls, s, axis=0)) for s in subsets])
    null /= exact_permutation_sd(controls[:size], controls[size:])  # same sd for every split of the controls
    exceed = np.sum(null >= table.loc["B", "edistance_z"])
    assert exceed >= 10 and table.loc["B", "edistance_pvalue"] == pytest.approx((exceed + 1) / 31)
    assert table.loc["B", "edistance_pvalue_source"] == "draws"


def test_matched_reference_and_wasserstein_are_deterministic():
    adata = make_screen()
    options = {"metrics": ("edistance", "wasserstein"), "n_null": 20, "reference": "matched", "seed": 1}
    first = score_perturbations(adata, **KEYS, **options)
    pd.testing.assert_frame_equal(first, score_perturbations(adata, **KEYS, **options))
    columns = ["", "_z", "_pvalue", "_pvalue_source", "_fdr", "_null_size"]
    expected = ["perturbation", "n_cells"] + [
        f"{metric}{suffix}" for metric in options["metrics"] for suffix in columns
    ]
    assert list(first.columns) == [*expected, "status"]
    table = first.set_index("perturbation")
    assert table.loc["A", "wasserstein_z"] > table.loc["B", "wasserstein_z"]
    assert table.loc["A", "wasserstein_pvalue"] < 1 / 21  # past the floor of 20 draws


def test_returned_null_draws_give_the_z_scores_and_the_fdr_is_benjamini_hochberg():
    adata = make_screen()
    table, nulls = score_perturbations(
        adata, **KEYS, metrics=("edistance", "wasserstein"), n_null=25, seed=2, return_nulls=True
    )
    assert set(nulls.columns) == {"metric", "null_size", "value", "z"}
    for _, row in table.iterrows():
        in_null = (nulls["metric"] == "wasserstein") & (nulls["null_size"] == row["wasserstein_null_size"])
        null = nulls.loc[in_null, "value"].to_numpy()
        assert null.size == 25
        expected = (row["wasserstein"] - null.mean()) / null.std(ddof=1)
        assert row["wasserstein_z"] == pytest.approx(expected, rel=1e-12)
    assert table.set_index("perturbation").loc["B", "edistance_null_size"] == size_bucket(24)
    p = table["edistance_pvalue"].to_numpy()
    order = np.argsort(p)
    by_hand = np.minimum.accumulate((p[order] * len(p) / np.arange(1, len(p) + 1))[::-1])[::-1]
    np.testing.assert_allclose(table["edistance_fdr"].to_numpy()[order], np.minimum(by_hand, 1))


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


def null_screens(cells, n_control, sizes, n_screens, seed=0):
    """Screens of random groups of real cells vs random controls from the same cells, a new draw each time."""
    rng = np.random.default_rng(seed)
    for size in sizes:
        for screen in range(n_screens):
            order = rng.permutation(cells.n_obs)
            labels = np.full(cells.n_obs, "unused", dtype=object)
            labels[order[:n_control]], labels[order[n_control : n_control + size]] = "ctrl", "group"
            keep = labels != "unused"
            obs = pd.DataFrame({"guide": labels[keep]}, index=[f"cell{i}" for i in range(keep.sum())])
            adata = ad.AnnData(X=np.zeros((keep.sum(), 1)), obs=obs)
            adata.obsm["X_emb"] = cells.obsm["X_pca"][keep]
            yield size, screen, adata


def test_null_screens_of_real_control_cells_are_calibrated_at_every_size():
    """Random groups of Papalexi control cells (one a third larger than the controls) look null.

    The z-scores are right-skewed (a quadratic statistic), so the test checks their mean and sd
    and the share of small p-values, per group size, over screens that redraw the controls.
    """
    cells = papalexi2021()
    cells = cells[cells.obs["target_gene"] == "non-targeting"].copy()
    embed_pca(cells, n_comps=30)
    rows = []
    for size, screen, adata in null_screens(cells, 300, (20, 120, 400), 40):
        table = score_perturbations(adata, **KEYS, metrics=("edistance",), n_null=60, seed=screen, min_cells=5)
        rows.append({"size": size, "z": table["edistance_z"].iloc[0], "p": table["edistance_pvalue"].iloc[0]})
    summary = (
        pd.DataFrame(rows)
        .groupby("size")
        .agg(z_mean=("z", "mean"), z_sd=("z", "std"), small_p=("p", lambda p: (p < 0.2).mean()))
    )
    print(summary)
    assert summary["z_mean"].abs().max() < 0.35
    assert summary["z_sd"].between(0.7, 1.35).all()
    assert summary["small_p"].between(0.05, 0.4).all()  # 0.2 expected; 40 screens per size


def test_a_group_as_large_as_the_controls_is_scored():
    """Two-condition designs (stimulated vs control) have n >= N; a null size past N/2 used to fail."""
    cells = papalexi2021()
    embed_pca(cells, n_comps=20)
    controls = np.flatnonzero(cells.obs["target_gene"].to_numpy() == "non-targeting")[:400]
    stimulated = np.flatnonzero(cells.obs["target_gene"].to_numpy() == "IFNGR1")[:400]
    adata = ad.AnnData(X=np.zeros((800, 1)), obs=pd.DataFrame({"guide": ["ctrl"] * 400 + ["IFNGR1"] * 400}))
    adata.obsm["X_emb"] = cells.obsm["X_pca"][np.concatenate([controls, stimulated])]
    table = score_perturbations(adata, **KEYS, metrics=("edistance", "cosine_edistance"), n_null=50)
    assert table["edistance_null_size"].iloc[0] == 200 and table["edistance_z"].iloc[0] > 5
    fixed = score_perturbations(adata, **KEYS, metrics=("edistance",), n_null=20, null_size=398)
    assert fixed["edistance_z"].iloc[0] == pytest.approx(table["edistance_z"].iloc[0])  # z needs no draws
