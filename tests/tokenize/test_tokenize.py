import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from tests.conftest import make_counts

from cellshift.cli import main
from cellshift.data import GeneTable
from cellshift.tokenize import Corpus, load_corpus, rank_value_encode, tokenize


def test_rank_value_encode_breaks_ties_by_token_and_truncates():
    counts = sparse.csr_matrix(np.array([[2.0, 4.0, 2.0, 0.0], [0.0, 1.0, 0.0, 3.0]]))
    cells = rank_value_encode(counts, np.array([8.0, 4.0]), np.ones(4), np.array([5, 6, 7, 9]), max_genes=2)
    assert cells.cell(0)[0].tolist() == [6, 5]  # 4 first; the tie 2 == 2 keeps token order 5 < 7
    assert cells.cell(1)[0].tolist() == [9, 6]
    np.testing.assert_allclose(cells.cell(1)[1], np.log1p([3 / 4 * 1e4, 1 / 4 * 1e4]), rtol=1e-6)


def test_special_tokens_wrap_each_cell(tmp_path):
    corpus = tokenize(
        make_counts(),
        tmp_path / "c",
        gene_table="geneformer-gc95M",
        special_tokens=True,
        values=True,
        max_length=5,
        min_genes=0,
        progress=False,
    )
    for row in corpus.dataset():
        assert row["input_ids"][0] == 2 and row["input_ids"][-1] == 3
        assert row["length"] <= 5 and row["values"][0] == 0.0


def test_duplicated_genes_are_summed(tmp_path):
    adata = make_counts()
    dense = adata.X.toarray()
    # the same gene twice (one ID with a version suffix) vs that gene's counts doubled in one column
    split = ad.AnnData(
        sparse.csr_matrix(np.hstack([dense, dense[:, [0]]])),
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=[*adata.var_names, adata.var_names[0] + ".7"]),
    )
    doubled = dense.copy()
    doubled[:, 0] *= 2
    merged = ad.AnnData(sparse.csr_matrix(doubled), obs=adata.obs.copy(), var=adata.var.copy())
    a = tokenize(split, tmp_path / "a", min_genes=0, values=True, progress=False)
    b = tokenize(merged, tmp_path / "b", min_genes=0, values=True, progress=False)
    assert a.dataset()["input_ids"] == b.dataset()["input_ids"]
    assert a.dataset()["values"] == b.dataset()["values"]
    assert a.metadata["inputs"][0]["n_duplicates_summed"] == 1


def test_obs_n_counts_sets_the_cell_total(tmp_path):
    adata = make_counts(n_cells=5)
    adata.obs["n_counts"] = 1e6
    row = tokenize(adata, tmp_path / "c", min_genes=0, values=True, progress=False).dataset()[0]
    counts = adata.X[0].data
    np.testing.assert_allclose(sorted(row["values"]), sorted(np.log1p(counts / 1e6 * 1e4)), rtol=1e-6)


def test_several_inputs_in_order_with_workers_and_chunks(tmp_path, kang_small, pancreas_path):
    serial = tokenize(
        [kang_small, pancreas_path],
        tmp_path / "one",
        min_genes=100,
        chunk_size=10_000,
        obs_keys=[],
        values=True,
        progress=False,
    )
    parallel = tokenize(
        [kang_small, pancreas_path],
        tmp_path / "two",
        min_genes=100,
        workers=2,
        chunk_size=64,
        shard_size=250,
        values=True,
        progress=False,
    )
    a, b = serial.dataset(), parallel.dataset()
    assert len(parallel.metadata["shards"]) > 1
    assert a["cell_id"] == b["cell_id"] and a["input_ids"] == b["input_ids"] and a["values"] == b["values"]
    assert a["source"][0] == 0 and a["source"][-1] == 1 and a["species"][-1] == "mouse"
    kang_ids = list(ad.read_h5ad(kang_small).obs_names)
    assert a["cell_id"][: serial.metadata["inputs"][0]["kept"]] == [c for c in kang_ids if c in set(a["cell_id"])]


def test_corpus_metadata_and_load(tmp_path, kang_small):
    corpus = tokenize(kang_small, tmp_path / "c", min_genes=300, obs_keys=["cluster_id"], progress=False)
    meta = json.loads((tmp_path / "c" / "cellshift_corpus.json").read_text())
    item = meta["inputs"][0]
    assert item["kept"] + sum(item["dropped"].values()) == 300 and item["dropped"]["too_few_genes"] > 0
    assert meta["gene_table"]["sha256"] == GeneTable.load("geneformer-gc30M").sha256
    assert Corpus.open(tmp_path / "c").gene_table().sha256 == meta["gene_table"]["sha256"]
    rows = load_corpus(tmp_path / "c")
    assert rows.column_names == ["cell_id", "source", "input_ids", "length", "species", "cluster_id"]
    assert len(rows) == corpus.n_cells == item["kept"]


