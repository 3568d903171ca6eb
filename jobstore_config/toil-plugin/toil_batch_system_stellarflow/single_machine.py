"""Toil's single_machine batch system, with costs removed (Toil 9.6.0).

1. **Leader poll.** Toil's leader loop asks the batch system for a finished job with
   ``maxWait=2`` on every turn, even when it still has job updates of its own to process. When a
   job finishes, its finished parents (a CWL sub-workflow, its ResolveIndirect, the scatter) are
   cleaned up one level per turn, so every level of CWL nesting costs 2 s of an idle machine:
   measured here, 12 s between a chunk's last step and the next job, 5-13 s between MSAP stages,
   37 s at the end of a run. On a single machine a poll is a queue read, so waiting at most
   POLL_S per turn costs the leader nothing measurable and removes that latency.
2. **Worker start.** Each job is a ``_toil_worker`` process that spends ~1 s importing Toil and
   cwltool before it loads its job; a run of 240 stars has 26 jobs, most of them on the critical
   path of a chunk or of the run's start and end. Workers are forked instead from a warm server
   (.fork_server) that imported all that once. Each worker is still its own
   process in its own session, with the environment Toil gives it; Toil tracks, kills and reaps
   it as before through a Popen-like handle. If the server cannot start or dies, the jobs it had
   are reported failed (Toil retries them) and workers start the ordinary way from then on.
   ``STELLARFLOW_FORK_WORKERS=0`` turns forking off. The server is also the workers' child
   subreaper, so what they leave behind is reaped at once (see toil_fork_server).
3. **Scheduling thread.** single_machine's thread that starts and reaps jobs turns every 10 ms
   whether or not anything happened: ~3 % of a core over a run. It now waits (at most POLL_S)
   for a job to be issued or a forked worker to end, and is woken at once by either.
4. **End of run.** The leader's service-manager thread turns once a second however idle, and the
   leader waits for its turn to end before it finishes: 1-2 s of an idle machine at the end of
   every run. With this batch system its turn is POLL_S (it only reads a queue per turn; CWL
   workflows start no Toil services). The same holds for two more of the leader's threads,
   which it also waits for when the run ends: the stats-and-logging thread sleeps 0.5 s between
   reads of the job store's logs, and the real-time logging server looks for its shutdown every
   0.5 s (up to 1 s together, measured: 0.5 + 0.7 s). Both now turn every POLL_S (a directory
   listing, a select call).
5. **Updates the leader already holds.** When a job ends, the leader cleans up its finished
   parents one level per turn of its loop, and every turn ends by waiting for the batch system
   (POLL_S, after 1.) even when the leader already has the next level's update in hand: 0.1 s
   per level, 0.3-0.4 s at the end of every run and at each chunk's end. After a turn that left
   updates to process, the wait is skipped (``Leader._process_ready_jobs`` says so to this batch
   system).
6. **Newest job first.** single_machine starts queued jobs in the order they were issued, so a
   run of more chunks than cores moves all of its chunks one step at a time (breadth first):
   every chunk's intermediates are in the job store at once until the last steps, and none of
   them leaves it early. It now starts the jobs Toil marks ``local`` first (the workflow's own
   bookkeeping, meant to run beside the leader: sub-workflow and scatter set-up, gathering
   outputs, a chunk's DeleteIntermediates; each takes well under a second), then the most
   recently issued job: a job issued because its predecessor just ended (the chunk's next step)
   goes before the chunks not yet started, so the chunks run through a few at a time and each
   one's intermediates leave the job store as it ends. The first rule keeps a chunk's
   DeleteIntermediates, issued when the chunk ends, from waiting behind the steps issued after
   it. The work is the same. ``STELLARFLOW_JOB_ORDER=issued`` keeps Toil's order.

Registered under its own name, ``stellarflow_single_machine`` (Toil's ``single_machine`` is left
as it is). Written against Toil 9.6.0 (TESTED_TOIL): under any other Toil version the name is
registered for Toil's own class, with a warning, since the parts changed here may have moved.
Schedulers (Slurm, SGE...) are left alone: there a poll is a ``squeue``/``qstat`` call and a
worker starts on another node.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
from typing import Any

NAME = "stellarflow_single_machine"
TESTED_TOIL = "9.6.0"  # the Toil whose single_machine, leader and service manager this changes
POLL_S = 0.1
FORK_ENV = "STELLARFLOW_FORK_WORKERS"
ORDER_ENV = "STELLARFLOW_JOB_ORDER"  # "newest" (the default) or "issued" (Toil's order)
PREWARM_ENV = "STELLARFLOW_FORK_PREWARM"  # set by `stellarflow run` for single_machine sites
START_TIMEOUT_S = 60.0

log = logging.getLogger(__name__)


class ForkedWorker:
    """What Toil's single_machine needs of a subprocess.Popen, for a worker the server forked.

    The server (not the leader) is the worker's parent and reaps it; it reports the exit status,
    which ``poll``/``wait`` then return."""

    def __init__(self, args: str) -> None:
        self.args = args
        self.pid = 0
        self.returncode: int | None = None
        self.error: str | None = None
        self._started = threading.Event()
        self._ended = threading.Event()

    def _set_pid(self, pid: int) -> None:
        self.pid = pid
        self._started.set()

    def _fail_start(self, error: str) -> None:
        self.error = error
        self._started.set()

    def _set_returncode(self, code: int) -> None:
        self.returncode = code
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None and self.pid:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """Leader side of .fork_server: one warm process, one reply reader."""

    def __init__(self, on_exit: Any = None) -> None:
        self._on_exit = on_exit  # called (no arguments) whenever a worker has ended
        env = {k: v for k, v in os.environ.items() if k != PREWARM_ENV}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "toil_batch_system_stellarflow.fork_server"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True, env=env)
        self._lock = threading.Lock()
        self._next_id = 0
        self._workers: dict[int, ForkedWorker] = {}
        self.alive = True
        self._reader = threading.Thread(target=self._read, name="stellarflow-fork-replies",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self._lock:
                worker = self._workers.get(msg["id"])
                if worker is None:
                    continue
                if "pid" in msg:
                    worker._set_pid(msg["pid"])
                elif "error" in msg:
                    self._workers.pop(msg["id"])
                    worker._fail_start(msg["error"])
                elif "returncode" in msg:
                    self._workers.pop(msg["id"])
                    worker._set_returncode(msg["returncode"])
            if "returncode" in msg and self._on_exit is not None:
                self._on_exit()
        # EOF: the server is gone. Reap it now (Toil's waitid(P_ALL) would otherwise keep
        # seeing it), and fail what it still had: their exit status is lost with it.
        code = self.proc.wait()
        with self._lock:
            self.alive = False
            orphans = list(self._workers.values())
            self._workers.clear()
        if orphans or code != 0:
            log.warning("stellarflow fork server ended (exit %s) with %d worker(s) running; "
                        "they are stopped and reported failed, and workers now start the "
                        "ordinary way", code, len(orphans))
        for worker in orphans:
            if worker.pid:
                try:
                    os.killpg(worker.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                worker._set_returncode(-signal.SIGKILL)
            else:
                worker._fail_start(f"fork server exited with {code}")
        if orphans and self._on_exit is not None:
            self._on_exit()

    def spawn(self, argv: list[str], env: dict[str, str], command: str) -> ForkedWorker | None:
        """Fork a worker; None if the server cannot (the caller then starts it itself)."""
        worker = ForkedWorker(command)
        with self._lock:
            if not self.alive:
                return None
            self._next_id += 1
            job = self._next_id
            self._workers[job] = worker
            request = json.dumps({"id": job, "argv": argv, "env": env, "cwd": os.getcwd()})
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(request.encode() + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._workers.pop(job, None)
                return None
        if not worker._started.wait(START_TIMEOUT_S) or worker.error is not None:
            with self._lock:
                self._workers.pop(job, None)
            log.warning("stellarflow fork server could not start a worker (%s)",
                        worker.error or "no answer")
            return None
        return worker

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)


def worker_argv(command: str) -> list[str] | None:
    """The argv of a ``_toil_worker`` command line, None for any other command."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv or os.path.basename(argv[0]) != "_toil_worker":
        return None
    return argv


