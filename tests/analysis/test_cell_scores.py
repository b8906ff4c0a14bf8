import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.decomposition import PCA

from cellshift.analysis import responder_knockdown, score_cells
from cellshift.analysis.cell_scores import conformal_pvalues, storey_responding_fraction
from cellshift.datasets import papalexi2021

KEYS = {"embedding": "X_pca", "perturbation_key": "target_gene", "control": "non-targeting"}


@pytest.fixture(scope="module")
def papalexi_pca():
    """The bundled Papalexi screen with a 20-d PCA of its log-normalised counts (sklearn, independent of cellshift)."""
    adata = papalexi2021()
    counts = adata.X.toarray().astype(np.float64)
    logged = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
    adata.obsm["X_pca"] = PCA(n_components=20, random_state=0).fit_transform(logged)
    return adata


def test_conformal_pvalues_count_null_scores_at_least_as_large():
    rng = np.random.default_rng(0)
    null, scores = rng.normal(size=200), rng.normal(size=50)
    expected = [(1 + np.sum(null >= s)) / 201 for s in scores]
    np.testing.assert_allclose(conformal_pvalues(scores, null), expected)
    assert conformal_pvalues(np.array([null.max() + 1]), null)[0] == pytest.approx(1 / 201)


def test_storey_fraction_is_zero_for_uniform_and_counts_small_pvalues():
    uniform = (np.arange(1000) + 0.5) / 1000
    assert storey_responding_fraction(uniform) == pytest.approx(0.0, abs=1e-12)
    mixed = np.r_[np.full(300, 1e-4), (np.arange(700) + 0.5) / 700]
    assert storey_responding_fraction(mixed) == pytest.approx(0.3, abs=1e-9)


def null_screen(adata, sizes, seed):
    """Control cells of the real screen relabelled into fake perturbations of the given sizes."""
    controls = adata[adata.obs["target_gene"] == "non-targeting"].copy()
    order = np.random.default_rng(seed).permutation(controls.n_obs)
    labels = np.full(controls.n_obs, "non-targeting", dtype=object)
    start = 0
    for index, size in enumerate(sizes):
        labels[order[start : start + size]] = f"fake{index}_{size}"
        start += size
    controls.obs["target_gene"] = labels
    return controls


def test_null_screen_of_real_control_cells_gives_uniform_pvalues_and_few_calls(papalexi_pca):
    pvalues, calls, cells = [], 0, 0
    for seed in range(3):
        screen = null_screen(papalexi_pca, (20, 60, 150, 400, 800), seed)
        score_cells(screen, **KEYS, seed=seed)
        scored = screen.obs["perturbation_response"].isin(["responder", "non-responder"])
        pvalues.append(screen.obs.loc[scored, "perturbation_pvalue"].to_numpy())
        calls += int(screen.obs["perturbation_response"].eq("responder").sum())
        cells += int(scored.sum())
    pooled = np.concatenate(pvalues)
    assert stats.kstest(pooled, "uniform").pvalue > 0.001
    assert abs(pooled.mean() - 0.5) < 0.03
    assert calls / cells < 0.01


def test_knocked_out_cells_are_called_and_responders_lose_the_target(papalexi_pca):
    keep = papalexi_pca.obs["target_gene"].isin(["non-targeting", "STAT1", "JAK2", "ATF2"]).to_numpy()
    adata = papalexi_pca[keep].copy()
    score_cells(adata, **KEYS, seed=0)
    summary = adata.uns["perturbation_response"]["summary"].set_index("perturbation")
    assert summary.loc["STAT1", "fraction_responders"] > 0.5
    assert summary.loc["JAK2", "fraction_responders"] > 0.4
    assert summary.loc["ATF2", "fraction_responders"] < 0.02
    counts = adata.X.toarray()
    per_10k = counts / counts.sum(axis=1, keepdims=True) * 1e4
    for target in ("STAT1", "JAK2"):
        expression = per_10k[:, adata.var_names.get_loc(target)]
        cells = adata.obs["target_gene"].eq(target).to_numpy()
        response = adata.obs["perturbation_response"].to_numpy()
        responders = expression[cells & (response == "responder")].mean()
        others = expression[cells & (response == "non-responder")].mean()
        assert responders < 0.5 * others
    table = responder_knockdown(adata, perturbation_key="target_gene").set_index("perturbation")
    assert set(table.index) == {"STAT1", "JAK2"}  # ATF2 is not among the measured genes
    control_mean = per_10k[adata.obs["target_gene"].eq("non-targeting").to_numpy(), adata.var_names.get_loc("JAK2")]
    responding = adata.obs["perturbation_response"].eq("responder").to_numpy()
    jak2 = adata.obs["target_gene"].eq("JAK2").to_numpy() & responding
    expected = per_10k[jak2, adata.var_names.get_loc("JAK2")].mean() / control_mean.mean()
    assert table.loc["JAK2", "knockdown_responders"] == pytest.approx(expected, rel=1e-9)
    assert table.loc["JAK2", "n_responders"] == jak2.sum()


def test_fields_written_labels_and_seed():
    rng = np.random.default_rng(0)
    labels = np.array(["ctrl"] * 300 + ["A"] * 40 + ["B"] * 40 + ["tiny"] * 5 + ["few"] * 8)
    embedding = rng.normal(size=(labels.size, 4))
    embedding[labels == "A", 0] += 4.0
    adata = ad.AnnData(np.zeros((labels.size, 1)), obs=pd.DataFrame({"g": labels}))
    adata.obsm["X_emb"] = embedding
    keys = {"embedding": "X_emb", "perturbation_key": "g", "control": "ctrl"}
    first = score_cells(adata, **keys, min_cells=5, seed=3, copy=True)
    second = score_cells(adata, **keys, min_cells=5, seed=3, copy=True)
    assert "perturbation_score" not in adata.obs
    pd.testing.assert_frame_equal(first.obs, second.obs)
    response = first.obs["perturbation_response"]
    assert set(response[labels == "ctrl"]) == {"control"} and set(response[labels == "tiny"]) == {"not scored"}
    assert set(response[labels == "few"]) == {"not scored"}  # 8 cells: fewer than 2 per fold
    assert (response[labels == "A"] == "responder").mean() > 0.9
    assert np.isnan(first.obs["perturbation_score"][labels == "ctrl"]).all()
    summary = first.uns["perturbation_response"]["summary"].set_index("perturbation")
    assert list(summary.index) == ["A", "B"] and summary.loc["A", "n_cells"] == 40


@pytest.mark.parametrize(
    ("options", "message"),
    [({"n_folds": 1}, "n_folds must be"), ({"fdr": 1.5}, "fdr must be"), ({"n_folds": 30}, "600 control")],
)
def test_bad_settings_are_refused(options, message):
    adata = ad.AnnData(np.zeros((4, 1)), obs=pd.DataFrame({"g": ["c", "c", "a", "a"]}))
    adata.obsm["X_emb"] = np.zeros((4, 2))
    with pytest.raises(ValueError, match=message):
        score_cells(adata, embedding="X_emb", perturbation_key="g", control="c", **options)
