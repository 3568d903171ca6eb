"""The trigger service: intake, micro-batching, runs with retries, crash recovery, finalizing.

One service per state dir (an flock on STATE/trigger.lock; a second `watch`/`scan` on the same
state dir exits at once). The loop is single-threaded; watchdog's observer thread only queues
paths. Runs are separate processes (stellarflow_trigger.runner) so that the service never blocks
and a killed service can adopt, resume (`toil --restart`) or cleanly restart them.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stellarflow.errors import RunError
from stellarflow.run import resolve_chunk_size

from . import CLAIM_PREFIX
from .batch import build, write_json_atomic
from .intake import choose_dest, claim, is_candidate, original_name, register
from .ledger import Ledger, as_dict, dumps, now


def profile_lines(run_dir: Path) -> list[dict[str, Any]]:
    """RUN_DIR/profile.jsonl, one step per line ([] when the run kept none, e.g. with
    STELLARFLOW_PROVENANCE=0); a damaged line is skipped, never fails the run's bookkeeping."""
    path = run_dir / "profile.jsonl"
    out = []
    try:
        text = path.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: a line that is not JSON skipped", path)
    return out

log = logging.getLogger("stellarflow.trigger")

# Manifests that arrived as bytes (WES API, NATS): no file to move, no .reason file to write;
# the ledger row (reason, outputs) is their whole record.
FILELESS_SOURCES = ("api", "nats")


@dataclass
class Config:
    inbox: Path
    state: Path
    outdir: Path | None = None          # default STATE/out
    site: str = "local"
    container: bool = True
    chunk_size: int | None = None       # stars per chunk; None: automatic for the site
    max_stars: int = 500                # stars per Toil run (a bigger manifest runs alone)
    max_wait: float = 2.0               # seconds a manifest may wait for others to join it
    max_runs: int = 2                   # Toil runs at once
    retries: int = 2                    # failed attempts retried (restart, then clean)
    max_interrupts: int = 25            # attempts that died silently (crash, kill -9)
    backoff: float = 5.0                # seconds before the first retry, doubling
    min_age: float = 1.0                # a scan leaves younger files (may be being written)
    poll: float = 15.0                  # watch: rescan for anything inotify missed
    datasets: list[Path] = field(default_factory=list)
    toil_args: list[str] = field(default_factory=list)
    # Runs are batch work: below the service, its API and page (which share the cores).
    run_nice: int = 10

    def __post_init__(self) -> None:
        self.inbox = Path(self.inbox).resolve()
        self.state = Path(self.state).resolve()
        self.outdir = Path(self.outdir).resolve() if self.outdir else self.state / "out"
        self.datasets = [Path(d).resolve() for d in self.datasets]


class Busy(RunError):
    """Another trigger service holds the state dir."""


