"""How many CPUs other programs leave free: for torch runs of many small ops (torch-free itself).

torch runs a CPU op on its OpenMP threads, which meet at a barrier when the op ends. When another
program keeps a CPU busy, the thread sharing that CPU reaches every barrier late and the others
wait for it, spinning. The distance engine issues thousands of ops per screen (blocks of
distances, null draws), so on 2 CPUs with one busy neighbour a screen took 2-4x longer on 2
threads than on 1, while on an idle machine 2 threads were ~1.9x faster than 1
(``benchmarks/contention.py``). So before such a run the engine counts the CPUs busy with other
programs and lowers torch's thread count to the rest for the run
(:func:`cellshift.metrics.threads_for_small_ops`). Counting reads Linux's ``/proc``; elsewhere
the one-minute load average stands in.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SAMPLES = 3  # the busy count is the least of this many looks...
SAMPLE_GAP_SECONDS = 0.005  # ...this far apart (a runnable task briefly waiting is not busy)


def available_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def busy_cpus_elsewhere(proc: Path = Path("/proc")) -> int:
    """CPUs kept busy by other programs now: runnable tasks of the machine less this process's own.

    The least of :data:`SAMPLES` looks. Without ``/proc`` (not Linux): the one-minute load average,
    less one for this process.
    """
    stat = proc / "stat"
    if not stat.exists():
        return max(0, round(os.getloadavg()[0]) - 1) if hasattr(os, "getloadavg") else 0
    looks = []
    for look in range(SAMPLES):
        if look:
            time.sleep(SAMPLE_GAP_SECONDS)
        looks.append(max(0, _running_tasks(stat) - _own_running_threads(proc / "self" / "task")))
    return min(looks)


def free_cpus() -> int:
    """CPUs of this process's affinity that other programs are not keeping busy (at least 1)."""
    return max(1, available_cpus() - busy_cpus_elsewhere())


def _running_tasks(stat: Path) -> int:
    for line in stat.read_text().splitlines():
        if line.startswith("procs_running "):
            return int(line.split()[1])
    return 0


def _own_running_threads(tasks: Path) -> int:
    running = 0
    for task in tasks.iterdir():
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # the thread ended while we looked
            continue
        running += state == "R"
    return running
