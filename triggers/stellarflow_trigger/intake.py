"""Intake: claim a complete manifest atomically, validate it with stellarflow.manifest.load().

A claim is a rename inside the manifest's own folder to a hidden name (``.sfclaim.<ns>.<name>``):
only one claimant can win it, the watcher ignores hidden names, and light-curve paths keep
resolving against the same folder (they are resolved - and checked for escapes - right then).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stellarflow.errors import InputError
from stellarflow.manifest import MANIFEST_SUFFIXES, MAX_MANIFEST_BYTES, load, yaml_guard
from stellarflow.paths import ALLOWED_WORKFLOWS

from . import CLAIM_PREFIX
from .ledger import Ledger, dumps, now


def is_candidate(path: Path) -> bool:
    name = path.name
    return not name.startswith(".") and name.lower().endswith(MANIFEST_SUFFIXES)


def claim_name(name: str) -> str:
    return f"{CLAIM_PREFIX}{time.time_ns()}.{os.getpid()}.{name}"


def original_name(claim_path: Path) -> str:
    """The arrival name of a claimed file (`.sfclaim.<ns>.<pid>.<name>`)."""
    parts = claim_path.name.split(".", 4)
    return parts[4] if claim_path.name.startswith(CLAIM_PREFIX) and len(parts) == 5 else \
        claim_path.name


def claim(path: Path) -> Path | None:
    """Atomically take ``path``; None when somebody else took it (or it vanished)."""
    target = path.with_name(claim_name(path.name))
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


def read_limited(path: Path) -> bytes:
    """Read at most MAX_MANIFEST_BYTES + 1 bytes without following a symlink or blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        chunks, left = [], MAX_MANIFEST_BYTES + 1
        while left > 0:
            b = os.read(fd, min(left, 1 << 20))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def register(ledger: Ledger, claim_path: Path, *, name: str, home: Path, source: str,
             state_dir: Path, inbox: Path, row_id: int | None = None,
             backfill_of: int | None = None,
             in_tx: Callable[[Any], None] | None = None) -> int:
    """Validate a claimed file and record it: queued, duplicate, or finalizing(failed).

    ``row_id`` updates an existing ledger row (a backfill request) instead of inserting one;
    ``in_tx(db)`` runs inside the same transaction (a dataset feed advances its offset there).
    """
    shown = home / name  # errors name the file as it arrived, not the hidden claim name
    reason, sha, data = None, None, b""
    try:
        st = os.lstat(claim_path)
        if stat.S_ISLNK(st.st_mode):
            reason = f"{shown}: manifest is a symbolic link (not followed)"
        elif not stat.S_ISREG(st.st_mode):
            reason = f"{shown}: manifest is not a regular file"
        else:
            data = read_limited(claim_path)
    except OSError as exc:
        reason = f"{shown}: cannot read manifest: {exc.strerror or exc}"
    sha = hashlib.sha256(data if reason is None else f"unreadable:{name}".encode()).hexdigest()
    cols: dict[str, Any] = {"sha256": sha, "name": name, "source": source, "home": str(home),
                            "claim_path": str(claim_path), "backfill_of": backfill_of,
                            "received_at": now()}
    original = None if source == "backfill" or reason else ledger.original_of(sha)
    if original is not None and original["id"] != row_id:
        cols.update(state="duplicate", duplicate_of=original["id"],
                    observation_id=original["observation_id"],
                    reason=f"{shown}: duplicate of {original['name']} (manifest "
                           f"#{original['id']}, sha256 {sha[:12]}); not run again "
                           "(`stellarflow trigger backfill` re-runs past manifests)")
    elif reason is None:
        try:
            yaml_guard(claim_path, data)
            m = load(claim_path, allowed_workflows=tuple(ALLOWED_WORKFLOWS))
            stars = [s.to_cwl() for s in m.stars]
            cols.update(state="queued", observation_id=m.observation_id, n_stars=len(stars),
                        stars_json=dumps(stars), workflow=m.workflow)
            suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in \
                MANIFEST_SUFFIXES else ".yaml"
            copy = state_dir / "manifests" / f"{sha}{suffix}"
            if not copy.exists():
                copy.parent.mkdir(parents=True, exist_ok=True)
                tmp = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, copy)
            cols["stored_copy"] = str(copy)
        except InputError as exc:
            reason = f"{shown}: {exc.problem}"
        except Exception as exc:  # never let one manifest stop the service
            reason = f"{shown}: internal error while validating: {type(exc).__name__}: " \
                     f"{' '.join(str(exc).split())[:300]}"
    if reason is not None:
        cols.update(state="finalizing", outcome="failed", reason=reason[:2000])
    with ledger.tx() as db:
        if row_id is None:
            row_id = ledger.insert_manifest(db, **cols)
        else:
            ledger.update(db, "manifests", row_id, **cols)
        if cols["state"] == "finalizing":
            ledger.update(db, "manifests", row_id, dest=choose_dest(ledger, inbox, name, row_id,
                                                                    "failed"))
        if in_tx is not None:
            in_tx(db)
    return row_id


def choose_dest(ledger: Ledger, inbox: Path, name: str, row_id: int, outcome: str) -> str:
    """INBOX/<outcome>/<name>, or <stem>.<row id><suffix> when that name is taken."""
    folder = inbox / outcome
    cand = folder / name
    taken = ledger.one("SELECT 1 FROM manifests WHERE dest=? AND id!=?", str(cand), row_id)
    if taken or cand.exists() or cand.is_symlink() or \
            Path(str(cand) + ".reason").exists():
        p = Path(name)
        cand = folder / f"{p.stem}.{row_id}{p.suffix}"
    return str(cand)
