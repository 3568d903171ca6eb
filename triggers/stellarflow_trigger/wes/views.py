"""The ledger seen as WES runs and tasks (and as rows of the web page).

A WES run is one manifest row, whatever brought it; its id is the row id. Reads use one SQLite
connection per thread (WAL: readers never wait for the service's writes).
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stellarflow import profiling
from stellarflow import progress as progress_mod

ISO = "%Y-%m-%dT%H:%M:%SZ"
SITE_RE = re.compile(r"jobstore_config/([A-Za-z0-9_.-]+)\.ya?ml$")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def iso(t: float | None) -> str | None:
    return None if t is None else time.strftime(ISO, time.gmtime(t))


class Db:
    """Thread-local read connections to STATE/ledger.sqlite; writes go through ``write()``."""

    def __init__(self, state: Path) -> None:
        self.path = Path(state) / "ledger.sqlite"
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                check_same_thread=False)
            c.row_factory = sqlite3.Row
            c.execute("PRAGMA busy_timeout=60000")
            self._local.conn = c
        return c

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self.conn().execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.conn().execute(sql, args).fetchall()


@dataclass
class Run:
    """A manifest row joined with its Toil run (if any)."""

    m: sqlite3.Row
    r: sqlite3.Row | None
    original: sqlite3.Row | None = None  # for a duplicate: the row it follows

    @property
    def id(self) -> int:
        return int(self.m["id"])


RUN_SQL = ("SELECT m.*, r.state AS r_state, r.run_dir, r.log_path, r.started_at AS r_started, "
           "r.ended_at AS r_ended, r.exit_code, r.error, r.failing_step, r.stderr_tail, "
           "r.attempts, r.interrupts FROM manifests m LEFT JOIN runs r ON r.id=m.run_id ")


def load_run(db: Db, run_id: str) -> Run | None:
    if not run_id.isdigit() or len(run_id) > 18:
        return None
    row = db.one(RUN_SQL + "WHERE m.id=?", int(run_id))
    if row is None:
        return None
    orig = None
    if row["duplicate_of"] is not None:
        orig = db.one(RUN_SQL + "WHERE m.id=?", row["duplicate_of"])
    return Run(row, row if row["run_id"] is not None else None, orig)


def state(row: sqlite3.Row, original: sqlite3.Row | None = None) -> str:
    s = row["state"]
    if s in ("requested", "queued"):
        return "QUEUED"
    if s == "duplicate":
        return state(original) if original is not None else "QUEUED"
    if s == "running":
        return "RUNNING" if row["r_state"] == "running" else "INITIALIZING"
    if s == "canceled":
        return "CANCELED"
    outcome = row["outcome"] if s == "finalizing" else s
    if outcome == "done":
        return "COMPLETE"
    if outcome == "failed":
        # refused at intake (never ran): the service said no; else the workflow failed
        return "EXECUTOR_ERROR" if row["run_id"] is not None else "SYSTEM_ERROR"
    return "UNKNOWN"


def start_time(row: sqlite3.Row) -> float | None:
    return row["r_started"] or row["started_at"]


_sites: dict[str, str] = {}


def site_of(run_dir: str | None) -> str | None:
    """The site profile a Toil run was started with (from its command; kept once known)."""
    if not run_dir:
        return None
    if run_dir in _sites:
        return _sites[run_dir]
    try:
        argv = json.loads((Path(run_dir) / "command.json").read_text())
    except (OSError, ValueError):
        return None
    for a in argv:
        m = SITE_RE.search(str(a))
        if m:
            if len(_sites) > 4096:
                _sites.clear()
            _sites[run_dir] = m.group(1)
            return m.group(1)
    return None


# run folder -> progress, profile.jsonl -> its lines: each kept with the (mtime, size) of the
# file it was read from, and read again only when that changed (pages and WES poll them often)
_progress_cache: dict[str, tuple[tuple[float, int], Any]] = {}
_usage_cache: dict[str, tuple[tuple[float, int], Any]] = {}
_cache_lock = threading.Lock()


def _cached(cache: dict[str, tuple[tuple[float, int], Any]], name: str, key: tuple[float, int],
            compute: Any) -> Any:
    """``cache[name]`` while its key is ``key``, else ``compute()`` stored under ``key``."""
    with _cache_lock:
        hit = cache.get(name)
    if hit and hit[0] == key:
        return hit[1]
    value = compute()
    with _cache_lock:
        if len(cache) > 256:
            cache.clear()
        cache[name] = (key, value)
    return value


def run_progress(run_dir: str | None, finished: bool,
                 workflow: str | None = None) -> progress_mod.Progress | None:
    """Progress of a Toil run, parsed again only when its log changed."""
    if not run_dir:
        return None
    log = Path(run_dir) / "runner.log"
    try:
        st = log.stat()
    except OSError:
        return None
    key = (st.st_mtime, st.st_size + (1 if finished else 0))

    def read() -> progress_mod.Progress | None:
        from stellarflow.paths import workflow_path

        try:
            cwl = workflow_path(workflow or "sas")
        except Exception:
            cwl = None
        return progress_mod.read(Path(run_dir), cwl, finished=finished)

    return _cached(_progress_cache, run_dir, key, read)


def tags(row: sqlite3.Row) -> dict[str, str]:
    t = {"source": row["source"], "name": row["name"]}
    if row["observation_id"]:
        t["observation_id"] = row["observation_id"]
    for k in ("n_stars", "stars_ok", "stars_failed", "run_id"):
        if row[k] is not None:
            t[k] = str(row[k])
    return t


def summary(row: sqlite3.Row, original: sqlite3.Row | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"run_id": str(row["id"]), "state": state(row, original),
                           "tags": tags(row)}
    st, end = start_time(row), row["finished_at"]
    if st is not None:
        out["start_time"] = iso(st)
    if end is not None:
        out["end_time"] = iso(end)
    return out


def list_runs(db: Db, page_size: int, page_token: str | None) -> dict[str, Any]:
    before = int(page_token) if page_token else None
    rows = db.all(RUN_SQL + ("WHERE m.id<? " if before else "") + "ORDER BY m.id DESC LIMIT ?",
                  *((before,) if before else ()), page_size + 1)
    more = len(rows) > page_size
    rows = rows[:page_size]
    originals = {}
    dup_ids = [r["duplicate_of"] for r in rows if r["duplicate_of"] is not None]
    if dup_ids:
        originals = {o["id"]: o for o in db.all(
            RUN_SQL + f"WHERE m.id IN ({','.join('?' * len(dup_ids))})", *dup_ids)}
    total = db.one("SELECT COUNT(*) FROM manifests")[0]
    return {"runs": [summary(r, originals.get(r["duplicate_of"])) for r in rows],
            "next_page_token": str(rows[-1]["id"]) if more and rows else "",
            "total_runs": int(total)}


def outputs_dir(run: Run) -> Path | None:
    out = run.m["outputs"] or (run.original["outputs"] if run.original is not None else None)
    return Path(out) if out else None


def failed_stars(catalogue: Path, limit: int = 200) -> list[dict[str, str]]:
    try:
        with open(catalogue, newline="") as fh:
            rows = csv.DictReader((ln for ln in fh if not ln.startswith("#")), delimiter=" ")
            return [{"star_id": r.get("star_id") or "", "error": r.get("error") or ""}
                    for r in rows if r.get("status") == "failed"][:limit]
    except OSError:
        return []


def files(run: Run) -> list[dict[str, str]]:
    """Files the page links to: the run's log, and the observation's published outputs."""
    found = []
    src = run.original if run.original is not None else run.m
    if src["log_path"] and Path(src["log_path"]).exists():
        found.append({"name": "runner.log", "kind": "log"})
    out = outputs_dir(run)
    if out is not None and out.is_dir():
        for p in sorted(out.iterdir()):
            if not p.is_file() or not NAME_RE.fullmatch(p.name):
                continue
            kind = ("catalogue" if p.name == "catalogue.ecsv" else
                    "report" if p.name == "report.html" else
                    "figure" if p.suffix == ".png" else
                    # the products' light curves link into these: they go together
                    "light curves" if p.name.endswith(".prepared.h5") else "product")
            found.append({"name": p.name, "kind": kind})
    return found


def file_path(run: Run, name: str) -> Path | None:
    """The file ``name`` of a run, only when it is one ``files()`` lists (no path from a
    request is ever opened)."""
    if not NAME_RE.fullmatch(name):
        return None
    src = run.original if run.original is not None else run.m
    if name == "runner.log":
        return Path(src["log_path"]) if src["log_path"] else None
    out = outputs_dir(run)
    if out is None:
        return None
    listed = {e.name for e in out.iterdir()} if out.is_dir() else set()
    p = out / name
    return p if name in listed and p.is_file() and not p.is_symlink() else None


def tasks_of(run: Run) -> list[progress_mod.Task]:
    src = run.original if run.original is not None else run.m
    if src["run_id"] is None:
        return []
    p = run_progress(src["run_dir"], finished=src["r_state"] in ("done",),
                     workflow=src["workflow"])
    return p.tasks if p else []


def step_usage(run: Run) -> list[dict]:
    """The run's step profile lines (RUN_DIR/profile.jsonl, written when the run ends; none
    while it runs or for a run made with STELLARFLOW_PROVENANCE=0)."""
    src = run.original if run.original is not None else run.m
    if not src["run_dir"]:
        return []
    try:
        path = profiling.find_lines(Path(src["run_dir"]))
        st = path.stat()
    except Exception:  # noqa: BLE001 - no profile (yet) is a normal state, not an API error
        return []

    def read() -> list[dict]:
        try:
            return profiling.load_lines(path)
        except Exception:  # noqa: BLE001 - a damaged profile: tasks say "not known"
            return []

    return _cached(_usage_cache, str(path), (st.st_mtime, st.st_size), read)


def usage_by_task(tasks: list[progress_mod.Task], lines: list[dict]) -> dict[str, dict]:
    """Task id -> its profile line: same tool, the step's process inside the task's start..end
    (Toil's log, whole seconds; the line's times come from inside the container), each line
    used once, tasks and lines taken in start order (two chunks' steps that start in the same
    second may swap: the line names its chunk)."""
    used: set[int] = set()
    found: dict[str, dict] = {}
    spans = []
    for k, ln in enumerate(lines):
        s, e = profiling.parse_time(ln.get("start_utc")), profiling.parse_time(ln.get("end_utc"))
        if s is not None and e is not None:
            spans.append((s.timestamp(), e.timestamp(), k))
    spans.sort()
    for t in sorted(tasks, key=lambda t: (t.start or 0.0, t.end or 0.0)):
        if t.start is None or t.end is None:
            continue
        for s, e, k in spans:
            if (k not in used and lines[k].get("tool") == t.name
                    and t.start - 1.0 <= s and e <= t.end + 1.0):
                found[t.id] = lines[k]
                used.add(k)
                break
    return found


def usage_text(ln: dict | None) -> str:
    if ln is None:
        return "cpu/rss: not known (no step profile for this task yet)"
    used = ln.get("used", {})
    cpu, rss = used.get("cpu_s"), used.get("max_rss_bytes")
    pct = used.get("cpu_percent_of_request")
    return (f"cpu/rss: {'?' if cpu is None else f'{cpu:.2f} s'} CPU"
            f"{'' if pct is None else f' ({pct:.0f} % of the cores requested)'}, max RSS "
            f"{'?' if rss is None else f'{rss / 2**20:.0f} MiB'} "
            f"({ln.get('source')}, {ln.get('chunk')})")


def task_log(run: Run, t: progress_mod.Task, base: str,
             usage: dict[str, dict] | None = None) -> dict[str, Any]:
    """A WES TaskLog; ``usage``: ``usage_by_task`` of the run (computed here when not given)."""
    if usage is None:
        usage = usage_by_task(tasks_of(run), step_usage(run))
    out: dict[str, Any] = {"id": t.id, "name": f"{t.name} (chunk {t.chunk})",
                           "system_logs": [f"step: {t.step}", f"state: {t.state}",
                                           usage_text(usage.get(t.id))]}
    if t.start is not None:
        out["start_time"] = iso(t.start)
    if t.end is not None:
        out["end_time"] = iso(t.end)
    if t.exit_code is not None:
        out["exit_code"] = t.exit_code
    if t.stderr_tail:
        out["system_logs"].append("stderr tail:\n" + "\n".join(t.stderr_tail))
    out["stderr"] = f"{base}ui/files/{run.id}/runner.log"
    return out
