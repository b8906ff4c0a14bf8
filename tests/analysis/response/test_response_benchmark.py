from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import cellshift.analysis.response.protocol as protocol
import cellshift.embed.gene_embeddings as gene_embeddings
from cellshift.analysis.response import benchmark

MICROGLIA = Path(__file__).resolve().parents[4] / "shared" / "data" / "perturbseq"
MICROGLIA = MICROGLIA / "wang2025_microglia_crispri_pseudobulk_de.h5ad"
GENES = ["STAT1", "STAT2", "STAT3", "IRF1", "IRF7", "JAK1", "JAK2", "MYC", "SPI1", "CEBPA", "GATA1", "TP53"]


def small_screen(seed=0, n_targets=10, cells=30, n_control=120):
    """Cells whose perturbation lowers its own gene (a panel of real symbols) and shifts a few others."""
    rng = np.random.default_rng(seed)
    targets = GENES[:n_targets]
    labels = np.array(["NT"] * n_control + [t for t in targets for _ in range(cells)])
    rates = np.full((len(labels), len(GENES)), 5.0)
    for k, target in enumerate(targets):
        rows = labels == target
        rates[rows, k] *= 0.2
        rates[rows, (k + 1) % len(GENES)] *= 2.0
    counts = rng.poisson(rates).astype(np.float32)
    batch = rng.choice(["g1", "g2"], size=len(labels))
    obs = pd.DataFrame({"gene": labels, "gem": batch}, index=[f"c{i}" for i in range(len(labels))])
    return ad.AnnData(sparse.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=GENES))


def test_benchmark_scores_every_method_on_every_test_perturbation_once_per_split():
    result = benchmark(
        small_screen(),
        perturbation_key="gene",
        control="NT",
        batch_key="gem",
        embeddings=["pca", "random"],
        n_splits=3,
        n_bootstrap=5,
        n_components=4,
        min_cells=10,
    )
    scores = result.scores
    assert list(scores.columns) == ["split", "method", "perturbation", "fallback", "metric", "value"]
    methods = {"no_change", "training_mean", "linear", "pca", "random", "experimental_error"}
    assert set(scores["method"]) == methods
    assert not scores.duplicated(["split", "method", "perturbation", "metric"]).any()
    per_method = scores.groupby(["method", "metric"])["perturbation"].agg(lambda p: sorted(p))
    assert all(perturbations == sorted(GENES[:10]) for perturbations in per_method)  # each predicted once
    summary = result.summary.set_index("method")
    assert set(summary.index) == methods
    assert summary.loc["experimental_error", "median_l2"] < summary.loc["no_change", "median_l2"]
    coverage = result.coverage.set_index("method")["n_covered"]
    assert coverage["pca"] == 10 and coverage["linear"] == 10 and coverage["random"] == 10
    assert result.settings["n_perturbations"] == 10 and result.settings["n_bootstrap"] == 5
    assert set(result.ranks["method"]) == methods - {"experimental_error"}


def test_no_method_ever_sees_a_test_perturbation_while_fitting(monkeypatch):
    seen = []
    for name in ["predict_from_embedding", "predict_linear", "predict_training_mean", "_split_pca"]:
        original = getattr(protocol, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            seen.append((_name, args))
            return _original(*args, **kwargs)

        monkeypatch.setattr(protocol, name, spy)
    deltas = protocol.response_targets(small_screen(), perturbation_key="gene", control="NT", min_cells=10)
    result = benchmark(deltas, embeddings=["pca", "grn"], n_splits=5, n_components=4)
    assert "experimental_error" not in set(result.scores["method"])  # changes alone have no cells
    assert len(seen) == 5 * 5  # per split: mean, linear, pca loadings, two regressors
    for name, args in seen:
        train = args[1] if name == "_split_pca" else args[0]
        if name != "_split_pca":
            assert not set(train.index) & set(args[1])  # train and test apart
        assert len(train) == 8


def test_model_embedding_runs_through_the_benchmark_and_sets_the_random_dimension(monkeypatch):
    def fake_model_gene_embeddings(model_dir, adata, *, layer=-1):
        from cellshift.data import symbols_to_ensembl

        ids = [e for e in symbols_to_ensembl(GENES[:8]).target if e]
        return pd.DataFrame(np.random.default_rng(0).normal(size=(len(ids), 6)), index=ids)

    monkeypatch.setattr(gene_embeddings, "model_gene_embeddings", fake_model_gene_embeddings)
    result = benchmark(
        small_screen(),
        perturbation_key="gene",
        control="NT",
        embeddings=["model", "random"],
        model_dir="m",
        n_splits=2,
        n_bootstrap=0,
        min_cells=10,
    )
    coverage = result.coverage.set_index("method")["n_covered"]
    assert coverage["model"] == 8 and coverage["random"] == 10
    fits = result.fits.set_index(["split", "method"])
    assert fits["n_fallback"].xs("model", level="method").sum() == 2  # the two genes the model lacks


def test_benchmark_input_errors_name_the_fix():
    with pytest.raises(ValueError, match="both perturbation_key"):
        benchmark(small_screen(), perturbation_key="gene")
    with pytest.raises(ValueError, match="unknown gene embedding"):
        benchmark(small_screen(), perturbation_key="gene", control="NT", embeddings=["word2vec"], min_cells=10)
    with pytest.raises(ValueError, match="differ from the baselines"):
        benchmark(
            small_screen(),
            perturbation_key="gene",
            control="NT",
            embeddings=[],
            min_cells=10,
            gene_embeddings={"linear": pd.DataFrame()},
        )


@pytest.mark.slow
@pytest.mark.skipif(not MICROGLIA.exists(), reason="the microglia screen is only in ../shared/data")
def test_microglia_deltas_mask_clipped_values_and_cover_the_measured_targets():
    deltas = ad.read_h5ad(MICROGLIA)
    subset = deltas[:60].copy()  # a quick run; the full one is in benchmarks/response.py
    result = benchmark(subset, embeddings=["pca", "random"], n_splits=3)
    assert result.settings["n_masked"] == int((np.abs(subset.X) >= 10).sum())
    measured = int(subset.obs["target_in_genes"].astype(bool).sum())
    coverage = result.coverage.set_index("method")["n_covered"]
    assert coverage["pca"] == measured == coverage["linear"]
    summary = result.summary.set_index("method")
    # a strong shared response to CRISPRi: the training mean is far closer to each target than no change
    assert summary.loc["training_mean", "median_l2"] < 0.95 * summary.loc["no_change", "median_l2"]
