"""Run independent tasks in this process, in spawned worker processes, or on a Ray cluster.

Tokenising and computing gene medians are split into tasks that each read a range of cells of one
input file and return a small result (a shard's row count, a histogram); the caller puts results
back in order. The same task function runs on every backend:

* ``local``: one worker runs the tasks in this process; more workers are spawned processes
  (``concurrent.futures.ProcessPoolExecutor``). A worker that dies breaks the pool, which is
  reported as an error naming the likely fix instead of waiting forever. The common cause: a
  script without an ``if __name__ == "__main__":`` guard, which every spawned worker imports
  again, so that the worker tries to start workers of its own and dies. The initializer's
  arguments (gene plans: often more than a pipe's 64 KiB) reach the workers through a file,
  not the start-up pipe: Python writes that pipe while holding its read end open, so a worker
  dying before it read a large start-up message would leave this process blocked on the write.
* ``ray``: Ray's ``multiprocessing``-compatible pool, on the Ray instance ``ray.init`` connected to
  (a local one when none is running). Input files and the output directory must then be on a
  filesystem every Ray node sees.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from cellshift._cpus import available_cpus

BACKENDS = ("local", "ray")
CELLS_PER_AUTO_WORKER = 50_000  # `workers="auto"` starts one worker per this many cells, at most one per CPU
DEAD_WORKER_MESSAGE = (
    "a worker process died before finishing its task. If this ran from a script, start it with "
    '`if __name__ == "__main__":` before calling tokenize (spawned workers import the script '
    "again, and an unguarded call starts workers from inside a worker); otherwise a worker may have "
    "run out of memory: use fewer workers or a smaller chunk_size"
)


def resolve_workers(workers: int | str, n_cells: int) -> int:
    """Number of workers: ``workers`` itself, or for ``"auto"`` one per 50,000 cells, at most one per CPU."""
    if workers == "auto":
        return max(1, min(available_cpus(), n_cells // CELLS_PER_AUTO_WORKER))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer or 'auto', got {workers!r}")
    return workers


def run_tasks(
    function: Callable,
    tasks: Iterable,
    *,
    workers: int,
    backend: str = "local",
    initializer: Callable,
    initargs: tuple,
) -> Iterator:
    """Yield ``function(task)`` for every task, in the order the tasks finish.

    Parameters
    ----------
    function
        A module-level function (it is pickled by reference).
    tasks
        Its arguments, one per call.
    workers
        Worker processes (Ray: pool actors).
    backend
        ``local`` or ``ray``.
    initializer, initargs
        Called once in every worker before its first task (in this process when it runs the tasks).

    Raises
    ------
    RuntimeError
        When a local worker process died.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "ray":
        yield from _run_on_ray(function, tasks, workers, initializer, initargs)
    elif workers == 1:
        initializer(*initargs)
        yield from map(function, tasks)
    else:
        yield from _run_in_processes(function, tasks, workers, initializer, initargs)


def _run_in_processes(function, tasks, workers, initializer, initargs) -> Iterator:
    context = multiprocessing.get_context("spawn")
    folder = tempfile.mkdtemp(prefix="cellshift-workers-")
    start_file = os.path.join(folder, "initializer.pickle")
    with open(start_file, "wb") as file:
        pickle.dump((initializer, initargs), file)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_initialize_from, initargs=(start_file,))
    try:
        pending = {pool.submit(function, task) for task in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                yield future.result()
    except BrokenProcessPool as error:
        raise RuntimeError(DEAD_WORKER_MESSAGE) from error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(folder, ignore_errors=True)


def _initialize_from(start_file: str) -> None:
    """Run the initializer pickled in ``start_file`` (in a new worker)."""
    with open(start_file, "rb") as file:
        initializer, initargs = pickle.load(file)
    initializer(*initargs)


def _run_on_ray(function, tasks, workers, initializer, initargs) -> Iterator:
    try:
        from ray.util.multiprocessing import Pool
    except ImportError as error:
        raise ImportError('backend="ray" needs Ray: pip install "cellshift[ray]"') from error
    with Pool(processes=workers, initializer=initializer, initargs=initargs) as pool:
        yield from pool.imap_unordered(function, list(tasks))
