"""Training checkpoints that resume exactly: weights, optimizer, scheduler, position and RNG states.

A checkpoint is a directory ``checkpoints/step-00000100/`` holding ``model.safetensors``,
``optimizer.pt``, ``scheduler.pt`` (for a run with a learning-rate schedule), ``state.json``
(step, epoch, batches done in the epoch) and one ``rng-rank<r>.pt`` per process (torch CPU and
CUDA generators, numpy, python). It is written under a temporary name and renamed when complete,
so the newest complete checkpoint is always loadable; only the last ``keep_last`` are kept.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

PREFIX = "step-"


def rng_state() -> dict:
    """Random generator states of this process."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    """Restore states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def temporary_checkpoint_dir(folder: Path, step: int) -> Path:
    """Where the processes write a checkpoint before :func:`publish_checkpoint` renames it."""
    return folder / f".{PREFIX}{step:08d}.tmp"


def write_checkpoint_parts(
    temporary: Path, *, model, optimizer, scheduler, state: dict, rank: int, is_main: bool
) -> None:
    """Write this process's share of a checkpoint: the main process all but its RNG, every process its RNG.

    ``scheduler`` is ``None`` for a run without a learning-rate schedule.
    """
    temporary.mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), temporary / f"rng-rank{rank}.pt")
    if is_main:
        weights = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
        save_file(weights, temporary / "model.safetensors")
        torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
        if scheduler is not None:
            torch.save(scheduler.state_dict(), temporary / "scheduler.pt")
        (temporary / "state.json").write_text(json.dumps(state, indent=2))


def publish_checkpoint(temporary: Path, keep_last: int) -> Path:
    """Rename a complete checkpoint into place and delete all but the newest ``keep_last``."""
    final = temporary.with_name(temporary.name.removeprefix(".").removesuffix(".tmp"))
    if final.exists():
        shutil.rmtree(final)
    temporary.rename(final)
    for old in list_checkpoints(final.parent)[:-keep_last]:
        shutil.rmtree(old)
    return final


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def load_checkpoint(path: Path, *, model, optimizer, scheduler, rank: int) -> dict:
    """Restore everything saved in ``path`` into the given objects (``scheduler`` may be ``None``); return the state."""
    model.load_state_dict(load_file(path / "model.safetensors"))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    if scheduler is not None:
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rng_file = path / f"rng-rank{rank}.pt"
    if not rng_file.exists():
        raise FileNotFoundError(f"{path} has no RNG state for process {rank}; resume with the same number of processes")
    set_rng_state(torch.load(rng_file, weights_only=False))
    return json.loads((path / "state.json").read_text())
