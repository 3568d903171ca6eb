"""A warm process that forks Toil workers (server side; the leader side is toil_single_machine).

Every Toil job is a ``_toil_worker`` process, and ~1 s of each one's life (measured here: 0.9 s
CPU of a 1.0 s wall) goes into importing Toil, cwltool and their dependencies before the job is
even loaded. This server imports them once, then forks a worker per job: the child runs
``toil.worker.main`` exactly as the ``_toil_worker`` script would, in its own session, with the
environment and working directory the leader gives it.

Protocol (one JSON object per line): the leader writes ``{"id", "argv", "env", "cwd"}`` on
stdin; the server answers ``{"id", "pid"}`` when the worker is started (or ``{"id", "error"}``)
and ``{"id", "returncode"}`` when it has ended (negative: killed by that signal, as with
subprocess). EOF on stdin: the server exits, leaving running workers to the leader's cleanup.

The server refuses to run (exit 3) if importing Toil started a thread: forking a threaded
process can deadlock the child, and the leader then starts workers the ordinary way.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys
import threading
import traceback
from typing import Any

NOT_FORKABLE_EXIT = 3
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
CHECKED_IMAGES_ENV = "STELLARFLOW_CHECKED_IMAGES"  # set by `stellarflow run`: refs, space-separated


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _run_worker(argv: list[str], env: dict[str, str], cwd: str) -> int:
    """In the forked child: be ``_toil_worker argv[1:]``."""
    os.setsid()  # its own session and process group, as Toil's Popen(start_new_session=True)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = list(argv)
    from toil.worker import main

    try:
        main(list(argv))
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:  # noqa: BLE001 (the worker's own failure: report it, exit non-zero)
        traceback.print_exc()
        return 1
    return 0


def trust_checked_images() -> list[str]:
    """Put the images ``stellarflow run`` checked into cwltool's cache of images it found.

    Before every container step cwltool runs ``podman inspect IMAGE`` unless the image is in its
    per-process cache, and a worker is a fresh fork whose cache is empty: a podman call on
    every step's critical path. ``stellarflow run`` checks, just before it starts Toil on the
    same host, that every image the workflow names is in local storage, and names them in
    STELLARFLOW_CHECKED_IMAGES; the workers inherit them here.
    Returns what was added (nothing when cwltool no longer has that cache: then it inspects)."""
    refs = os.environ.get(CHECKED_IMAGES_ENV, "").split()
    if not refs:
        return []
    try:
        from cwltool import docker
    except ImportError:
        return []
    cache, lock = getattr(docker, "_IMAGES", None), getattr(docker, "_IMAGES_LOCK", None)
    if not isinstance(cache, set) or lock is None:
        return []
    with lock:
        cache.update(refs)
    return refs


def become_subreaper() -> bool:
    """Orphans of workers become our children, not PID 1's.

    When a worker exits, what it leaves in its process group (cwltool's nodejs, podman helpers)
    is killed by Toil, which then waits until the group is gone, blocking its scheduling thread.
    The dead processes only go once their parent reaps them; under an init that reaps slowly
    (measured here: 1.5-2 s per job) every job held up the next one's start. We reap at once."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def serve() -> int:
    import toil.cwl.cwltoil  # noqa: F401 (what a CWL worker unpickles its job with)
    import toil.worker  # noqa: F401

    try:  # workers copy CWL jobs too (the workflow's job holds every star)
        from toil_batch_system_ruamel_deepcopy.fix import apply
    except ImportError:
        pass
    else:
        apply()
    try:  # workers write the steps' outputs into the job store: link them, do not copy
        from toil_batch_system_filejobstore_link.fix import apply as apply_link
    except ImportError:
        pass
    else:
        apply_link()
    try:  # workers run the containers: cwltool's monitor looks for their end every 50 ms
        from toil_batch_system_cwltool_container_wait.fix import apply as apply_wait
    except ImportError:
        pass
    else:
        apply_wait()
    try:  # workers run the sub-workflows' jobs: each ends by deleting its intermediate files
        from toil_batch_system_cwl_intermediates.fix import apply as apply_gc
    except ImportError:
        pass
    else:
        apply_gc()

    trust_checked_images()

    if threading.active_count() != 1:
        print("stellarflow fork server: importing Toil started threads; not forking",
              file=sys.stderr)
        return NOT_FORKABLE_EXIT

    become_subreaper()
    requests_fd = sys.stdin.fileno()
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the leader decides when workers stop

    sel = selectors.DefaultSelector()
    sel.register(requests_fd, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    children: dict[int, Any] = {}
    pending = b""

    def reply(msg: dict[str, Any]) -> None:
        replies.write(json.dumps(msg) + "\n")

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = children.pop(pid, None)
            if job is not None:  # else an orphan of a worker (see become_subreaper)
                reply({"id": job, "returncode": _returncode(status)})

    def start(req: dict[str, Any]) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                for fd in (wake_r, wake_w, replies.fileno()):
                    os.close(fd)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(2, 1)  # our stdout is the reply pipe; the worker's goes to stderr
                code = _run_worker(req["argv"], req["env"], req["cwd"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if 0 <= code < 256 else 1)
        children[pid] = req["id"]
        reply({"id": req["id"], "pid": pid})

    eof = False
    while not eof:
        for key, _ in sel.select():
            if key.fd == wake_r:
                try:
                    os.read(wake_r, 4096)
                except BlockingIOError:
                    pass
                reap()
                continue
            data = os.read(requests_fd, 65536)
            if not data:
                eof = True
                break
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                req = json.loads(line)
                try:
                    start(req)
                except OSError as exc:  # fork failed (out of memory, pids): say so
                    reply({"id": req["id"], "error": str(exc)})
        reap()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
