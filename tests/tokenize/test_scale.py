"""Corpus-scale tokenising: compiled kernel == numpy path, parallel shards, dead workers, bounded batches, Ray."""

import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest
from scipy import sparse

from cellshift.tokenize import arrow, compute_gene_medians, load_corpus, rank_value_encode, tokenize
from cellshift.tokenize.kernel import HAVE_NUMBA
from cellshift.tokenize.pool import CELLS_PER_AUTO_WORKER, available_cpus, resolve_workers

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")


def assert_same_cells(a, b):
    assert np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.input_ids, b.input_ids)
    assert (a.values is None and b.values is None) or np.array_equal(a.values, b.values)


@needs_numba
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_genes", [1, 7, 2048])
def test_kernel_equals_numpy_on_random_cells_with_many_ties(seed, max_genes):
    rng = np.random.default_rng(seed)
    dense = rng.integers(0, 4, size=(80, 300)).astype(np.float64) * (rng.random((80, 300)) < 0.5)
    dense[3] = 0  # an empty cell
    dense[4] = 2.0  # one cell of 300 equal scores: a bucket too large for insertion sort
    medians = rng.choice([0.5, 1.0, 2.0], size=300)
    medians[:150] = 1.0  # many equal medians: many equal scores
    tokens = rng.permutation(np.arange(1000, 1300))  # token order differs from column order
    counts = sparse.csr_matrix(dense)
    totals = np.maximum(dense.sum(axis=1), 1)
    for with_values in (True, False):
        options = dict(max_genes=max_genes, with_values=with_values)
        compiled = rank_value_encode(counts, totals, medians, tokens, kernel="numba", **options)
        vectorised = rank_value_encode(counts, totals, medians, tokens, kernel="numpy", **options)
        assert_same_cells(compiled, vectorised)
    for i in (4, 10):  # the documented order: score descending, then token ascending
        expressed = np.flatnonzero(dense[i])
        score = dense[i, expressed] / totals[i] * 1e4 / medians[expressed]
        expected = [t for _, t in sorted(zip(-score, tokens[expressed]))][:max_genes]
        assert compiled.cell(i)[0].tolist() == expected


@needs_numba
@pytest.mark.parametrize("case", ["kang2018_pbmc", "pancreas_mouse", "papalexi2021"])
def test_kernel_equals_numpy_on_real_corpora(tmp_path, case):
    from cellshift.datasets import bundled_corpora

    path = bundled_corpora()[case]
    options = dict(min_genes=0, values=True, max_length=512, progress=False)
    compiled = load_corpus(tokenize(path, tmp_path / "numba", kernel="numba", **options).path)
    vectorised = load_corpus(tokenize(path, tmp_path / "numpy", kernel="numpy", **options).path)
    for column in ("cell_id", "input_ids", "values", "length"):
        assert compiled.data.table.column(column).equals(vectorised.data.table.column(column)), column


def test_without_numba_auto_uses_numpy_and_numba_is_refused(monkeypatch):
    from cellshift.tokenize import kernel, rank

    counts = sparse.csr_matrix(np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 1.0]]))
    args = (counts, np.array([3.0, 4.0]), np.ones(3), np.array([4, 5, 6]))
    expected = rank_value_encode(*args, max_genes=5, kernel="numpy")
    monkeypatch.setattr(rank, "HAVE_NUMBA", False)
    monkeypatch.setattr(kernel, "HAVE_NUMBA", False)
    assert_same_cells(rank_value_encode(*args, max_genes=5), expected)
    with pytest.raises(RuntimeError, match="numba is not installed"):
        rank_value_encode(*args, max_genes=5, kernel="numba")


def test_workers_write_shards_in_input_order_without_values(tmp_path, kang_small):
    one = tokenize(kang_small, tmp_path / "one", min_genes=100, progress=False)
    two = tokenize(kang_small, tmp_path / "two", min_genes=100, workers=2, chunk_size=50, progress=False)
    assert len(two.metadata["shards"]) > 1 and "values" not in two.metadata["columns"]
    a, b = one.dataset(), two.dataset()
    assert "values" not in a.column_names
    assert a["cell_id"] == b["cell_id"] and a["input_ids"] == b["input_ids"]


def test_auto_workers_scale_with_cells_and_cpus():
    assert resolve_workers("auto", 1_000) == 1
    assert resolve_workers("auto", 100 * CELLS_PER_AUTO_WORKER) == available_cpus()
    with pytest.raises(ValueError, match="auto"):
        resolve_workers(0, 1_000)


def test_unguarded_script_with_workers_fails_clearly_instead_of_hanging(tmp_path, kang_small):
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from cellshift.tokenize import tokenize

            tokenize({str(kang_small)!r}, {str(tmp_path / "c")!r}, min_genes=100, workers=2, progress=False)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr
    assert not (tmp_path / "c").exists() and [p.name for p in tmp_path.iterdir()] == ["unguarded.py"]


def test_record_batches_stay_under_the_token_bound(tmp_path, monkeypatch, kang_small):
    reference = tokenize(kang_small, tmp_path / "a", min_genes=100, max_length=64, progress=False)
    monkeypatch.setattr(arrow, "MAX_BATCH_TOKENS", 200)  # stands in for Arrow's 2**31 elements
    bounded = tokenize(kang_small, tmp_path / "b", min_genes=100, max_length=64, progress=False)
    with pa.OSFile(str(bounded.path / bounded.metadata["shards"][0]["file"])) as source:
        batches = list(pa.ipc.open_stream(source))
    assert len(batches) > 10
    assert all(len(pa.compute.list_flatten(b.column("input_ids"))) <= 200 for b in batches)
    assert reference.dataset()["input_ids"] == bounded.dataset()["input_ids"]


def test_ray_backend_gives_the_local_output(tmp_path, kang_small, pancreas_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        inputs = [kang_small, pancreas_path]
        options = dict(min_genes=100, values=True, chunk_size=100, progress=False)
        local = tokenize(inputs, tmp_path / "local", **options)
        remote = tokenize(inputs, tmp_path / "ray", backend="ray", workers=2, **options)
        medians_local = compute_gene_medians(inputs, min_genes=100, progress=False)
        medians_ray = compute_gene_medians(inputs, min_genes=100, backend="ray", workers=2, progress=False)
    finally:
        ray.shutdown()
    a, b = local.dataset(), remote.dataset()
    assert len(remote.metadata["shards"]) > 1
    assert a["cell_id"] == b["cell_id"] and a["input_ids"] == b["input_ids"] and a["values"] == b["values"]
    assert remote.metadata["inputs"] == local.metadata["inputs"]
    assert medians_ray.equals(medians_local)


def test_medians_with_workers_equal_one_process(kang_small):
    one = compute_gene_medians(kang_small, min_genes=100, progress=False)
    two = compute_gene_medians(kang_small, min_genes=100, workers=2, chunk_size=64, progress=False)
    assert one.equals(two)
