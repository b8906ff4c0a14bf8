"""How many CPUs other programs leave free: for torch runs of many small ops (torch-free itself).

torch runs a CPU op on its OpenMP threads, which meet at a barrier when the op ends. When another
program keeps a CPU busy, the thread sharing that CPU reaches every barrier late and the others
wait for it, spinning. The distance engine issues thousands of ops per screen (blocks of
distances, null draws), so on 2 CPUs with one busy neighbour a screen took 2.8x longer on 2
threads than on a quiet machine, longer than on 1 thread (``benchmarks/contention.py``). So
before such a run the engine measures how busy the CPUs it may use are and lowers torch's thread
count to the rest for the run (:func:`cellshift.metrics.threads_for_small_ops`).

The measure: over a short window (:data:`WINDOW_SECONDS`), the busy time of the CPUs in this
process's affinity set (Linux's ``/proc/stat``, one line per CPU) less this process's own CPU
time (``/proc/self/stat``), in CPUs' worth. Counting only the CPUs this process may run on keeps
it right on a shared node where a job gets a set of CPUs (another job busy on other CPUs does
not count). Without ``/proc`` (not Linux) the one-minute load average stands in.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

WINDOW_SECONDS = 0.05  # long enough for ~5 clock ticks per CPU at Linux's usual 100 Hz
IDLE_FIELDS = (3, 4)  # idle and iowait among a /proc/stat CPU line's times


def available_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def busy_cpus_elsewhere(proc: Path = Path("/proc"), window: float = WINDOW_SECONDS) -> int:
    """CPUs (of this process's affinity set) kept busy by other programs over the next ``window`` seconds."""
    stat = proc / "stat"
    if not stat.exists():
        return max(0, round(os.getloadavg()[0]) - 1) if hasattr(os, "getloadavg") else 0
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    def ticks() -> tuple[int, int, int]:  # busy and total ticks of our CPUs, our own ticks
        return *cpu_times(stat.read_text(), cpus), own_cpu_ticks((proc / "self" / "stat").read_text())

    before = ticks()
    time.sleep(window)
    busy, total, own = (after - first for after, first in zip(ticks(), before, strict=True))
    return busy_elsewhere(busy, total, own, cpus)


def busy_elsewhere(busy_ticks: int, total_ticks: int, own_ticks: int, cpus: set[int] | None) -> int:
    """CPUs' worth of busy time not spent by this process: ``n (busy - own) / total``, rounded."""
    n_cpus = len(cpus) if cpus is not None else available_cpus()
    if total_ticks <= 0:
        return 0
    return max(0, round(n_cpus * (busy_ticks - own_ticks) / total_ticks))


def free_cpus() -> int:
    """CPUs of this process's affinity that other programs are not keeping busy (at least 1)."""
    return max(1, available_cpus() - busy_cpus_elsewhere())


def cpu_times(stat_text: str, cpus: set[int] | None) -> tuple[int, int]:
    """Busy and total clock ticks summed over the CPUs ``cpus`` (all CPUs when ``None``) of ``/proc/stat``."""
    busy = total = 0
    for line in stat_text.splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or (cpus is not None and int(name[3:]) not in cpus):
            continue
        ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(ticks)
        busy += sum(ticks) - sum(ticks[i] for i in IDLE_FIELDS)
    return busy, total


def own_cpu_ticks(self_stat_text: str) -> int:
    """User + system clock ticks of this process (all its threads) from ``/proc/self/stat``."""
    fields = self_stat_text.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of the whole line