class Service:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        if not cfg.inbox.is_dir():
            raise RunError(f"{cfg.inbox}: inbox is not a directory")
        for sub in ("done", "failed"):
            (cfg.inbox / sub).mkdir(exist_ok=True)
        cfg.state.mkdir(parents=True, exist_ok=True)
        self._lock = open(cfg.state / "trigger.lock", "a+")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"{cfg.state}: another trigger service is using this state dir") from None
        self._lock.truncate(0)
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        self.ledger = Ledger(cfg.state)
        self.runs_dir = cfg.state / "runs"
        self.runs_dir.mkdir(exist_ok=True)
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.created: dict[str, float] = {}   # created (maybe renamed in) -> when
        self.writing: set[str] = set()        # opened for writing, wait for the close
        from .dataset import DatasetFeed

        self.feeds = [DatasetFeed(self, d) for d in cfg.datasets]
        self.stopping = False

    # -- intake ------------------------------------------------------------------------
    def take(self, path: Path) -> None:
        """A complete manifest appeared at ``path``: claim it and register it."""
        if path.parent != self.cfg.inbox or not is_candidate(path):
            return
        target = claim(path)
        if target is None:
            return
        mid = register(self.ledger, target, name=path.name, home=path.parent, source="inbox",
                       state_dir=self.cfg.state, inbox=self.cfg.inbox)
        row = self.ledger.manifest(mid)
        log.info("claimed %s as #%d: %s", path.name, mid, row["state"])

    def scan_inbox(self, min_age: float) -> None:
        try:
            entries = list(os.scandir(self.cfg.inbox))
        except OSError as exc:
            log.error("cannot list %s: %s", self.cfg.inbox, exc)
            return
        t = time.time()
        for e in sorted(entries, key=lambda e: e.name):
            p = Path(e.path)
            if not is_candidate(p) or e.path in self.writing:
                continue
            try:
                age = t - e.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if age >= min_age:
                self.take(p)

    def on_event(self, kind: str, path: str) -> None:
        if kind == "dataset":
            for f in self.feeds:
                if str(f.path) == path:
                    f.dirty = True
            return
        p = Path(path)
        if p.parent != self.cfg.inbox or not is_candidate(p):
            return
        if kind == "closed_no_write" and path in self.writing:  # only read: settle again
            self.writing.discard(path)
            self.created[path] = time.monotonic()
        elif kind == "created":
            self.created[path] = time.monotonic()
        elif kind == "opened":
            self.created.pop(path, None)
            self.writing.add(path)
        elif kind in ("closed", "moved"):
            self.created.pop(path, None)
            self.writing.discard(path)
            self.take(Path(path))

    def settle_created(self) -> None:
        # A file renamed in from another folder shows up as "created" with no open/close after.
        t = time.monotonic()
        for path, since in list(self.created.items()):
            if t - since >= 0.25:
                del self.created[path]
                self.take(Path(path))

    def take_backfills(self) -> None:
        for row in self.ledger.all("SELECT * FROM manifests WHERE state='requested' "
                                   "ORDER BY id"):
            home = Path(row["home"])
            target = home / f"{CLAIM_PREFIX}bf{row['id']}.{os.getpid()}.{row['name']}"
            try:
                for old in home.glob(f"{CLAIM_PREFIX}bf{row['id']}.*"):
                    old.unlink()
                data = Path(row["stored_copy"]).read_bytes()
                tmp = home / f".{target.name}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, target)
            except OSError as exc:
                with self.ledger.tx() as db:
                    self.ledger.update(db, "manifests", row["id"], state="finalizing",
                                       outcome="failed", claim_path=None,
                                       reason=f"{home / row['name']}: backfill could not restore "
                                              f"the manifest: {exc}",
                                       dest=choose_dest(self.ledger, self.cfg.inbox,
                                                        row["name"], row["id"], "failed"))
                continue
            register(self.ledger, target, name=row["name"], home=home, source="backfill",
                     state_dir=self.cfg.state, inbox=self.cfg.inbox, row_id=row["id"],
                     backfill_of=row["backfill_of"])

    # -- duplicates and finalizing -------------------------------------------------------
    def dest(self, row: Any, outcome: str) -> str | None:
        """Where a finished manifest file goes (None for file-less sources)."""
        if row["source"] in FILELESS_SOURCES:
            return None
        return choose_dest(self.ledger, self.cfg.inbox, row["name"], row["id"], outcome)

    def settle_duplicates(self) -> None:
        for row in self.ledger.all(
                "SELECT d.id, d.name, d.source, o.outcome AS orig_outcome FROM manifests d "
                "JOIN manifests o "
                "ON d.duplicate_of=o.id WHERE d.state='duplicate' AND o.state IN "
                "('done','failed','finalizing')"):
            orig_outcome = row["orig_outcome"]
            with self.ledger.tx() as db:
                self.ledger.update(db, "manifests", row["id"], state="finalizing",
                                   outcome=orig_outcome, dest=self.dest(row, orig_outcome))

    def finalize_all(self) -> None:
        for row in self.ledger.all("SELECT * FROM manifests WHERE state='finalizing' ORDER BY id"):
            self.finalize(row)

    def finalize(self, row: Any) -> None:
        """Reason file, then the move, then the ledger: every step idempotent."""
        if row["dest"] is None:  # file-less source: the ledger is the record
            with self.ledger.tx() as db:
                self.ledger.update(db, "manifests", row["id"], state=row["outcome"],
                                   finished_at=now())
            return
        dest = Path(row["dest"])
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            reason = dest.with_name(dest.name + ".reason")
            tmp = reason.with_name(f".{reason.name}.tmp")
            text = row["reason"] or ""
            if row["run_id"] is not None and row["outcome"] == "failed":
                run = self.ledger.run(row["run_id"])
                if run["stderr_tail"]:
                    text += f"\n\n--- stderr tail ({run['log_path']}) ---\n{run['stderr_tail']}"
            tmp.write_text(text.rstrip("\n") + "\n")
            os.replace(tmp, reason)
            src = Path(row["claim_path"]) if row["claim_path"] else None
            if src is not None and (src.exists() or src.is_symlink()):
                shutil.move(str(src), str(dest))
        except OSError as exc:
            log.error("cannot finalize #%d into %s: %s (will retry)", row["id"], dest, exc)
            return
        with self.ledger.tx() as db:
            self.ledger.update(db, "manifests", row["id"], state=row["outcome"],
                               finished_at=now())
        log.info("#%d %s -> %s", row["id"], row["name"], dest)

    # -- runs ----------------------------------------------------------------------------
    def active_runs(self) -> list[Any]:
        return self.ledger.all("SELECT * FROM runs WHERE state='running'")

    def schedule(self, flush: bool) -> None:
        slots = self.cfg.max_runs - len(self.active_runs())
        for run in self.ledger.all("SELECT * FROM runs WHERE state='pending' AND next_at<=? "
                                   "ORDER BY id", now()):
            if slots <= 0:
                return
            self.launch(run)
            slots -= 1
        while slots > 0:
            queued = self.ledger.all("SELECT id, observation_id, n_stars, stars_json, "
                                     "received_at, COALESCE(workflow, 'sas') AS workflow "
                                     "FROM manifests WHERE state='queued' ORDER BY id")
            if not queued:
                return
            total = sum(r["n_stars"] for r in queued)
            if not flush and total < self.cfg.max_stars and \
                    now() - queued[0]["received_at"] < self.cfg.max_wait:
                return
            members, stars, seen = [], 0, set()
            for r in queued:
                if r["workflow"] != queued[0]["workflow"]:
                    continue  # one workflow per Toil run
                if r["observation_id"] in seen:
                    continue  # one observation id per run: outputs are per observation id
                if members and stars + r["n_stars"] > self.cfg.max_stars:
                    break
                members.append(r)
                seen.add(r["observation_id"])
                stars += r["n_stars"]
            run = self.create_run(members)
            if run is not None:
                self.launch(run)
                slots -= 1

    def create_run(self, members: list[Any]) -> Any:
        with self.ledger.tx() as db:
            ids = [m["id"] for m in members]
            still = {r[0] for r in db.execute(
                f"SELECT id FROM manifests WHERE state='queued' AND id IN "
                f"({','.join('?' * len(ids))})", ids)}
            members = [m for m in members if m["id"] in still]
            if not members:  # all canceled meanwhile
                return None
            cur = db.execute("INSERT INTO runs (run_dir, jobstore, log_path, state, n_stars, "
                             "n_manifests, created_at) VALUES ('', '', '', 'pending', ?, ?, ?)",
                             (sum(m["n_stars"] for m in members), len(members), now()))
            rid = int(cur.lastrowid)
            run_dir = self.runs_dir / f"{rid:06d}"
            self.ledger.update(db, "runs", rid, run_dir=str(run_dir),
                               jobstore=str(run_dir / "jobstore"),
                               log_path=str(run_dir / "runner.log"))
            for m in members:
                self.ledger.update(db, "manifests", m["id"], state="running", run_id=rid,
                                   started_at=now())
        log.info("run %d: %d manifest(s), %d star(s)", rid, len(members),
                 sum(m["n_stars"] for m in members))
        return self.ledger.run(rid)

    def write_batch(self, run: Any) -> Path:
        run_dir = Path(run["run_dir"])
        path = run_dir / "batch.json"
        if not path.exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            members = [as_dict(r) for r in self.ledger.all(
                "SELECT id, observation_id, stars_json, COALESCE(workflow, 'sas') AS workflow "
                "FROM manifests WHERE run_id=? "
                "AND state NOT IN ('duplicate') ORDER BY id", run["id"])]
            n_stars = sum(len(json.loads(m["stars_json"])) for m in members)
            size = resolve_chunk_size(self.cfg.chunk_size, n_stars, site=self.cfg.site,
                                      extra_args=self.cfg.toil_args)
            write_json_atomic(path, build(run["id"], members, size))
        return path

    def kill_leftovers(self, run_dir: Path) -> None:
        """Kill Toil processes a dead attempt left behind (found by their job store path)."""
        import psutil

        marker = str(run_dir) + "/"
        victims = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmd = p.info["cmdline"] or ()
                # only Toil/stellarflow processes: never an operator's `tail -f .../runner.log`
                if p.pid != os.getpid() and any(marker in a for a in cmd) and \
                        any(k in a for a in cmd for k in ("toil", "stellarflow", "cwltool")):
                    victims.append(p)
            except (psutil.Error, TypeError):
                continue
        for p in victims:
            try:
                # Toil workers lead their own process group (their tools run inside it).
                if os.getpgid(p.pid) == p.pid:
                    os.killpg(p.pid, signal.SIGKILL)
                else:
                    p.kill()
            except (ProcessLookupError, psutil.Error, PermissionError):
                pass
        if victims:
            log.warning("killed %d process(es) left by a dead attempt in %s", len(victims), run_dir)
            psutil.wait_procs(victims, timeout=10)

    def launch(self, run: Any) -> None:
        run_dir = Path(run["run_dir"])
        self.write_batch(run)
        self.kill_leftovers(run_dir)
        n = (self.ledger.one("SELECT MAX(n) FROM attempts WHERE run_id=?", run["id"])[0] or 0) + 1
        mode = run["next_mode"]
        with self.ledger.tx() as db:
            taken = db.execute("UPDATE runs SET state='running' WHERE id=? AND state='pending'",
                               (run["id"],)).rowcount
            if not taken:  # canceled since it was read
                return
            db.execute("INSERT INTO attempts (run_id, n, mode, started_at) VALUES (?,?,?,?)",
                       (run["id"], n, mode, now()))
        lock = open(run_dir / "runner.lock", "a")  # noqa: SIM115 - handed to the child
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            argv = [sys.executable, "-m", "stellarflow_trigger.runner", "--run-dir", str(run_dir),
                    "--attempt", str(n), "--mode", mode, "--lock-fd", str(lock.fileno()),
                    "--outdir", str(self.cfg.outdir),
                    "--replaced", str(self.cfg.state / "replaced"), "--site", self.cfg.site,
                    "--nice", str(self.cfg.run_nice)]
            if not self.cfg.container:
                argv.append("--no-container")
            for a in self.cfg.toil_args:
                argv += ["--toil-arg", a]
            with open(run_dir / f"attempt-{n}.log", "ab") as out:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                        pass_fds=(lock.fileno(),), start_new_session=True,
                                        cwd=run_dir)
        finally:
            lock.close()  # the child keeps the lock
        self.children[run["id"]] = proc
        with self.ledger.tx() as db:
            db.execute("UPDATE attempts SET pid=? WHERE run_id=? AND n=?", (proc.pid, run["id"], n))
        log.info("run %d attempt %d (%s) started, pid %d", run["id"], n, mode, proc.pid)

    @staticmethod
    def attempt_alive(run_dir: Path) -> bool:
        try:
            fd = os.open(run_dir / "runner.lock", os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def check_runs(self) -> None:
        active = {r["id"] for r in self.active_runs()}
        for rid in [r for r in self.children if r not in active]:  # canceled: reap, forget
            if self.children[rid].poll() is not None:
                self.children.pop(rid)
        for run in self.active_runs():
            proc = self.children.get(run["id"])
            if proc is not None:
                proc.poll()  # reap it
            run_dir = Path(run["run_dir"])
            if run["started_at"] is None and (run_dir / "command.json").exists():
                with self.ledger.tx() as db:
                    self.ledger.update(db, "runs", run["id"],
                                       started_at=(run_dir / "command.json").stat().st_mtime)
            if self.attempt_alive(run_dir):
                continue
            if proc is not None:
                proc.wait()
                self.children.pop(run["id"], None)
            self.attempt_ended(self.ledger.run(run["id"]))

    def attempt_ended(self, run: Any) -> None:
        rid = run["id"]
        if self.ledger.run(rid)["state"] != "running":  # canceled meanwhile: not ours to settle
            return
        att = self.ledger.one("SELECT * FROM attempts WHERE run_id=? ORDER BY n DESC LIMIT 1", rid)
        n = att["n"] if att else 0
        path = Path(run["run_dir"]) / f"attempt-{n}.json"
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            result = None
        jobstore_ok = Path(run["jobstore"]).exists()
        if result is None:
            outcome, interrupts = "interrupted", run["interrupts"] + 1
            with self.ledger.tx() as db:
                db.execute("UPDATE attempts SET outcome=?, ended_at=? WHERE run_id=? AND n=?",
                           (outcome, now(), rid, n))
                if interrupts <= self.cfg.max_interrupts:
                    self.ledger.update(db, "runs", rid, state="pending", interrupts=interrupts,
                                       next_mode="restart" if jobstore_ok else "fresh",
                                       next_at=now())
            log.warning("run %d attempt %d died without a result (%d interruption(s))", rid, n,
                        interrupts)
            if interrupts > self.cfg.max_interrupts:
                self.fail_run(rid, f"interrupted {interrupts} times (crashes or kills)", None, "")
            return
        if result["ok"]:
            self.finish_run(rid, n, result)
            return
        prev = self.ledger.one("SELECT outcome FROM attempts WHERE run_id=? AND n=?", rid, n - 1)
        if att and att["mode"] == "restart" and prev and prev["outcome"] == "interrupted" \
                and run["interrupts"] < self.cfg.max_interrupts:
            # Resuming what a kill left behind failed (job store caught half-written): that is
            # the interruption's cost, not the workflow's; start clean without using the budget.
            with self.ledger.tx() as db:
                db.execute("UPDATE attempts SET outcome='interrupted', ended_at=?, exit_code=?, "
                           "error=? WHERE run_id=? AND n=?", (now(), result.get("exit_code"),
                                                              result.get("error"), rid, n))
                self.ledger.update(db, "runs", rid, state="pending", next_mode="fresh",
                                   interrupts=run["interrupts"] + 1, next_at=now())
            log.warning("run %d: resuming after an interruption failed (%s); starting clean",
                        rid, result.get("error"))
            return
        attempts = run["attempts"] + 1
        with self.ledger.tx() as db:
            db.execute("UPDATE attempts SET outcome='failed', ended_at=?, exit_code=?, error=? "
                       "WHERE run_id=? AND n=?", (now(), result.get("exit_code"),
                                                  result.get("error"), rid, n))
            self.ledger.update(db, "runs", rid, attempts=attempts,
                               failing_step=result.get("failing_step"),
                               stderr_tail=result.get("stderr_tail"), error=result.get("error"),
                               exit_code=result.get("exit_code"))
        if result.get("transient") and attempts <= self.cfg.retries:
            # --restart after a clean attempt failed; after a failed resume, start clean.
            mode = "restart" if (att and att["mode"] == "fresh" and jobstore_ok) else "fresh"
            delay = self.cfg.backoff * 2 ** (attempts - 1)
            with self.ledger.tx() as db:
                self.ledger.update(db, "runs", rid, state="pending", next_mode=mode,
                                   next_at=now() + delay)
            log.warning("run %d attempt %d failed, retry %d/%d (%s) in %.0f s: %s", rid, n,
                        attempts, self.cfg.retries, mode, delay, result.get("error"))
            return
        self.fail_run(rid, result.get("error") or "failed", result.get("failing_step"),
                      result.get("stderr_tail") or "", attempts=attempts)

    def fail_run(self, rid: int, error: str, step: str | None, tail: str,
                 attempts: int | None = None) -> None:
        run = self.ledger.run(rid)
        tries = attempts if attempts is not None else run["attempts"]
        reason = (f"run {rid} failed after {tries} attempt(s) "
                  f"(+{run['interrupts']} interrupted); failing step: {step or 'unknown'}; "
                  f"{error}")
        reason = " ".join(reason.split())
        with self.ledger.tx() as db:
            self.ledger.update(db, "runs", rid, state="failed", ended_at=now(), error=error,
                               failing_step=step, stderr_tail=tail or run["stderr_tail"])
            for m in self.ledger.all("SELECT id, name, source FROM manifests WHERE run_id=? AND "
                                     "state='running'", rid):
                self.ledger.update(db, "manifests", m["id"], state="finalizing", outcome="failed",
                                   reason=reason, dest=self.dest(m, "failed"))
        log.error("run %d failed: %s", rid, reason)

    def finish_run(self, rid: int, n: int, result: dict[str, Any]) -> None:
        run = self.ledger.run(rid)
        outputs = result.get("outputs", {})
        stars = result.get("stars", {})
        with self.ledger.tx() as db:
            db.execute("UPDATE attempts SET outcome='ok', ended_at=?, exit_code=0 WHERE run_id=? "
                       "AND n=?", (now(), rid, n))
            self.ledger.update(db, "runs", rid, state="done", ended_at=result.get("ended_at",
                                                                                   now()),
                               exit_code=0, outputs=dumps(outputs))
            self.ledger.store_profile(db, rid, profile_lines(Path(run["run_dir"])))
            for m in self.ledger.all("SELECT id, name, source, observation_id FROM manifests "
                                     "WHERE run_id=? AND state='running'", rid):
                ok, bad = stars.get(m["observation_id"], (0, 0))
                out = outputs.get(m["observation_id"])
                reason = (f"done: {m['observation_id']}: {ok} star(s) ok, {bad} failed; outputs "
                          f"{out}; run {rid} (log {run['log_path']})")
                self.ledger.update(db, "manifests", m["id"], state="finalizing", outcome="done",
                                   reason=reason, stars_ok=ok, stars_failed=bad, outputs=out,
                                   dest=self.dest(m, "done"))
        log.info("run %d done: %s", rid, outputs)

    # -- recovery and loop ---------------------------------------------------------------
    def recover(self) -> None:
        """After a crash: adopt live attempts, settle dead ones, re-take orphaned claims."""
        for run in self.active_runs():
            if not self.attempt_alive(Path(run["run_dir"])):
                self.attempt_ended(run)
            else:
                log.info("run %d: adopting the attempt still running", run["id"])
        known = set(self.ledger.claimed_paths())
        for p in sorted(self.cfg.inbox.glob(f"{CLAIM_PREFIX}*")):
            # backfill and dataset claims are re-made from the ledger, never taken as arrivals
            if str(p) in known or p.name.startswith((f"{CLAIM_PREFIX}bf", f"{CLAIM_PREFIX}ds.")):
                continue
            log.info("re-taking orphaned claim %s", p.name)
            register(self.ledger, p, name=original_name(p), home=p.parent, source="inbox",
                     state_dir=self.cfg.state, inbox=self.cfg.inbox)
        for f in self.feeds:
            f.recover(known)
        self.finalize_all()

    def pending_work(self) -> bool:
        row = self.ledger.one(
            "SELECT (SELECT COUNT(*) FROM manifests WHERE state IN ('requested','queued',"
            "'running','finalizing','duplicate')) + (SELECT COUNT(*) FROM runs WHERE state IN "
            "('pending','running'))")
        return bool(row[0]) or any(f.has_pending() for f in self.feeds)

    def step(self, flush: bool) -> None:
        self.take_backfills()
        for f in self.feeds:
            f.poll(flush)
        self.settle_duplicates()
        self.check_runs()
        self.schedule(flush)
        self.settle_duplicates()
        self.finalize_all()

    def scan(self) -> int:
        """One pass for cron: take what is there, run it all, finish, exit."""
        self.recover()
        self.scan_inbox(self.cfg.min_age)
        while True:
            self.step(flush=True)
            if not self.pending_work():
                return 0
            time.sleep(0.5)

    def watch(self) -> int:
        from watchdog.observers import Observer

        from .watch import Handler

        observer = Observer()
        handler = Handler(self.events)
        observer.schedule(handler, str(self.cfg.inbox), recursive=False)
        for d in {f.path.parent for f in self.feeds} - {self.cfg.inbox}:
            observer.schedule(handler, str(d), recursive=False)
        observer.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        try:
            self.recover()
            self.scan_inbox(self.cfg.min_age)
            # rescan once files that were too young for the first scan are old enough
            last_scan = time.monotonic() - self.cfg.poll + self.cfg.min_age + 0.1
            log.info("watching %s (state %s)", self.cfg.inbox, self.cfg.state)
            while not self.stopping:
                try:
                    kind, path = self.events.get(timeout=0.2)
                    self.on_event(kind, path)
                    budget = time.monotonic() + 0.5  # bookkeeping still runs in a burst
                    while time.monotonic() < budget:
                        kind, path = self.events.get_nowait()
                        self.on_event(kind, path)
                except queue.Empty:
                    pass
                self.settle_created()
                if time.monotonic() - last_scan >= self.cfg.poll:
                    self.scan_inbox(self.cfg.min_age)
                    last_scan = time.monotonic()
                self.step(flush=False)
        finally:
            observer.stop()
            observer.join(timeout=5)
        # Runs go on in their own sessions; the next start adopts them.
        log.info("stopped; %d run(s) still running will be adopted on restart",
                 len(self.active_runs()))
        return 0

    def run_loop(self, stop: Any, period: float = 0.5) -> None:
        """Run what the ledger holds until ``stop`` (a threading.Event) is set: for intakes that
        are not the inbox (the WES API, NATS), which only write queued manifests."""
        self.recover()
        log.info("running the ledger's work (state %s)", self.cfg.state)
        while not stop.is_set():
            self.step(flush=False)
            stop.wait(period)

    def _stop(self, *_: Any) -> None:
        self.stopping = True
