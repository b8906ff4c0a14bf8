"""The engine's torch threads follow the CPUs other programs leave free."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cellshift import _cpus
from cellshift.analysis import score_perturbations
from cellshift.metrics import _threads, threads_for_small_ops

linux = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="counts runnable tasks in Linux's /proc")


STAT = """cpu  50 0 50 100 0 0 0 0 0 0
cpu0 10 0 10 80 0 0 0 0 0 0
cpu1 40 0 40 20 0 0 0 0 0 0
cpu2 0 0 0 100 0 0 0 0 0 0
intr 1 2 3
"""


def test_cpu_times_count_only_the_cpus_of_the_affinity_set():
    assert _cpus.cpu_times(STAT, {0, 1}) == (100, 200)
    assert _cpus.cpu_times(STAT, {2}) == (0, 100)
    assert _cpus.cpu_times(STAT, None) == (100, 300)


def test_busy_elsewhere_is_busy_time_less_our_own_in_cpus_worth():
    # 2 CPUs over a window of 10 ticks each: 15 busy ticks, 5 of them ours -> one CPU busy elsewhere
    assert _cpus.busy_elsewhere(15, 20, 5, {0, 1}) == 1
    assert _cpus.busy_elsewhere(6, 20, 5, {0, 1}) == 0
    assert _cpus.busy_elsewhere(5, 20, 9, {0, 1}) == 0  # our ticks are counted per thread: never below 0
    assert _cpus.busy_elsewhere(0, 0, 0, {0, 1}) == 0


def test_own_ticks_read_user_and_system_time_past_a_name_with_brackets():
    line = "123 (python (worker) x) R 1 2 3 4 5 6 7 8 9 10 70 30 0 0 20 0 4\n"
    assert _cpus.own_cpu_ticks(line) == 100


@linux
def test_a_busy_neighbour_is_seen():
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert _cpus.busy_cpus_elsewhere() >= 1
    finally:
        neighbour.kill()
        neighbour.wait()


@pytest.mark.parametrize("free", [1, 3])
def test_threads_are_lowered_to_free_cpus_never_raised_and_restored(monkeypatch, free):
    monkeypatch.setattr(_threads, "free_cpus", lambda: free)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads_for_small_ops() as used:
            assert used == torch.get_num_threads() == min(2, free)
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), threads_for_small_ops():
            raise RuntimeError("an error inside the block")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_scores_do_not_depend_on_the_threads_used(monkeypatch, make_screen_adata):
    tables = []
    for free in (1, 2):
        monkeypatch.setattr(_threads, "free_cpus", lambda free=free: free)
        tables.append(
            score_perturbations(
                make_screen_adata,
                embedding="X_emb",
                perturbation_key="perturbation",
                control="control",
                metrics=["edistance"],
                n_null=50,
            )
        )
    np.testing.assert_allclose(tables[0]["edistance"], tables[1]["edistance"], rtol=1e-12)
    assert tables[0]["edistance_pvalue"].equals(tables[1]["edistance_pvalue"])


@pytest.fixture
def make_screen_adata():
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(0)
    labels = np.repeat(["control", "A", "B"], [300, 40, 40])
    Z = rng.normal(size=(len(labels), 8)) + (labels == "A")[:, None] * 0.5
    adata = ad.AnnData(np.zeros((len(labels), 1), dtype=np.float32), obs=pd.DataFrame({"perturbation": labels}))
    adata.obs_names = adata.obs_names.astype(str)
    adata.obsm["X_emb"] = Z
    return adata
