import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection

from cellshift.analysis import score_perturbation_pairs, score_perturbations
from cellshift.analysis.calibration import standardised_nulls
from cellshift.analysis.scoring import l2_normalize
from cellshift.datasets import papalexi2021
from cellshift.embed import embed_pca
from cellshift.metrics import control_null_edistance
from cellshift.plotting import (
    compute_umap,
    control_null,
    distance_distributions,
    enrichment_pvalues,
    pair_distance_distributions,
    umap_compare_embeddings,
    umap_perturbed_vs_control,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GROUPS = ["non-targeting", "IFNGR1", "CD86", "STAT1"]


@pytest.fixture(scope="module")
def screen():
    """200 cells of each of 3 Papalexi perturbations and 400 control cells, PCA (20 and 5 components)."""
    adata = papalexi2021()
    labels = adata.obs["target_gene"].astype(str).to_numpy()
    rng = np.random.default_rng(0)
    cells = [
        rng.choice(np.flatnonzero(labels == g), 400 if g == "non-targeting" else 200, replace=False) for g in GROUPS
    ]
    adata = adata[np.sort(np.concatenate(cells))].copy()
    embed_pca(adata, n_comps=20)
    adata.obsm["X_pca5"] = adata.obsm["X_pca"][:, :5].copy()
    return adata


def assert_png(path):
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def points(axis):
    return [len(c.get_offsets()) for c in axis.collections if isinstance(c, PathCollection)]


@pytest.mark.slow
def test_umap_panels_show_sampled_cells_and_leave_adata_unchanged(screen, tmp_path):
    before = (set(screen.obsm), set(screen.uns), list(screen.obs.columns), screen.obsm["X_pca"].copy())
    path = tmp_path / "umap.png"
    figure = umap_perturbed_vs_control(
        screen,
        embedding="X_pca",
        perturbation_key="target_gene",
        control="non-targeting",
        perturbations=["IFNGR1", "STAT1"],
        max_cells_per_group=150,
        n_epochs=50,
        path=path,
    )
    assert_png(path)
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == ["IFNGR1 (150 of 200 cells)", "STAT1 (150 of 200 cells)"]
    # grey controls first, then the perturbed cells; the shared layout gives both panels the same control points
    assert [points(axis) for axis in panels] == [[150, 150], [150, 150]]
    np.testing.assert_array_equal(panels[0].collections[0].get_offsets(), panels[1].collections[0].get_offsets())
    assert set(screen.obsm) == before[0] and set(screen.uns) == before[1] and list(screen.obs.columns) == before[2]
    np.testing.assert_array_equal(screen.obsm["X_pca"], before[3])
    with pytest.raises(FileExistsError):
        umap_perturbed_vs_control(
            screen, embedding="X_pca", perturbation_key="target_gene", control="non-targeting",
            perturbations=["IFNGR1"], max_cells_per_group=20, n_epochs=10, path=path,
        )  # fmt: skip


@pytest.mark.slow
def test_umap_compare_embeddings_puts_models_side_by_side(screen, tmp_path):
    figure = umap_compare_embeddings(
        screen,
        embeddings={"PCA 20": "X_pca", "PCA 5": "X_pca5"},
        perturbation_key="target_gene",
        control="non-targeting",
        perturbations=["IFNGR1"],
        max_cells_per_group=100,
        layout="per_perturbation",
        n_epochs=50,
        path=tmp_path / "compare.png",
    )
    assert_png(tmp_path / "compare.png")
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title().split("\n")[0] for axis in panels] == ["PCA 20", "PCA 5"]
    assert [points(axis) for axis in panels] == [[100, 100], [100, 100]]
    # different embeddings give different layouts of the same cells
    assert not np.allclose(panels[0].collections[1].get_offsets(), panels[1].collections[1].get_offsets())


@pytest.mark.slow
def test_compute_umap_is_seeded(screen):
    Z = screen.obsm["X_pca"][:150]
    first = compute_umap(Z, seed=0, n_epochs=30)
    assert first.shape == (150, 2) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, compute_umap(Z, seed=0, n_epochs=30))
    assert not np.allclose(first, compute_umap(Z, seed=1, n_epochs=30))


