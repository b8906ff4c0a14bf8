"""Facts about the machine and the code a benchmark ran on, recorded beside its results."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import psutil

REPOSITORY = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` ("" where there is none)."""
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return ""
    names = [line.split(":", 1)[1].strip() for line in info.read_text().splitlines() if line.startswith("model name")]
    return names[0] if names else ""


def machine_info(packages: tuple[str, ...], **extra: object) -> dict:
    """CPUs, memory, platform, Python, the versions of ``packages`` and any ``extra`` facts."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "platform": platform.platform(),
        "python": platform.python_version(),
        **extra,
        **{name: version(name) for name in packages},
    }


def git_state() -> dict:
    """The commit benchmarked and the files under ``src/`` that differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPOSITORY, capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else ""

    return {
        "git_commit": git("rev-parse", "HEAD").strip(),
        "src_uncommitted_files": git("status", "--porcelain", "--", "src").splitlines(),
    }