class _PopenRouter:
    """Stands in for the ``subprocess`` module inside toil.batchSystems.singleMachine: its one
    ``subprocess.Popen(command, shell=True, env=..., start_new_session=True)`` per job becomes a
    fork from the server when the calling thread's batch system has one and the command is a
    Toil worker. Everything else is the real subprocess module."""

    local = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    def Popen(self, args: Any, *rest: Any, **kw: Any) -> Any:  # noqa: N802 (subprocess's name)
        server: ForkServer | None = getattr(self.local, "server", None)
        if server is not None and isinstance(args, str) and not rest and kw.get("shell") \
                and kw.get("start_new_session"):
            argv = worker_argv(args)
            if argv is not None:
                worker = server.spawn(argv, dict(kw.get("env") or os.environ), args)
                if worker is not None:
                    return worker
        return subprocess.Popen(args, *rest, **kw)


def forking_enabled() -> bool:
    return os.environ.get(FORK_ENV, "1").strip().lower() not in ("0", "no", "false", "off")


class JobOrderQueue:
    """single_machine's queue of jobs to start (what it uses of queue.Queue: put, get_nowait),
    in the order of 6. above: Toil's ``local`` jobs first, then the newest issued. An item is
    Toil's tuple (command, job id, ...); its rank is fixed when it is first put (from
    issueBatchJob, which sets ``next_local``), so a job put back for want of resources keeps it
    and is tried again first."""

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[int, int], int, Any]] = []
        self._rank: dict[int, tuple[int, int]] = {}
        self._issued = itertools.count()
        self._lock = threading.Lock()
        self.next_local = False

    def put(self, item: Any) -> None:
        job_id = item[1]
        with self._lock:
            rank = self._rank.setdefault(job_id, (0 if self.next_local else 1,
                                                  -next(self._issued)))
            heapq.heappush(self._heap, (rank, job_id, item))

    def get_nowait(self) -> Any:
        with self._lock:
            if not self._heap:
                raise queue.Empty
            return heapq.heappop(self._heap)[2]


