import numpy as np
import pytest

from cellshift import datasets
from cellshift.data import detect_species


def test_papalexi_screen_shows_on_target_knockdown():
    adata = datasets.papalexi2021()
    assert adata.shape == (20729, 299)
    assert (adata.obs["target_gene"] == "non-targeting").sum() == 2386
    per_10k = adata.X.toarray() / adata.X.sum(axis=1).A * 1e4
    stat1 = list(adata.var_names).index("STAT1")
    control = per_10k[(adata.obs["target_gene"] == "non-targeting").to_numpy(), stat1].mean()
    knocked = per_10k[(adata.obs["target_gene"] == "STAT1").to_numpy(), stat1].mean()
    assert knocked < 0.5 * control


def test_pbmc_and_pancreas_corpora():
    pbmc = datasets.kang2018_pbmc(backed=True)
    assert pbmc.n_obs == 8684
    assert set(pbmc.obs["cluster_id"]) == {"B cells", "NK cells", "CD4 T cells", "CD14+ Monocytes"}
    pancreas = datasets.pancreas_mouse()
    assert detect_species(pancreas.var_names) == "mouse"
    assert detect_species(pbmc.var_names) == "human"


def test_gene_sets_hold_known_genes():
    assert {"RPL3", "RPS3", "PCNA"} <= set(datasets.gene_set("essential"))
    assert "PCNA" in datasets.gene_set("cell_cycle_s") and "MKI67" in datasets.gene_set("cell_cycle_g2m")
    assert not set(datasets.gene_set("essential_hart")) & set(datasets.gene_set("nonessential"))
    assert "Pcna" in datasets.gene_set("cell_cycle", species="mouse")
    assert "STAT1" in datasets.gene_set("tf")
    with pytest.raises(ValueError, match="choose from"):
        datasets.gene_set("housekeeping")


def test_networks_and_families():
    trrust = datasets.grn("trrust")
    assert ((trrust["tf"] == "STAT1") & (trrust["target"] == "IRF1")).any()
    assert set(datasets.grn("dorothea_hs")["confidence"]) == set("ABCDE")
    families = datasets.gene_families()
    assert np.isin(["HOXA1", "HOXB1"], families.loc[families["family"].str.contains("HOX"), "symbol"]).all()
