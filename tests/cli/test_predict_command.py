import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cellshift import datasets
from cellshift.cli import main


@pytest.fixture(scope="module")
def papalexi_subset(tmp_path_factory):
    """Papalexi control cells and eight targets (strong and weak knock-outs), at most 80 cells each."""
    adata = datasets.papalexi2021()
    rng = np.random.default_rng(0)
    keep = list(rng.choice(np.flatnonzero(adata.obs["target_gene"] == "non-targeting"), size=500, replace=False))
    for target in ["STAT1", "JAK2", "IFNGR2", "IRF1", "CAV1", "MYC", "STAT3", "NFKBIA"]:
        cells = np.flatnonzero(adata.obs["target_gene"] == target)
        keep.extend(rng.choice(cells, size=min(80, len(cells)), replace=False))
    path = tmp_path_factory.mktemp("predict") / "screen.h5ad"
    adata[np.sort(keep)].copy().write_h5ad(path)
    return path


@pytest.mark.slow
def test_predict_benchmark_from_cells_writes_tables_and_figures(tmp_path, papalexi_subset, capsys):
    out = tmp_path / "bench"
    args = ["predict-benchmark", str(papalexi_subset), "--perturbation-key", "target_gene"]
    args += ["--control", "non-targeting", "--batch-key", "bio_rep", "--embeddings", "pca,grn,random"]
    args += ["--splits", "2", "--n-bootstrap", "3", "--n-components", "8", "--out", str(out)]
    assert main(args) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["split", "method", "perturbation", "fallback", "metric", "value"]
    expected = {"no_change", "training_mean", "linear", "pca", "grn", "random", "experimental_error"}
    assert set(scores["method"]) == expected
    assert set(scores["metric"]) == {"l2", "pearson", "mse"}
    assert len(scores) == 8 * len(expected) * 3  # every target once (2 splits) per method and metric
    summary = pd.read_csv(out / "summary.csv").set_index("method")
    l2 = scores[scores["metric"] == "l2"].groupby("method")["value"].median()
    np.testing.assert_allclose(summary.loc[l2.index, "median_l2"], l2)
    coverage = pd.read_csv(out / "coverage.csv").set_index("method")["n_covered"]
    measured = {"STAT1", "JAK2", "IFNGR2", "STAT3", "NFKBIA"}  # targets in the 299-gene panel
    assert coverage["pca"] == len(measured) == coverage["linear"]
    assert json.loads((out / "settings.json").read_text())["n_perturbations"] == 8
    for figure in ["l2_boxplot.png", "rank_plot.png"]:
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "median_l2" in capsys.readouterr().out
    assert main(args) == 2  # never replaced without --overwrite
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_predict_benchmark_from_deltas_masks_clipped_values(tmp_path, capsys):
    rng = np.random.default_rng(0)
    genes = ["STAT1", "STAT2", "STAT3", "IRF1", "IRF7", "JAK1", "JAK2", "MYC", "SPI1", "TP53", "GATA1", "CEBPA"]
    values = rng.normal(size=(10, len(genes))) + rng.normal(size=len(genes))
    values[0, 3] = 10.0
    values[4, 1] = -10.0
    deltas = ad.AnnData(values, obs=pd.DataFrame(index=genes[:10]), var=pd.DataFrame(index=genes))
    path = tmp_path / "deltas.h5ad"
    deltas.write_h5ad(path)
    out = tmp_path / "bench"
    args = ["predict-benchmark", "--deltas", str(path), "--embeddings", "pca,random", "--splits", "2"]
    assert main([*args, "--n-components", "4", "--out", str(out)]) == 0
    settings = json.loads((out / "settings.json").read_text())
    assert settings["n_masked"] == 2 and settings["n_bootstrap"] == 0
    scores = pd.read_csv(out / "scores.csv")
    assert "experimental_error" not in set(scores["method"])
    zero = scores[(scores["method"] == "no_change") & (scores["metric"] == "l2")].set_index("perturbation")["value"]
    masked = np.where(np.abs(values) >= 10, 0.0, values)
    np.testing.assert_allclose(zero.loc[genes[:10]], np.linalg.norm(masked, axis=1))  # masked genes left out


def test_predict_benchmark_errors_say_what_to_give(tmp_path, papalexi_subset, capsys):
    assert main(["predict-benchmark", "--out", str(tmp_path / "x")]) == 2
    assert "either IN.h5ad" in capsys.readouterr().err
    assert main(["predict-benchmark", str(papalexi_subset), "--out", str(tmp_path / "x")]) == 2
    assert "--perturbation-key and --control" in capsys.readouterr().err
    bad = ["predict-benchmark", str(papalexi_subset), "--perturbation-key", "target_gene", "--control", "NT"]
    assert main([*bad, "--out", str(tmp_path / "x")]) == 2
    assert "control label 'NT'" in capsys.readouterr().err