def newest_first() -> bool:
    """Start the most recently issued job first (see 6. above), unless ORDER_ENV says
    ``issued``."""
    order = os.environ.get(ORDER_ENV, "newest").strip().lower()
    if order not in ("newest", "issued"):
        log.warning("%s=%r: expected newest or issued; using newest", ORDER_ENV, order)
    return order != "issued"


def shorten_service_manager_turn() -> None:
    """toil.serviceManager's thread loops ``with throttle(1.0)``: make each turn POLL_S."""
    from toil import serviceManager
    from toil.lib.throttle import throttle

    if getattr(serviceManager.throttle, "_stellarflow", False):
        return

    def short_throttle(min_interval: float) -> Any:
        return throttle(min(min_interval, POLL_S))

    short_throttle._stellarflow = True  # type: ignore[attr-defined]
    serviceManager.throttle = short_throttle  # type: ignore[assignment]


class _ShortSleeps:
    """A stand-in for the ``time`` module of one Toil module: its sleeps last at most POLL_S."""

    _stellarflow = True

    def __init__(self, real: Any) -> None:
        self._real = real

    def sleep(self, seconds: float) -> None:
        self._real.sleep(min(seconds, POLL_S))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def shorten_end_of_run_waits() -> None:
    """The stats-and-logging thread's sleep and the real-time logging server's poll: POLL_S."""
    import socketserver

    from toil import realtimeLogger, statsAndLogging

    if not getattr(statsAndLogging.time, "_stellarflow", False):
        statsAndLogging.time = _ShortSleeps(statsAndLogging.time)  # type: ignore[assignment]
    if getattr(realtimeLogger.SocketServer, "_stellarflow", False):
        return

    class PromptUDPServer(socketserver.ThreadingUDPServer):
        def serve_forever(self, poll_interval: float = POLL_S) -> None:
            super().serve_forever(min(poll_interval, POLL_S))

    class SocketServerModule:
        _stellarflow = True

        def __getattr__(self, name: str) -> Any:
            return getattr(socketserver, name)

    module = SocketServerModule()
    module.ThreadingUDPServer = PromptUDPServer  # type: ignore[attr-defined]
    realtimeLogger.SocketServer = module  # type: ignore[assignment]


