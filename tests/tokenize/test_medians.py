import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from tests.conftest import make_counts

from cellshift.tokenize import compute_gene_medians


def numpy_nonzero_medians(adata, min_genes):
    counts = adata.X.toarray().astype(np.float64)
    totals = counts.sum(axis=1)
    keep = ((counts > 0).sum(axis=1) >= min_genes) & (totals > 0)
    normalised = counts[keep] / totals[keep, None] * 1e4
    return {gene: np.median(col[col > 0]) for gene, col in zip(adata.var_names, normalised.T) if (col > 0).any()}


@pytest.mark.parametrize("n_bins", [2, 7, 1024])
def test_medians_are_exact_for_odd_and_even_counts(n_bins):
    # few bins put the two middle values of even-sized genes in different bins
    for seed, n_cells in [(0, 31), (1, 40)]:
        adata = make_counts(n_cells=n_cells, seed=seed, density=0.2)
        medians = compute_gene_medians(adata, min_genes=0, n_bins=n_bins, chunk_size=7, progress=False)
        expected = numpy_nonzero_medians(adata, 0)
        assert medians.to_dict() == pytest.approx(expected, rel=1e-12)


def test_medians_on_real_pbmcs_match_numpy(kang_small):
    adata = ad.read_h5ad(kang_small)
    medians = compute_gene_medians(kang_small, min_genes=100, progress=False)
    expected = pd.Series(numpy_nonzero_medians(adata, 100))
    expected.index = [g.split(".")[0] for g in expected.index]
    pd.testing.assert_series_equal(
        medians, expected.sort_index().rename("median").rename_axis("ensembl_id"), rtol=1e-12
    )


def test_medians_reject_non_counts():
    adata = make_counts()
    adata.X = sparse.csr_matrix(np.log1p(adata.X.toarray()))
    with pytest.raises(ValueError, match="log-normalised"):
        compute_gene_medians(adata, min_genes=0, progress=False)
