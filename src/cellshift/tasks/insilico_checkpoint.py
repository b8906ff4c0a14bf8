"""Resumable in-silico runs: each chunk of perturbations is written to a folder as soon as it is done.

The folder holds ``run.json`` (a fingerprint of the run: settings, cells, perturbations, model)
and three CSV files per finished chunk. A run started again with the same folder and the same
fingerprint reads the finished chunks and computes only the others; a different run is refused,
so a folder never mixes two experiments.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from cellshift._io import write_csv_atomic, write_text_atomic
from cellshift.tasks.insilico_run import RunOutput

FINGERPRINT_FILE = "run.json"
PARTS = ("per_cell", "directions", "affected")


class ChunkStore:
    """Finished chunks of one run in ``folder`` (``None``: keep nothing).

    Parameters
    ----------
    folder
        Where chunks are written; created when missing.
    fingerprint
        What identifies the run (JSON-serialisable).
    """

    def __init__(self, folder: str | os.PathLike | None, fingerprint: dict):
        self.folder = None if folder is None else Path(folder)
        if self.folder is None:
            return
        text = json.dumps(fingerprint, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()
        manifest = self.folder / FINGERPRINT_FILE
        if manifest.exists():
            saved = json.loads(manifest.read_text())["sha256"]
            if saved != digest:
                raise ValueError(
                    f"{self.folder} holds chunks of another in-silico run (other settings, cells, genes or model); "
                    "choose a new checkpoint folder or delete it"
                )
        else:
            write_text_atomic(manifest, json.dumps({"sha256": digest, "run": json.loads(text)}, indent=1))

    def load(self, chunk: int) -> RunOutput | None:
        """The saved output of ``chunk``, or ``None`` when it was not finished."""
        if self.folder is None or not self._path(chunk, "per_cell").exists():
            return None
        tables = {}
        for part in PARTS:
            path = self._path(chunk, part)
            tables[part] = pd.read_csv(path, float_precision="round_trip") if path.exists() else None
        return RunOutput(tables["per_cell"], tables["directions"], tables["affected"])

    def save(self, chunk: int, output: RunOutput) -> None:
        """Write a finished chunk (its ``per_cell`` table last: it marks the chunk as done)."""
        if self.folder is None:
            return
        for part in reversed(PARTS):
            table = getattr(output, part)
            if table is not None:
                write_csv_atomic(table, self._path(chunk, part), overwrite=True)

    def _path(self, chunk: int, part: str) -> Path:
        return self.folder / f"chunk-{chunk:05d}.{part}.csv"
