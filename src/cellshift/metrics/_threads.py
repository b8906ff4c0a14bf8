"""torch's CPU threads for a run of many small ops: no more than other programs leave free (:mod:`cellshift._cpus`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from cellshift._cpus import free_cpus


@contextmanager
def threads_for_small_ops() -> Iterator[int]:
    """Run the block with torch's CPU threads lowered to the CPUs other programs leave free; yield the count.

    Never raises the count (a count set with ``torch.set_num_threads`` is an upper bound) and
    restores it afterwards. On 2 CPUs with one busy neighbour a screen then runs on 1 thread,
    2-4x faster than on 2 (see :mod:`cellshift._cpus`).
    """
    before = torch.get_num_threads()
    threads = min(before, free_cpus()) if before > 1 else 1  # one thread: nothing to measure
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