def test_umap_rejects_bad_labels(screen):
    options = {"embedding": "X_pca", "perturbation_key": "target_gene", "control": "non-targeting"}
    with pytest.raises(KeyError, match="do not occur"):
        umap_perturbed_vs_control(screen, perturbations=["NOPE"], **options)
    with pytest.raises(ValueError, match="control label"):
        umap_perturbed_vs_control(screen, perturbations=["non-targeting"], **options)
    with pytest.raises(KeyError, match="X_missing"):
        umap_perturbed_vs_control(screen, perturbations=["IFNGR1"], **{**options, "embedding": "X_missing"})


def fake_scores(seed, n=40):
    rng = np.random.default_rng(seed)
    z = rng.normal(1.0, 2.0, n)
    z[3] = np.nan
    return pd.DataFrame(
        {
            "perturbation": [f"g{i}" for i in range(n)],
            "n_cells": rng.integers(20, 300, n),
            "edistance": rng.random(n),
            "edistance_z": z,
            "n_degs": rng.choice([0, 0, 3, 25, 140], n),
        }
    )


def test_distance_distributions_show_every_perturbation_and_the_class_medians(tmp_path):
    scores = {"pre-trained": fake_scores(0), "fine-tuned": fake_scores(1)}
    figure = distance_distributions(scores, path=tmp_path / "dist.png")
    assert_png(tmp_path / "dist.png")
    axis = figure.axes[0]
    assert sum(points(axis)) == sum(frame["edistance_z"].notna().sum() for frame in scores.values())
    assert "2 NaN z left out" in axis.get_xlabel()

    tidy = pd.concat([frame.assign(model=model) for model, frame in scores.items()]).dropna(subset=["edistance_z"])
    tidy["deg_class"] = np.where(tidy["n_degs"] == 0, "0", np.where(tidy["n_degs"] >= 20, "20+", "1-19"))
    expected = tidy.groupby(["model", "deg_class"], sort=False)["edistance_z"].median()
    bars = [segment[0][1] for c in axis.collections if isinstance(c, LineCollection) for segment in c.get_segments()]
    order = [(model, c) for model in scores for c in ("0", "1-19", "20+")]
    np.testing.assert_allclose(bars, [expected[key] for key in order])

    unsplit = distance_distributions({m: f.drop(columns="n_degs") for m, f in scores.items()}, metric="edistance")
    assert len([c for c in unsplit.axes[0].collections if isinstance(c, LineCollection)]) == 2


def test_enrichment_pvalues_plots_minus_log10_p_and_the_bonferroni_line(tmp_path):
    rng = np.random.default_rng(0)
    enrichment = pd.DataFrame(
        [
            {"model": m, "gene_set": "essential", "metric": metric, "top_n": n, "p_value": rng.uniform(1e-4, 1)}
            for m in ("pre-trained", "fine-tuned")
            for metric in ("edistance", "wasserstein")
            for n in (3, 5, 10)
        ]
    )
    figure = enrichment_pvalues(enrichment, path=tmp_path / "enrichment.png")
    assert_png(tmp_path / "enrichment.png")
    assert [axis.get_title() for axis in figure.axes] == ["pre-trained / essential", "fine-tuned / essential"]
    first = figure.axes[0].get_lines()
    rows = enrichment[(enrichment["model"] == "pre-trained") & (enrichment["metric"] == "edistance")]
    np.testing.assert_allclose(first[0].get_ydata(), -np.log10(rows["p_value"]))
    np.testing.assert_allclose(first[-1].get_ydata(), -np.log10(0.05 / 3))
    with pytest.raises(KeyError, match="top_n"):
        enrichment_pvalues(enrichment.drop(columns="top_n"))


