"""Atomic file output: write to a hidden temporary file next to the target, then rename.

A reader never sees a half-written file, and a crash leaves the old file (or none) in place.
Whole directories (a corpus, a screen run) are written the same way: into a hidden sibling
``.NAME.partial-PID`` (:func:`partial_dir`), swapped into place when complete
(:func:`swap_into_place`); the folders of runs that were killed are removed by the next run
(:func:`remove_stale_partials`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cellshift._pretrained import PACKAGED_MODELS, resolve_model


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


def check_model_dir(path: str | os.PathLike, option: str = "model directory") -> Path:
    """Refuse a ``path`` that is not a saved cellshift model (a directory with ``config.json``); return it.

    ``path`` may also name a model packaged with cellshift (:data:`cellshift._pretrained.PACKAGED_MODELS`).
    """
    path = resolve_model(path)
    if not (path / "config.json").is_file():
        reason = "does not exist" if not path.exists() else "holds no saved model (no config.json)"
        raise FileNotFoundError(
            f"{option} {path} {reason}; give a model directory from `cellshift pretrain` or `cellshift finetune`, "
            f"or a packaged model: {', '.join(PACKAGED_MODELS)}"
        )
    return path


def partial_dir(out: str | os.PathLike) -> Path:
    """The hidden sibling ``.NAME.partial-PID`` that this process writes ``out`` into (created empty)."""
    out = Path(out).absolute()
    remove_stale_partials(out)
    work = out.with_name(f".{out.name}.partial-{os.getpid()}")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return work


def remove_stale_partials(out: str | os.PathLike) -> list[Path]:
    """Remove the ``.NAME.partial-PID`` and ``.NAME.old-PID`` siblings of ``out`` left by processes no longer running.

    Returns
    -------
    list of Path
        The folders removed.
    """
    out = Path(out).absolute()
    if not out.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(partial|old)-(\d+)")
    removed = []
    for sibling in out.parent.iterdir():
        match = pattern.fullmatch(sibling.name)
        if match and sibling.is_dir() and not _is_running(int(match.group(2))):
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling)
    return removed


def _is_running(pid: int) -> bool:
    """Whether a process with this ID runs on this machine (this process counts as not running: its old folders go)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True


def swap_into_place(work: str | os.PathLike, out: str | os.PathLike) -> None:
    """Move the complete directory ``work`` to ``out``, replacing an old ``out`` whole (never merging the two)."""
    work, out = Path(work), Path(out)
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(work, out)
        shutil.rmtree(old)
    else:
        os.replace(work, out)


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
