import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats

from cellshift.analysis import degs
from cellshift.datasets import papalexi2021

GENES = ["STAT1", "JAK2", "IRF1", "GAPDH", "ACTB", "CD74", "B2M", "PAD"]  # PAD fills each cell up to 1,000 counts


def make_screen(seed=0, var_names=GENES):
    """Control, a STAT1 knock-down that also lowers IRF1, and a perturbation with no effect."""
    rng = np.random.default_rng(seed)
    labels = np.array(["ctrl"] * 120 + ["STAT1"] * 80 + ["MYC"] * 60)
    means = np.full((labels.size, len(var_names)), 5.0)
    means[labels == "STAT1", 0] = 1.0
    means[labels == "STAT1", 2] = 1.5
    counts = rng.poisson(means)
    # Equal library sizes make the normalised values exact multiples of the counts, so ties are
    # the same in float32 (scanpy) and float64 (the reference below).
    counts[:, -1] = 1000 - counts[:, :-1].sum(axis=1)
    obs = pd.DataFrame({"guide": labels, "target": np.where(labels == "ctrl", "none", labels)})
    return ad.AnnData(X=sparse.csr_matrix(counts.astype(np.float32)), obs=obs, var=pd.DataFrame(index=var_names))


def benjamini_hochberg(pvalues):
    order = np.argsort(pvalues)
    ranked = pvalues[order] * pvalues.size / np.arange(1, pvalues.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    result = np.empty_like(adjusted)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def test_wilcoxon_matches_scipy_mannwhitneyu_with_bh():
    adata = make_screen()
    summary, genes = degs(adata, perturbation_key="guide", control="ctrl")
    counts = adata.X.toarray()
    logn = np.log1p(1e4 * counts / counts.sum(axis=1, keepdims=True))
    labels = adata.obs["guide"].to_numpy()
    pvalues = np.array(
        [
            stats.mannwhitneyu(
                logn[labels == "STAT1", g], logn[labels == "ctrl", g], method="asymptotic", use_continuity=False
            ).pvalue
            for g in range(len(GENES))
        ]
    )
    ours = genes[genes["perturbation"] == "STAT1"].set_index("gene").loc[GENES]
    # scanpy sums float32 ranks: p-values far in the tail (1e-28) agree to ~1e-5 relative
    np.testing.assert_allclose(ours["pvalue"], pvalues, rtol=1e-4)
    np.testing.assert_allclose(ours["padj"], benjamini_hochberg(pvalues), rtol=1e-4)
    row = summary.set_index("perturbation").loc["STAT1"]
    assert row["n_cells"] == 80 and row["n_degs"] == int((benjamini_hochberg(pvalues) < 0.05).sum())
    assert summary.set_index("perturbation").loc["MYC", "n_degs"] <= 1


def test_knockdown_from_symbols_ensembl_and_target_column():
    adata = make_screen()
    counts = adata.X.toarray()
    normalized = 1e4 * counts / counts.sum(axis=1, keepdims=True)
    labels = adata.obs["guide"].to_numpy()
    expected = normalized[labels == "STAT1", 0].mean() / normalized[labels == "ctrl", 0].mean()
    summary, _ = degs(adata, perturbation_key="guide", control="ctrl", target_gene_key="target")
    assert summary.set_index("perturbation").loc["STAT1", "knockdown"] == pytest.approx(expected)
    assert np.isnan(summary.set_index("perturbation").loc["MYC", "knockdown"])  # MYC is not measured

    ensembl = make_screen(var_names=["ENSG00000115415"] + [f"ENSG0000000000{i}" for i in range(1, 8)])
    summary, _ = degs(ensembl, perturbation_key="guide", control="ctrl")
    assert summary.set_index("perturbation").loc["STAT1", "knockdown"] == pytest.approx(expected)


def test_anderson_darling_finds_the_same_strong_genes():
    summary, genes = degs(make_screen(), perturbation_key="guide", control="ctrl", method="anderson_darling")
    strong = genes[(genes["perturbation"] == "STAT1") & (genes["padj"] < 0.05)]["gene"]
    assert {"STAT1", "IRF1"} <= set(strong)
    assert list(genes.columns) == ["perturbation", "gene", "logfoldchange", "pvalue", "padj"]
    with pytest.raises(ValueError, match="method must be"):
        degs(make_screen(), perturbation_key="guide", control="ctrl", method="t-test")


def test_papalexi_strong_targets_have_many_degs_and_knockdown():
    """A subset of the screen (3 strong, 5 weak targets, all controls) keeps the test short."""
    adata = papalexi2021()
    strong, weak = ["STAT1", "JAK2", "IFNGR1"], ["ATF2", "CD86", "ETV7", "PDCD1LG2", "CAV1"]
    adata = adata[adata.obs["target_gene"].isin([*strong, *weak, "non-targeting"]).to_numpy()].copy()
    summary, _ = degs(adata, perturbation_key="target_gene", control="non-targeting")
    summary = summary.set_index("perturbation")
    print(summary)
    assert (summary.loc[strong, "n_degs"] >= 50).all()
    assert (summary.loc[weak, "n_degs"] <= 5).all()
    assert (summary.loc[["STAT1", "JAK2"], "knockdown"] < 0.6).all()
    assert np.isnan(summary.loc["IFNGR1", "knockdown"])  # IFNGR1 is not among the 299 measured genes


def test_log_normalised_input_is_refused_with_the_layer_to_use():
    adata = make_screen()
    adata.layers["counts"] = adata.X.copy()
    adata.X = sparse.csr_matrix(np.log1p(1e4 * adata.X.toarray() / adata.X.toarray().sum(axis=1, keepdims=True)))
    with pytest.raises(ValueError, match="looks log-normalised") as info:
        degs(adata, perturbation_key="guide", control="ctrl")
    assert "layer='counts'" in str(info.value)
    summary, _ = degs(adata, perturbation_key="guide", control="ctrl", layer="counts")
    assert summary.set_index("perturbation").loc["STAT1", "n_degs"] >= 2
    with pytest.raises(KeyError, match="layer 'raw' is not in adata.layers"):
        degs(adata, perturbation_key="guide", control="ctrl", layer="raw")
