"""Cancel one manifest (a WES run): the ledger first, then the processes of its Toil run.

The ledger change comes first, in one transaction, so that the service (in this process or
another) never reads the killed attempt as an interruption to retry: it only settles runs still
``running``. A Toil run shared with other manifests (micro-batching) is ended too, and those
manifests go back to ``queued`` to run again without it; nothing else is touched.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from .ledger import Ledger, now

FINAL = ("done", "failed", "canceled")


class NotCancelable(Exception):
    """The manifest already ended (done or failed)."""


def run_processes(run_dir: Path, runner_pid: int | None) -> list:
    """The attempt's runner and everything it started: its session (the daemon starts each
    attempt in a new session) plus any process naming the run folder (Toil workers that left it)."""
    import psutil

    marker = str(run_dir) + "/"
    found = {}
    try:  # a pid is only trusted while it is still this run's runner (pids are reused)
        if runner_pid is not None and str(run_dir) not in psutil.Process(runner_pid).cmdline():
            runner_pid = None
    except psutil.Error:
        runner_pid = None
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.pid == os.getpid():
                continue
            in_session = runner_pid is not None and os.getsid(p.pid) == runner_pid
            cmd = p.info["cmdline"] or ()
            names_run = any(marker in a or a == str(run_dir) for a in cmd)
            if in_session or names_run:
                found[p.pid] = p
        except (psutil.Error, ProcessLookupError, PermissionError, TypeError):
            continue
    return list(found.values())


def kill_run(run_dir: Path, runner_pid: int | None) -> int:
    import psutil

    victims = run_processes(run_dir, runner_pid)
    for p in victims:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=10)
    return len(victims)


def cancel(ledger: Ledger, manifest_id: int) -> str:
    """Cancel; returns the manifest's state before. Raises KeyError (unknown id), NotCancelable."""
    with ledger.tx() as db:
        m = db.execute("SELECT * FROM manifests WHERE id=?", (manifest_id,)).fetchone()
        if m is None:
            raise KeyError(manifest_id)
        before = m["state"]
        if before == "canceled":
            return before
        if before in FINAL or (before == "finalizing" and m["outcome"] is not None):
            raise NotCancelable(f"run {manifest_id} already ended ({m['outcome'] or before})")
        t = now()
        db.execute("UPDATE manifests SET state='canceled', outcome='canceled', finished_at=?, "
                   "reason=? WHERE id=?", (t, f"canceled at {t:.0f} (WES CancelRun)", manifest_id))
        run = None
        if m["run_id"] is not None and before == "running":
            run = db.execute("SELECT * FROM runs WHERE id=?", (m["run_id"],)).fetchone()
        if run is not None and run["state"] in ("pending", "running"):
            db.execute("UPDATE runs SET state='canceled', ended_at=?, error=? WHERE id=?",
                       (t, f"canceled with manifest {manifest_id}", run["id"]))
            # the others in the same Toil run start again without it
            db.execute("UPDATE manifests SET state='queued', run_id=NULL, started_at=NULL "
                       "WHERE run_id=? AND state='running'", (run["id"],))
            att = db.execute("SELECT pid FROM attempts WHERE run_id=? ORDER BY n DESC LIMIT 1",
                             (run["id"],)).fetchone()
            db.execute("UPDATE attempts SET outcome='canceled', ended_at=? WHERE run_id=? AND "
                       "ended_at IS NULL", (t, run["id"]))
        else:
            run = att = None
    if run is not None and run["run_dir"]:
        kill_run(Path(run["run_dir"]), att["pid"] if att else None)
    return before
