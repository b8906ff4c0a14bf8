"""Tokens must equal Geneformer's rank-value encoding, computed here independently from the formula."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cellshift.data._tables import FILES
from cellshift.tokenize import tokenize


def read_gc30m():
    table = pd.read_csv(FILES / "gene_tables" / "geneformer-gc30M.tsv.gz", sep="\t", float_precision="round_trip")
    genes = table.dropna(subset=["median"])
    return dict(zip(genes["token"], genes["token_id"])), dict(zip(genes["token"], genes["median"]))


def geneformer_cell(counts, gene_ids, token_of, median_of, max_length):
    """Plain per-cell procedure: normalise to 10k by the cell total, divide by the median, rank."""
    total = counts.sum()
    scored = []
    for count, gene in zip(counts, gene_ids):
        if count > 0 and gene in token_of:
            scored.append((-(count / total * 10_000 / median_of[gene]), token_of[gene], count / total * 10_000))
    scored.sort()  # by score descending; equal scores by token ID, the documented tie rule
    kept = scored[:max_length]
    return [t for _, t, _ in kept], [-s for s, _, _ in kept], [np.log1p(v) for _, _, v in kept]


@pytest.mark.parametrize("max_length", [2048, 100])
def test_tokens_equal_plain_geneformer_on_real_pbmcs(tmp_path, kang_path, max_length):
    adata = ad.read_h5ad(kang_path)
    token_of, median_of = read_gc30m()
    corpus = tokenize(
        kang_path,
        tmp_path / "c",
        gene_table="geneformer-gc30M",
        max_length=max_length,
        min_genes=0,
        values=True,
        progress=False,
    )
    rows = corpus.dataset()
    assert len(rows) == adata.n_obs  # every PBMC has counts, none is dropped with min_genes=0
    dense = adata.X.toarray().astype(np.float64)
    for i in range(0, adata.n_obs, 7):
        tokens, _, values = geneformer_cell(dense[i], adata.var_names, token_of, median_of, max_length)
        row = rows[i]
        assert row["cell_id"] == adata.obs_names[i]
        assert row["input_ids"] == tokens
        np.testing.assert_allclose(row["values"], values, rtol=1e-6)
        assert row["length"] == len(tokens)


def test_mouse_cells_use_one_to_one_human_orthologs(tmp_path, pancreas_path):
    adata = ad.read_h5ad(pancreas_path)[:40].copy()
    token_of, median_of = read_gc30m()
    pairs = pd.read_csv(
        FILES / "genes" / "orthologs" / "ensembl105_human2mouse_symbols.csv", header=None, names=["human", "mouse"]
    ).dropna()
    pairs = pairs[~pairs["human"].duplicated(keep=False) & ~pairs["mouse"].duplicated(keep=False)]
    human_of = dict(zip(pairs["mouse"], pairs["human"]))
    gencode = pd.read_csv(FILES / "genes" / "ids" / "gencode_v44_gene_id2name.csv", header=None).drop_duplicates(1)
    ensembl_of = dict(zip(gencode[1], gencode[0]))
    # renamed genes (Ensembl 105 ortholog names such as DDX58, now RIGI): HGNC symbols and aliases
    hgnc = pd.read_csv(FILES / "genes" / "ids" / "hgnc_biomart_2023_ids_symbols_aliases.tsv", sep="\t").dropna(
        subset=["ensg"]
    )
    alias_rows = pd.concat(
        [hgnc[[c, "ensg"]].set_axis(["alias", "ensg"], axis=1) for c in ("symb", "synonym1", "synonym2")]
    )
    alias_rows = alias_rows.dropna().drop_duplicates()
    alias_rows = alias_rows[~alias_rows["alias"].duplicated(keep=False)]
    for alias, ensg in zip(alias_rows["alias"], alias_rows["ensg"]):
        ensembl_of.setdefault(alias, ensg)
    gene_ids = [ensembl_of.get(human_of.get(g)) for g in adata.var_names]
    corpus = tokenize(adata, tmp_path / "m", min_genes=0, progress=False)
    rows = corpus.dataset()
    assert set(rows["species"]) == {"mouse"}
    dense = adata.X.toarray().astype(np.float64)
    for i in range(adata.n_obs):
        tokens, _, _ = geneformer_cell(dense[i], gene_ids, token_of, median_of, 2048)
        assert rows[i]["input_ids"] == tokens
