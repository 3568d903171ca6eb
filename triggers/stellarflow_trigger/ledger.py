"""The ledger: STATE/ledger.sqlite (SQLite in WAL mode), the trigger's single source of truth.

Every manifest (by content hash) and every run (job store, state, attempts, log, outputs) is a
row. State changes are transactions, and every file-system step that follows a state change is
idempotent, so a daemon restarted after kill -9 can redo whatever was in flight.

Manifest states: queued -> running -> finalizing -> done|failed; a manifest whose content was
already seen is ``duplicate`` until its original ends, then follows it (``finalizing``).
Run states: pending (waiting for an attempt) -> running -> done|failed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    name TEXT NOT NULL,              -- file name as it arrived (or DATASET:Lfirst-Llast)
    source TEXT NOT NULL,            -- inbox | dataset | backfill
    home TEXT NOT NULL,              -- folder its light-curve paths are relative to
    claim_path TEXT,                 -- where the claimed file waits until it is finalized
    stored_copy TEXT,                -- STATE/manifests/<sha256><suffix>, for backfill
    observation_id TEXT,
    workflow TEXT,                   -- allow-listed workflow name (NULL in older ledgers: sas)
    n_stars INTEGER,
    stars_json TEXT,                 -- CWL star records, light curves resolved at claim time
    state TEXT NOT NULL,
    outcome TEXT,                    -- done | failed, decided when finalizing starts
    reason TEXT,                     -- one line
    dest TEXT,                       -- final path in INBOX/done/ or INBOX/failed/
    duplicate_of INTEGER,
    backfill_of INTEGER,
    run_id INTEGER,
    stars_ok INTEGER,
    stars_failed INTEGER,
    outputs TEXT,                    -- OUTDIR/<observation_id>
    received_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS manifests_sha ON manifests(sha256);
CREATE INDEX IF NOT EXISTS manifests_state ON manifests(state);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    run_dir TEXT NOT NULL,
    jobstore TEXT NOT NULL,
    log_path TEXT NOT NULL,
    state TEXT NOT NULL,
    n_stars INTEGER NOT NULL,
    n_manifests INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,      -- attempts that ended with a failure
    interrupts INTEGER NOT NULL DEFAULT 0,    -- attempts that died without a word (crash, kill)
    next_mode TEXT NOT NULL DEFAULT 'fresh',  -- fresh | restart (toil --restart on the job store)
    next_at REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,                          -- first Toil start
    ended_at REAL,
    exit_code INTEGER,
    error TEXT,
    failing_step TEXT,
    stderr_tail TEXT,
    outputs TEXT                              -- JSON {observation_id: OUTDIR/<observation_id>}
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    mode TEXT NOT NULL,
    pid INTEGER,
    started_at REAL NOT NULL,
    ended_at REAL,
    outcome TEXT,                             -- ok | failed | interrupted
    exit_code INTEGER,
    error TEXT,
    PRIMARY KEY (run_id, n)
);
CREATE TABLE IF NOT EXISTS step_profiles (   -- RUN_DIR/profile.jsonl (stellarflow profile)
    run_id INTEGER NOT NULL,
    n INTEGER NOT NULL,                       -- line number in the run's profile.jsonl
    step TEXT,
    tool TEXT,
    chunk TEXT,
    module_version TEXT,
    image TEXT,
    source TEXT,                              -- container | slurm: where "used" comes from
    start_utc TEXT,
    end_utc TEXT,
    exit_status INTEGER,
    req_cores REAL,
    req_ram_bytes INTEGER,
    wall_s REAL,
    cpu_s REAL,
    cpu_percent_of_request REAL,
    max_rss_bytes INTEGER,
    read_bytes INTEGER,
    written_bytes INTEGER,
    line TEXT NOT NULL,                       -- the whole JSON line
    PRIMARY KEY (run_id, n)
);
CREATE TABLE IF NOT EXISTS datasets (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    line_no INTEGER NOT NULL
);
"""


def now() -> float:
    return time.time()


class Ledger:
    """One connection per process; every write is a short IMMEDIATE transaction."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.state_dir / "ledger.sqlite"
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed state change survives power loss, not only kill -9.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=60000")
        with self.tx():
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.db.execute(stmt)
            cols = {r[1] for r in self.db.execute("PRAGMA table_info(manifests)")}
            if "workflow" not in cols:  # a ledger made before the column existed
                self.db.execute("ALTER TABLE manifests ADD COLUMN workflow TEXT")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- reads ---------------------------------------------------------------------------
    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    def manifest(self, mid: int) -> sqlite3.Row:
        row = self.one("SELECT * FROM manifests WHERE id=?", mid)
        assert row is not None, mid
        return row

    def run(self, rid: int) -> sqlite3.Row:
        row = self.one("SELECT * FROM runs WHERE id=?", rid)
        assert row is not None, rid
        return row

    def original_of(self, sha: str) -> sqlite3.Row | None:
        """The first non-backfill manifest with this content (what a new drop duplicates)."""
        return self.one("SELECT * FROM manifests WHERE sha256=? AND source!='backfill' "
                        "AND duplicate_of IS NULL ORDER BY id LIMIT 1", sha)

    def claimed_paths(self) -> set[str]:
        return {r[0] for r in self.all("SELECT claim_path FROM manifests WHERE claim_path "
                                       "IS NOT NULL AND state NOT IN ('done','failed')")}

    # -- writes --------------------------------------------------------------------------
    def insert_manifest(self, db: sqlite3.Connection, **cols: Any) -> int:
        cols.setdefault("received_at", now())
        keys = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        cur = db.execute(f"INSERT INTO manifests ({keys}) VALUES ({marks})", tuple(cols.values()))
        return int(cur.lastrowid)

    def store_profile(self, db: sqlite3.Connection, rid: int, lines: list[dict]) -> None:
        """The run's step profile lines (idempotent: a finished run written twice is one)."""
        for n, ln in enumerate(lines, 1):
            used, req = ln.get("used") or {}, ln.get("requested") or {}
            db.execute("INSERT OR REPLACE INTO step_profiles VALUES "
                       "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (rid, n, ln.get("step"), ln.get("tool"), ln.get("chunk"),
                        ln.get("module_version"), ln.get("image"), ln.get("source"),
                        ln.get("start_utc"), ln.get("end_utc"), ln.get("exit_status"),
                        req.get("cores"), req.get("ram_bytes"), used.get("wall_s"),
                        used.get("cpu_s"), used.get("cpu_percent_of_request"),
                        used.get("max_rss_bytes"), used.get("read_bytes"),
                        used.get("written_bytes"), json.dumps(ln, sort_keys=True)))

    def update(self, db: sqlite3.Connection, table: str, rid: int, **cols: Any) -> None:
        sets = ", ".join(f"{k}=?" for k in cols)
        db.execute(f"UPDATE {table} SET {sets} WHERE id=?", (*cols.values(), rid))


def as_dict(row: sqlite3.Row | None) -> dict[str, Any] | None:
    return None if row is None else {k: row[k] for k in row.keys()}


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
