import numpy as np
import pandas as pd
import pytest
import torch

from cellshift.cli import main
from cellshift.data.gene_table import GeneTable
from cellshift.datasets import kang2018_pbmc
from cellshift.models import CellshiftModel, config_from_preset
from cellshift.tasks import GrnSettings, infer_grn
from cellshift.tasks.grn_inference import embedding_edges
from cellshift.tasks.grn_scoring import Reference, candidate_pairs, load_reference, score_edges

GENES = [f"G{i}" for i in range(30)]
TFS = ["G0", "G1", "G2"]


@pytest.fixture(scope="module")
def planted():
    edges = pd.DataFrame(
        {"tf": ["G0"] * 5 + ["G1"] * 3 + ["G2"] * 4, "target": GENES[3:8] + GENES[10:13] + GENES[20:24]}
    )
    return Reference("planted", edges)


@pytest.fixture(scope="module")
def kang():
    return kang2018_pbmc()[:80].copy()


def tiny_model(cells, **options):
    table = GeneTable.from_medians(pd.Series(np.linspace(0.5, 5, cells.n_vars), index=cells.var_names), name="kang")
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table, **options))
    model.gene_table = table
    return model


def test_scoring_a_planted_network_gives_auroc_one(planted):
    candidates = candidate_pairs(TFS, GENES, planted)
    assert len(candidates) == 3 * 29 and candidates["true"].sum() == 12
    perfect = candidates.assign(score=candidates["true"].astype(float))
    scores = score_edges(perfect, candidates)
    assert scores.summary["auroc"] == 1.0 and scores.summary["auprc"] == 1.0
    assert scores.summary["epr"] == pytest.approx(len(candidates) / 12)
    assert (scores.per_tf["auroc"] == 1.0).all() and len(scores.per_tf) == 3
    reversed_scores = score_edges(candidates.assign(score=-candidates["true"].astype(float)), candidates)
    assert reversed_scores.summary["auroc"] == 0.0 and reversed_scores.summary["epr"] == 0.0


def test_a_planted_embedding_recovers_its_network(planted):
    rng = np.random.default_rng(0)
    vectors = pd.DataFrame(rng.normal(0, 0.01, (30, 3)), index=GENES)
    for k, tf in enumerate(TFS):  # each TF and its targets share one direction
        members = [tf, *planted.edges.loc[planted.edges["tf"] == tf, "target"]]
        vectors.loc[members, k] += 1.0
    scores = score_edges(embedding_edges(vectors, TFS), candidate_pairs(TFS, GENES, planted))
    assert scores.summary["auroc"] == 1.0


def test_unscored_pairs_rank_last_and_a_network_without_data_tfs_is_refused(planted):
    candidates = candidate_pairs(TFS, GENES, planted)
    partial = candidates[candidates["tf"] == "G0"].assign(score=1.0)
    assert score_edges(partial, candidates).summary["n_scored"] == 29
    with pytest.raises(ValueError, match="no TF of the data"):
        candidate_pairs(["G9"], GENES, planted)


def test_reference_files_and_bundled_networks(tmp_path):
    path = tmp_path / "net.csv"
    pd.DataFrame({"tf": ["STAT1", "STAT1"], "target": ["IRF1", "STAT1"]}).to_csv(path, index=False)
    assert load_reference(path).edges.to_dict("records") == [{"tf": "STAT1", "target": "IRF1"}]
    assert load_reference("dorothea", confidence="A").name == "dorothea_A"
    pd.DataFrame({"source": ["A"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="tf,target"):
        load_reference(tmp_path / "bad.csv")


def test_grn_table_flags_the_circular_prior(kang):
    methods = ("model", "deletion", "correlation", "random", "grn")
    settings = GrnSettings(methods=methods, max_cells=40, n_components=8, max_tfs=2, deletion_cells=3)
    result = infer_grn(kang, tiny_model(kang), settings=settings, device="cpu", progress=False)
    metrics = result.metrics.set_index(["method", "reference"])
    assert len(metrics) == 10 and metrics["circular"].sum() == 2
    assert metrics.loc[("grn", "trrust"), "circular"] and not metrics.loc[("model", "trrust"), "circular"]
    assert metrics["auroc"].between(0, 1).all() and (metrics["n_candidates"].nunique() == 2)
    assert set(result.edges["method"]) == set(methods)
    deletion = result.edges[result.edges["method"] == "deletion"]
    assert deletion["tf"].nunique() <= 2 and (deletion["score"] > -1e-5).all()  # 1 - cos, up to rounding


def test_a_model_trained_with_the_grn_prior_is_not_scored_against_its_networks(kang):
    model = tiny_model(kang, prior_dims={"grn": 4})
    with pytest.raises(ValueError, match="circular"):
        infer_grn(kang, model, settings=GrnSettings(methods=("model",)), device="cpu", progress=False)


def test_command_line_writes_edges_metrics_and_curves(kang, tmp_path):
    tiny_model(kang).save_pretrained(tmp_path / "model")
    kang.write_h5ad(tmp_path / "cells.h5ad")
    argv = ["grn", str(tmp_path / "cells.h5ad"), "--model", str(tmp_path / "model"), "--methods", "correlation,family"]
    assert main([*argv, "--reference", "trrust", "--top-edges", "50", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "edges.csv")) == 100
    assert (tmp_path / "out" / "pr_curves.png").exists()
    assert pd.read_csv(tmp_path / "out" / "metrics.csv")["reference"].tolist() == ["trrust", "trrust"]
