import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from cellshift import datasets
from cellshift.analysis.response import PseudobulkDesign, changes_table, mask_deltas, response_targets


def plain_pseudobulk(counts, labels, batches, control):
    """Per batch: mean log-normalised expression of perturbed minus control cells, averaged with cell weights."""
    x = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
    result, sizes = {}, {}
    for label in sorted(set(labels) - {control}):
        differences, weights = [], []
        for batch in sorted(set(batches)):
            perturbed = (labels == label) & (batches == batch)
            controls = (labels == control) & (batches == batch)
            if perturbed.sum() and controls.sum():
                differences.append(x[perturbed].mean(axis=0) - x[controls].mean(axis=0))
                weights.append(perturbed.sum())
        result[label] = np.average(differences, axis=0, weights=weights)
        sizes[label] = sum(weights)
    return result, sizes


@pytest.fixture(scope="module")
def screen():
    """Three batches; batch c has no control cells; 'C' has only 3 cells."""
    rng = np.random.default_rng(1)
    layout = [("ctrl", "a", 30), ("ctrl", "b", 10), ("A", "a", 5), ("A", "b", 25), ("A", "c", 7), ("B", "a", 12)]
    layout += [("B", "b", 4), ("C", "a", 3)]
    labels = np.concatenate([[label] * n for label, _, n in layout])
    batches = np.concatenate([[batch] * n for _, batch, n in layout])
    rates = rng.gamma(2.0, 2.0, size=(len(labels), 12))
    rates[labels == "A", 0] *= 0.1  # A knocks down gene 0
    counts = rng.poisson(rates).astype(np.float32)
    counts[:, 1] += 1  # every cell has counts
    adata = ad.AnnData(
        sparse.csr_matrix(counts),
        obs=pd.DataFrame({"label": labels, "batch": batches}, index=[f"c{i}" for i in range(len(labels))]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(12)]),
    )
    return adata, counts, labels, batches


def test_pseudobulk_changes_match_a_plain_numpy_computation_per_batch(screen):
    adata, counts, labels, batches = screen
    targets = response_targets(adata, perturbation_key="label", control="ctrl", batch_key="batch", min_cells=1)
    expected, sizes = plain_pseudobulk(counts.astype(np.float64), labels, batches, "ctrl")
    assert list(targets.obs_names) == ["A", "B", "C"]
    for label in ["A", "B", "C"]:
        np.testing.assert_allclose(targets[label].X.ravel(), expected[label], rtol=1e-5, atol=1e-6)
        assert targets.obs.loc[label, "n_cells"] == sizes[label]
    assert targets.obs.loc["A", "n_cells"] == 30  # the 7 cells of batch c (no controls) are dropped ...
    assert targets.uns["response_targets"]["dropped_cells"] == {"A": 7}  # ... and counted
    assert targets["A"].X[0, 0] < -0.5  # the knock-down shows


def test_without_batches_all_cells_form_one_batch_and_small_groups_are_left_out(screen):
    adata, counts, labels, _ = screen
    targets = response_targets(adata, perturbation_key="label", control="ctrl", min_cells=5)
    expected, _ = plain_pseudobulk(counts.astype(np.float64), labels, np.zeros(len(labels)), "ctrl")
    assert list(targets.obs_names) == ["A", "B"]
    assert targets.uns["response_targets"]["too_small"] == {"C": 3}
    np.testing.assert_allclose(targets["A"].X.ravel(), expected["A"], rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError, match="batch key 'lane'"):
        response_targets(adata, perturbation_key="label", control="ctrl", batch_key="lane")


def test_bootstrap_draws_keep_every_group_size_and_stay_within_groups(screen):
    adata, *_ = screen
    design = PseudobulkDesign(adata, perturbation_key="label", control="ctrl", batch_key="batch")
    multiplicity = design.bootstrap_multiplicity(np.random.default_rng(0))
    assert multiplicity.sum() == len(design.group)
    drawn = np.bincount(design.group, weights=multiplicity, minlength=len(design.group_sizes))
    np.testing.assert_array_equal(drawn, design.group_sizes)
    assert (multiplicity != 1).any()  # a real resample, not the identity
    np.testing.assert_allclose(design.changes(np.ones(len(design.group))), design.changes())


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_mask_deltas_hides_clipped_and_non_finite_values():
    values = np.array([[0.5, 10.0, -10.0, np.nan], [np.inf, -9.99, 1.0, 0.0]], dtype=np.float32)
    deltas = ad.AnnData(values, obs=pd.DataFrame(index=["T1", "T2"]), var=pd.DataFrame(index=list("abcd")))
    masked = mask_deltas(deltas, clip=10.0)
    expected = np.isnan([[0.5, np.nan, np.nan, np.nan], [np.nan, -9.99, 1.0, 0.0]])
    np.testing.assert_array_equal(np.isnan(masked.X), expected)
    assert masked.uns["response_targets"]["n_masked"] == 4
    np.testing.assert_allclose(masked.X[1, 1:], [-9.99, 1.0, 0.0], rtol=1e-6)
    assert np.isnan(mask_deltas(deltas, clip=None).X).sum() == 2
    assert np.isfinite(deltas.X).sum() == 6  # the input is untouched
    table = changes_table(masked)
    assert list(table.index) == ["T1", "T2"] and list(table.columns) == list("abcd")
    twice = ad.AnnData(values, obs=pd.DataFrame(index=["T1", "T1"]), var=pd.DataFrame(index=list("abcd")))
    with pytest.raises(ValueError, match="repeat perturbation labels"):
        mask_deltas(twice)


def test_papalexi_changes_show_the_interferon_pathway_knock_outs():
    adata = datasets.papalexi2021()
    targets = response_targets(adata, perturbation_key="target_gene", control="non-targeting", batch_key="bio_rep")
    assert targets.n_obs == 25 and targets.n_vars == 299
    norms = pd.Series(np.linalg.norm(targets.X, axis=1), index=targets.obs_names)
    assert {"STAT1", "JAK2"} <= set(norms.nlargest(5).index)  # IFN-gamma signalling in stimulated THP-1 cells
    assert norms["CAV1"] < norms.median()
    assert targets["STAT1", "STAT1"].X[0, 0] < -0.5  # the knocked-out gene itself goes down