def tell_pending_updates(leader: Any, update_message: type) -> None:
    """Tell the leader's batch system, if it is of this module, whether updates remain."""
    if hasattr(leader.batchSystem, "_stellarflow_updates_pending"):
        leader.batchSystem._stellarflow_updates_pending = (
            leader._messages.count(update_message) > 0)


def skip_wait_when_updates_are_pending() -> None:
    """After ``Leader._process_ready_jobs``, tell a batch system of this module whether the
    leader still holds job updates (then its next poll does not wait)."""
    from toil import leader as leader_module
    from toil.bus import JobUpdatedMessage

    original = leader_module.Leader._process_ready_jobs
    if getattr(original, "_stellarflow", False):
        return

    def process_ready_jobs(self: Any) -> Any:
        result = original(self)
        tell_pending_updates(self, JobUpdatedMessage)
        return result

    process_ready_jobs._stellarflow = True  # type: ignore[attr-defined]
    process_ready_jobs.__wrapped__ = original  # type: ignore[attr-defined]
    leader_module.Leader._process_ready_jobs = process_ready_jobs  # type: ignore[method-assign]


def single_machine_class() -> type:
    from toil.batchSystems import singleMachine
    from toil.batchSystems.singleMachine import SingleMachineBatchSystem

    if not isinstance(singleMachine.subprocess, _PopenRouter):
        singleMachine.subprocess = _PopenRouter()  # type: ignore[assignment]

    class SingleMachineBatchSystemStellarflow(SingleMachineBatchSystem):
        __doc__ = (f"{SingleMachineBatchSystem.__doc__ or ''}\n(stellarflow: short polls, workers "
                   f"forked from a warm server; see {__name__})")

        @classmethod
        def add_options(cls, parser: Any) -> None:
            """None of its own: Toil's single_machine (always registered) adds the options
            this class reads, and Toil asks every registered class for its options."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            shorten_service_manager_turn()  # before the leader starts that thread
            shorten_end_of_run_waits()  # before the leader starts those threads
            skip_wait_when_updates_are_pending()
            self._stellarflow_updates_pending = False
            # Set when there is something for the scheduling thread to do (see
            # _pollForDoneChildrenIn); before super().__init__, which starts that thread.
            self._stellarflow_wake = threading.Event()
            self._stellarflow_fork_server: ForkServer | None = None
            super().__init__(*args, **kwargs)
            # Decided once Toil's init has read debugWorker (which runs jobs in the leader
            # itself); no job is issued before __init__ returns.
            self._stellarflow_forking = forking_enabled() and not self.debugWorker
            self._stellarflow_order = JobOrderQueue() if newest_first() else None
            if self._stellarflow_order is not None:
                # The scheduling thread reads self.inputQueue at every turn; nothing is queued yet.
                self.inputQueue = self._stellarflow_order

        def issueBatchJob(self, command: str, job_desc: Any, *args: Any,  # noqa: N802
                          **kwargs: Any) -> Any:
            order = self._stellarflow_order
            if order is not None:  # Toil's issueBatchJob puts the job in it
                order.next_local = bool(getattr(job_desc, "local", False))
            try:
                job_id = super().issueBatchJob(command, job_desc, *args, **kwargs)
            finally:
                if order is not None:
                    order.next_local = False
            self._stellarflow_wake.set()
            return job_id

        def getUpdatedBatchJob(self, maxWait: int) -> Any:  # noqa: N802 (Toil's name)
            wait = 0 if self._stellarflow_updates_pending else min(maxWait, POLL_S)
            self._stellarflow_updates_pending = False
            return super().getUpdatedBatchJob(wait)  # type: ignore[arg-type]

        def _fork_server(self) -> ForkServer | None:
            """The server workers are forked from: the prewarmed one, else one started now;
            None (Toil starts workers itself) if forking is off or the server is gone."""
            if self._stellarflow_fork_server is None and self._stellarflow_forking:
                server = take_prewarmed(on_exit=self._stellarflow_wake.set)
                if server is None:
                    try:
                        server = ForkServer(on_exit=self._stellarflow_wake.set)
                    except OSError as exc:
                        log.warning("stellarflow fork server did not start (%s); workers start "
                                    "the ordinary way", exc)
                        self._stellarflow_forking = False
                        return None
                self._stellarflow_fork_server = server
            server = self._stellarflow_fork_server
            return server if server is not None and server.alive else None

        def _startChild(self, jobCommand: str, *args: Any, **kwargs: Any) -> Any:  # noqa: N802,N803
            _PopenRouter.local.server = self._fork_server()
            try:
                return super()._startChild(jobCommand, *args, **kwargs)
            finally:
                _PopenRouter.local.server = None

        def _pollForDoneChildrenIn(self, pid_to_popen: dict[int, Any]) -> set[int]:  # noqa: N802
            """Toil's scheduling thread calls this, then sleeps 10 ms, in a loop: measured here,
            3 % of a core spent turning. When nothing has ended, wait up to POLL_S for a job to
            be issued or a forked worker to end (both wake us at once) before answering."""
            ready = self._done_children(pid_to_popen)
            if not ready and not self.shuttingDown.is_set():
                if self._stellarflow_wake.wait(POLL_S):
                    self._stellarflow_wake.clear()
                ready = self._done_children(pid_to_popen)
            return ready

        def _done_children(self, pid_to_popen: dict[int, Any]) -> set[int]:
            forked = {pid for pid, p in pid_to_popen.items() if isinstance(p, ForkedWorker)}
            ready = {pid for pid in forked if pid_to_popen[pid].returncode is not None}
            others = {pid: p for pid, p in pid_to_popen.items() if pid not in forked}
            return ready | (super()._pollForDoneChildrenIn(others) if others else set())

        def shutdown(self) -> None:
            self._stellarflow_wake.set()
            try:
                super().shutdown()
            finally:
                if self._stellarflow_fork_server is not None:
                    self._stellarflow_fork_server.close()

    SingleMachineBatchSystemStellarflow.__module__ = __name__
    return SingleMachineBatchSystemStellarflow


_prewarmed: ForkServer | None = None


def prewarm() -> None:
    """Start the fork server now, when the plugin is loaded (toil-cwl-runner's option parsing),
    so that it imports Toil on the other core while the leader loads the CWL: ~0.7 s off the
    start of a run. Only when asked (PREWARM_ENV=1): the plugin is loaded for every batch
    system, and a server nobody takes ends with the leader (its stdin closes)."""
    global _prewarmed
    if _prewarmed is None and os.environ.get(PREWARM_ENV) == "1" and forking_enabled():
        try:
            _prewarmed = ForkServer()
        except OSError:
            _prewarmed = None


def take_prewarmed(on_exit: Any = None) -> ForkServer | None:
    global _prewarmed
    server, _prewarmed = _prewarmed, None
    if server is not None:
        server._on_exit = on_exit
        if not server.alive:
            return None
    return server


def upstream_class() -> type:
    """Toil's own single_machine, for a Toil this plugin was not written for."""
    from toil.batchSystems.singleMachine import SingleMachineBatchSystem
    from toil.version import baseVersion

    log.warning("%s: Toil %s is not the version this plugin was written for (%s); running "
                "Toil's own single_machine", NAME, baseVersion, TESTED_TOIL)

    class Upstream(SingleMachineBatchSystem):
        @classmethod
        def add_options(cls, parser: Any) -> None:
            """Toil's single_machine, also registered, adds them."""

    Upstream.__name__ = Upstream.__qualname__ = "SingleMachineBatchSystem"
    return Upstream


def register() -> None:
    from toil.batchSystems.registry import add_batch_system_factory
    from toil.version import baseVersion

    if baseVersion != TESTED_TOIL:
        add_batch_system_factory(NAME, upstream_class)
        return
    add_batch_system_factory(NAME, single_machine_class)
    prewarm()