def test_control_null_histogram_counts_the_draws_and_strong_knockdowns_lie_beyond_it(screen, tmp_path):
    control = screen.obs["target_gene"].to_numpy() == "non-targeting"
    null = control_null_edistance(l2_normalize(screen.obsm["X_pca"][control]), sizes=[200], n_draws=300, rng=0)[0]
    observed = score_perturbations(
        screen,
        embedding="X_pca",
        perturbation_key="target_gene",
        control="non-targeting",
        metrics=["edistance"],
        n_null=50,
    )
    figure = control_null({"PCA, groups of 200": null}, {"PCA, groups of 200": observed}, label_top=2)
    figure.savefig(tmp_path / "null.png")
    assert_png(tmp_path / "null.png")
    axis = figure.axes[0]
    heights = [patch.get_height() for patch in axis.patches]
    np.testing.assert_array_equal(heights, np.histogram(null, bins=40)[0])
    # STAT1 and IFNGR1 knock-downs block the IFN-gamma response: beyond every control draw, and labelled;
    # CD86 (a surface receptor without a transcriptional phenotype here) stays inside the null
    distance = observed.set_index("perturbation")["edistance"]
    assert min(distance["STAT1"], distance["IFNGR1"]) > null.max() and distance["CD86"] < np.quantile(null, 0.95)
    assert [text.get_text() for text in axis.texts] == list(distance.sort_values(ascending=False).index[:2])
    with pytest.raises(KeyError, match="without a null"):
        control_null({"a": null}, {"b": observed})


def test_pair_distance_distributions_show_every_pair_and_the_median(screen, tmp_path):
    keys = {"embedding": "X_pca", "perturbation_key": "target_gene", "control": "non-targeting"}
    pairs = {"PCA": score_perturbation_pairs(screen, **keys, metrics=["edistance"], n_null=30)}
    pairs["PCA, 5 components"] = score_perturbation_pairs(screen, **{**keys, "embedding": "X_pca5"}, n_null=30)
    figure = pair_distance_distributions(pairs, path=tmp_path / "pairs.png")
    assert_png(tmp_path / "pairs.png")
    axis = figure.axes[0]
    assert points(axis) == [3, 3]  # 3 perturbations: 3 pairs per model
    bars = [segment[0][1] for c in axis.collections if isinstance(c, LineCollection) for segment in c.get_segments()]
    np.testing.assert_allclose(bars, [frame["edistance_z"].median() for frame in pairs.values()])
    # IFNGR1 and STAT1 knock-downs block the same pathway: closer to each other than either is to CD86
    by_pair = pairs["PCA"].set_index(["perturbation_1", "perturbation_2"])["edistance_z"]
    assert by_pair[("IFNGR1", "STAT1")] < min(by_pair[("CD86", "IFNGR1")], by_pair[("CD86", "STAT1")])
    with pytest.raises(KeyError, match="cosine_edistance_z"):
        pair_distance_distributions(pairs, metric="cosine_edistance")


def test_standardised_nulls_are_the_draws_on_the_z_scale(screen):
    keys = {"embedding": "X_pca", "perturbation_key": "target_gene", "control": "non-targeting"}
    _, nulls = score_perturbations(screen, **keys, metrics=["edistance"], n_null=40, null_size=None, return_nulls=True)
    pooled = standardised_nulls(nulls, "edistance")
    assert pooled.size == len(nulls)
    for size in nulls["null_size"].unique():
        rows = (nulls["null_size"] == size).to_numpy()
        ratios = nulls["value"].to_numpy()[rows] / pooled[rows]  # each size has one exact sd
        np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
        assert abs(pooled[rows].mean()) < 0.6 and 0.5 < pooled[rows].std(ddof=1) < 1.6
    without_z = standardised_nulls(nulls.drop(columns="z"), "edistance")  # older tables: within-size scale
    for size in nulls["null_size"].unique():
        values = without_z[(nulls["null_size"] == size).to_numpy()]
        assert values.mean() == pytest.approx(0.0, abs=1e-12) and values.std(ddof=1) == pytest.approx(1.0)
    with pytest.raises(KeyError, match="wasserstein"):
        standardised_nulls(nulls, "wasserstein")


def test_axes_turn_symmetric_log_only_when_z_scores_span_orders_of_magnitude():
    narrow = {"a": pd.DataFrame({"edistance_z": [0.5, 2.0, 30.0]})}
    wide = {"a": pd.DataFrame({"edistance_z": [0.5, 2.0, 1500.0]})}
    assert pair_distance_distributions(narrow).axes[0].get_yscale() == "linear"
    assert pair_distance_distributions(wide).axes[0].get_yscale() == "symlog"
    scores = {"m": pd.DataFrame({"perturbation": ["A", "B", "C"], "edistance_z": [0.1, 3.0, 900.0]})}
    assert distance_distributions(scores).axes[0].get_yscale() == "symlog"