def test_existing_output_is_never_overwritten_silently(tmp_path):
    tokenize(make_counts(), tmp_path / "c", min_genes=0, progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        tokenize(make_counts(), tmp_path / "c", min_genes=0, progress=False)
    tokenize(make_counts(n_cells=3), tmp_path / "c", min_genes=0, overwrite=True, progress=False)
    assert len(load_corpus(tmp_path / "c")) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no partial or old directories left


def _layered(values):
    adata = make_counts()
    adata.layers["counts"] = adata.X.copy()
    adata.X = sparse.csr_matrix(values(adata.X.toarray()))
    return adata


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _layered(np.log1p), "looks log-normalised.*layer='counts'"),
        (lambda: _layered(lambda x: x - x.mean(axis=0)), "looks scaled.*layer='counts'"),
        (lambda: _layered(lambda x: np.where(x > 3, np.nan, x)), "NaN"),
        (lambda: make_counts(genes=["FOO1", "BAR2"]), "cannot tell the species"),
        (lambda: ad.AnnData(sparse.csr_matrix((0, 3)), var=pd.DataFrame(index=["TP53", "ACTB", "GAPDH"])), "empty"),
        (lambda: make_counts(genes=["ENSG00000000000", "ENSG00000000001"]), "no gene of .* is in the vocabulary"),
    ],
)
def test_bad_input_errors_name_the_problem(tmp_path, make, message):
    with pytest.raises(ValueError, match=message):
        tokenize(make(), tmp_path / "c", min_genes=0, progress=False)
    assert not (tmp_path / "c").exists()


def test_more_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="lower min_genes"):
        tokenize(make_counts(), tmp_path / "a", min_genes=500, progress=False)
    with pytest.raises(ValueError, match="no <cls>/<eos>"):
        tokenize(make_counts(), tmp_path / "b", special_tokens=True, progress=False)
    with pytest.raises(KeyError, match="obs keys"):
        tokenize(make_counts(), tmp_path / "c", obs_keys=["cell_type"], min_genes=0, progress=False)
    with pytest.raises(KeyError, match="layer 'counts' not found"):
        tokenize(make_counts(), tmp_path / "d", layer="counts", progress=False)


def test_many_unknown_genes_warn_with_counts(tmp_path):
    adata = make_counts(genes=["ENSG00000141510", "ENSG00000012048", "ENSG00000000000", "ENSG00000000001"])
    with pytest.warns(UserWarning, match="2 of 4 genes"):
        tokenize(adata, tmp_path / "c", min_genes=0, progress=False)


def test_cli_tokenize_and_medians(tmp_path, kang_small, capsys):
    assert main(["medians", str(kang_small), "--out", str(tmp_path / "t.tsv.gz"), "--min-genes", "100", "--quiet"]) == 0
    assert (
        main(
            [
                "tokenize",
                str(kang_small),
                "--out",
                str(tmp_path / "c"),
                "--gene-table",
                str(tmp_path / "t.tsv.gz"),
                "--special-tokens",
                "--obs-keys",
                "cluster_id",
                "--min-genes",
                "100",
                "--quiet",
            ]
        )
        == 0
    )
    assert "cells kept" in capsys.readouterr().out
    rows = load_corpus(tmp_path / "c")
    assert rows[0]["input_ids"][0] == 2 and "cluster_id" in rows.column_names
    assert main(["tokenize", str(kang_small), "--out", str(tmp_path / "c"), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("max_genes", [1, 3, 50])
def test_rank_value_encode_matches_a_per_cell_sort_with_many_ties_and_empty_cells(max_genes):
    rng = np.random.default_rng(3)
    dense = rng.integers(0, 4, size=(60, 30)).astype(np.float64)  # small integers: many equal scores
    dense[[5, 17]] = 0  # empty cells
    counts = sparse.csr_matrix(dense)
    medians = rng.choice([1.0, 2.0], size=30)
    tokens = rng.permutation(np.arange(100, 130))  # token order differs from column order
    totals = np.maximum(dense.sum(axis=1), 1)
    cells = rank_value_encode(counts, totals, medians, tokens, max_genes=max_genes)
    for i in range(60):
        expressed = np.flatnonzero(dense[i])
        score = dense[i, expressed] / totals[i] * 1e4 / medians[expressed]
        expected = sorted(zip(-score, tokens[expressed]))[:max_genes]
        assert cells.cell(i)[0].tolist() == [t for _, t in expected]
