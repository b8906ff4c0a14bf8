import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from cellshift.datasets import bundled_corpora


@pytest.fixture(scope="session")
def kang_path():
    return bundled_corpora()["kang2018_pbmc"]


@pytest.fixture(scope="session")
def pancreas_path():
    return bundled_corpora()["pancreas_mouse"]


@pytest.fixture(scope="session")
def kang_small(tmp_path_factory, kang_path):
    """The first 300 Kang PBMCs, written as an .h5ad of their own."""
    adata = ad.read_h5ad(kang_path)[:300].copy()
    path = tmp_path_factory.mktemp("kang") / "kang300.h5ad"
    adata.write_h5ad(path)
    return path


def make_counts(n_cells=40, genes=None, seed=0, density=0.3):
    """A small random raw-count AnnData over the given Ensembl IDs."""
    rng = np.random.default_rng(seed)
    genes = genes or [
        "ENSG00000141510",
        "ENSG00000012048",
        "ENSG00000139618",
        "ENSG00000111640",
        "ENSG00000075624",
        "ENSG00000163631",
        "ENSG00000105974",
        "ENSG00000115414",
    ]
    dense = rng.poisson(3.0, size=(n_cells, len(genes))) * (rng.random((n_cells, len(genes))) < density + 0.5)
    dense[:, 0] += 1
    return ad.AnnData(
        sparse.csr_matrix(dense.astype(np.float32)),
        obs=pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=genes),
    )


@pytest.fixture(scope="session")
def tiny_corpora(tmp_path_factory, kang_small, pancreas_path):
    """Two small real corpora (300 Kang PBMCs, 60 mouse pancreas cells), one gene table, 64 tokens per cell, values."""
    from cellshift.data.gene_table import GeneTable
    from cellshift.tokenize import compute_gene_medians, tokenize

    folder = tmp_path_factory.mktemp("corpora")
    pancreas = ad.read_h5ad(pancreas_path)[:60].copy()
    pancreas_file = folder / "pancreas60.h5ad"
    pancreas.write_h5ad(pancreas_file)
    medians = compute_gene_medians([kang_small, pancreas_file], min_genes=50, progress=False)
    table = GeneTable.from_medians(medians, name="tiny")
    paths = []
    for name, source in (("kang", kang_small), ("pancreas", pancreas_file)):
        corpus = tokenize(
            source, folder / name, gene_table=table, max_length=64, min_genes=50, values=True, progress=False
        )
        paths.append(corpus.path)
    return paths
