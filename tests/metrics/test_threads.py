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


def fake_proc(tmp_path, running: int, own_states: list[str]):
    (tmp_path / "self" / "task").mkdir(parents=True)
    (tmp_path / "stat").write_text(f"cpu  1 2 3 4\nprocs_running {running}\nprocs_blocked 0\n")
    for number, state in enumerate(own_states):
        task = tmp_path / "self" / "task" / str(100 + number)
        task.mkdir()
        (task / "stat").write_text(f"{100 + number} (python (worker) x) {state} 1 2 3\n")
    return tmp_path


def test_busy_cpus_are_the_runnable_tasks_of_other_programs(tmp_path):
    proc = fake_proc(tmp_path, running=4, own_states=["R", "S", "R"])  # 2 of ours run, so 2 others
    assert _cpus.busy_cpus_elsewhere(proc) == 2
    assert _cpus.busy_cpus_elsewhere(fake_proc(tmp_path / "quiet", running=1, own_states=["R"])) == 0


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
