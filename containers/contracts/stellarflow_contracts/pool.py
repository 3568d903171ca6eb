"""A chunk's stars spread over worker processes, one star per task.

A module's step gets one core from the engine, but two chunks' steps rarely need the CPUs at the
same moment: one chunk is between steps or importing while the other computes, and the last
chunk of a run computes alone. A step therefore runs its stars in as many worker processes as
the CPUs it may run on (its affinity: what Slurm's task/affinity or cgroups give a job, or what
``stellarflow run`` confines a local run to), and the kernel shares the CPUs between the steps
that run at once. ``STELLARFLOW_STAR_WORKERS=N`` sets the number (1: no worker processes).

A star runs on one thread: the pool is the step's parallelism. numpy's OpenBLAS otherwise starts
a thread per CPU in every process, and its threads spin while they wait for work: with two
workers per step and two steps at once, four times as many BLAS threads as cores, and a star's
CPU time (``cpu_s``) counted their spinning. ``threadpool_limits`` (threadpoolctl) sets one
thread for the pool's life, in this process and the workers it forks.

The workers are forked before the caller opens any HDF5 file (a forked child must not inherit
an open HDF5 file), and each opens its inputs itself, read-only. A star's exception is the
caller's business (it becomes a failed row); a worker that dies (killed, out of memory) breaks
the pool, and the stars it had not returned are done in the calling process, as without workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from threadpoolctl import threadpool_limits

from .errors import InputError

log = logging.getLogger("stellarflow")

ENV_WORKERS = "STELLARFLOW_STAR_WORKERS"
IN_FLIGHT_PER_WORKER = 4  # tasks queued per worker: enough to keep it busy, few results held

# What the forked workers run: set just before they are forked, read after (never pickled).
_task: tuple[Callable[[Any, Any], Any], Callable[[], Any]] | None = None
_worker_state: Any = None


def cpus_available() -> int:
    """The CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def star_workers(n_items: int) -> int:
    """Worker processes for ``n_items`` stars: ``STELLARFLOW_STAR_WORKERS`` or the CPUs
    available, never more than the stars; 1 means the stars run in this process."""
    raw = os.environ.get(ENV_WORKERS, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise InputError(None, f"{ENV_WORKERS} must be a whole number >= 1, got {raw!r}")
    else:
        n = cpus_available()
    return max(1, min(n, n_items))


def _worker_start() -> None:
    # A worker inherits its parent's SIGTERM handler (module_main's, or a service's that only
    # asks to stop): the pool could then not stop a worker, and a broken pool waits forever for
    # the one blocked writing its result. Workers die on SIGTERM.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_task(item: Any) -> Any:
    global _worker_state
    assert _task is not None
    fn, open_state = _task
    if _worker_state is None:
        _worker_state = open_state()
    return fn(_worker_state, item)


class StarPool:
    """``with StarPool(fn, open_state, n) as pool:`` forks the workers on entry (open no HDF5
    file before it); ``pool.map(items, state)`` then yields ``(item, fn(state_of_worker, item))``
    in the order the stars finish. ``open_state()`` runs once in each worker (e.g. opens the
    input files); ``state`` is what this process passes to ``fn`` when it does a star itself."""

    def __init__(self, fn: Callable[[Any, Any], Any], open_state: Callable[[], Any],
                 n_items: int) -> None:
        self.fn = fn
        self.open_state = open_state
        self.workers = star_workers(n_items)
        self._executor: ProcessPoolExecutor | None = None
        self._thread_limits: threadpool_limits | None = None

    def __enter__(self) -> StarPool:
        global _task
        self._thread_limits = threadpool_limits(limits=1)  # before the fork: workers inherit it
        if self.workers > 1:
            _task = (self.fn, self.open_state)
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("fork"),
                initializer=_worker_start)
            # With fork, the first task starts every worker: now, while no file is open here.
            self._executor.submit(os.getpid).result()
        return self

    def __exit__(self, *exc: object) -> None:
        global _task
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        _task = None
        if self._thread_limits is not None:
            self._thread_limits.restore_original_limits()
            self._thread_limits = None

    def map(self, items: Iterable[Any], state: Any) -> Iterator[tuple[Any, Any]]:
        todo = iter(items)
        if self._executor is None:
            for item in todo:
                yield item, self.fn(state, item)
            return
        pending: dict[Future, Any] = {}
        redo: list[Any] = []
        limit = self.workers * IN_FLIGHT_PER_WORKER
        try:
            while True:
                while len(pending) < limit:
                    item = next(todo, _END)
                    if item is _END:
                        break
                    try:
                        pending[self._executor.submit(_run_task, item)] = item
                    except BrokenProcessPool:
                        redo.append(item)
                        raise
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    item = pending.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        redo.append(item)
                        continue
                    yield item, result
                if redo:
                    break
        except BrokenProcessPool:
            pass
        # A worker died: what the pool still holds, and the rest, is done here.
        for fut, item in pending.items():
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                yield item, fut.result()
            else:
                redo.append(item)
        redo.extend(todo)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None
        log.warning("a star worker process died; the %d stars it left run in this process",
                    len(redo))
        for item in redo:
            yield item, self.fn(state, item)


_END = object()
