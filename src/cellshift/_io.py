"""Atomic file output: write to a hidden temporary file next to the target, then rename.

A reader never sees a half-written file, and a crash leaves the old file (or none) in place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def check_writable(path: str | os.PathLike, overwrite: bool, option: str = "--out") -> Path:
    """Refuse to replace an existing ``path`` unless ``overwrite``, or to write where no file can go; return it.

    The nearest existing folder above ``path`` must be a writable folder (not a file), so a bad
    output path fails before any work rather than after it.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another {option} or pass --overwrite (overwrite=True)")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {path}: {folder} is not a writable folder; choose another {option}")
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it is renamed to ``path``.

    The temporary name keeps ``path``'s suffixes, so writers that choose a format
    (or compression) by suffix behave as they would for ``path`` itself.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-", suffix="".join(path.suffixes))
    os.close(handle)
    temp_path = Path(temp_name)
    try:
        yield temp_path
        os.chmod(temp_path, 0o666 & ~_umask())  # mkstemp makes files private; give them the usual mode
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's file-creation mask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def write_csv_atomic(frame, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a DataFrame as CSV (no index) atomically; refuse to replace a file unless ``overwrite``."""
    path = check_writable(path, overwrite)
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)
    return path
