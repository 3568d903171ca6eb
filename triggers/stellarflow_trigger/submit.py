"""Intake of manifests that arrive as bytes, not files: the WES API and NATS.

Both resolve light-curve paths under a data root (as if the manifest lay there), validate with the
same code as `stellarflow run` and the inbox, and are exactly-once by content hash: a content
already in the ledger gives back its first row instead of a new one. The check and the insert
are one IMMEDIATE transaction, so two identical submissions at once still make one row.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from stellarflow.errors import InputError
from stellarflow.manifest import MANIFEST_SUFFIXES, load_bytes, yaml_guard
from stellarflow.paths import ALLOWED_WORKFLOWS

from .ledger import Ledger, dumps, now

# Light-curve fields a CWL job's star may carry besides star_id and lightcurve.
STAR_FIELDS = ("teff", "logg", "feh")


@dataclass
class Submitted:
    manifest_id: int
    created: bool  # False: the same content was already in the ledger (this is its row)
    sha256: str


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def location_to_relative(data_root: Path, location: str, where: str) -> str:
    """A CWL File location (file:// URL or path) -> a path relative to ``data_root``.

    InputError when it is another scheme or resolves (symlinks included) outside the root.
    """
    if not isinstance(location, str) or not location:
        raise InputError(None, f"{where}: File location must be a non-empty string")
    if "\x00" in location:
        raise InputError(None, f"{where}: File location contains a NUL byte")
    parts = urlsplit(location)
    if parts.scheme and parts.scheme != "file":
        raise InputError(None, f"{where}: only file locations under the data root are accepted, "
                               f"not {parts.scheme}:")
    if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
        raise InputError(None, f"{where}: file URL names host {parts.netloc!r}")
    raw = unquote(parts.path) if parts.scheme else location
    if "\x00" in raw:
        raise InputError(None, f"{where}: File location contains a NUL byte")
    root = data_root.resolve()
    path = Path(raw)
    target = (path if path.is_absolute() else root / path).resolve()
    if target != root and root not in target.parents:
        raise InputError(None, f"{where}: {location!r} is outside the data root")
    return str(target.relative_to(root))


def job_to_manifest(job: dict[str, Any], workflow: str, data_root: Path) -> dict[str, Any]:
    """A CWL job for the SAS workflow (what WES clients send) -> a manifest document."""
    if not isinstance(job, dict):
        raise InputError(None, "workflow_params must be a JSON object")
    stars = job.get("stars")
    if not isinstance(stars, list):
        raise InputError(None, "workflow_params.stars must be a list of star records")
    out = []
    for i, rec in enumerate(stars):
        if not isinstance(rec, dict):
            raise InputError(None, f"workflow_params.stars[{i}] must be an object")
        lc = rec.get("lightcurve")
        if not isinstance(lc, dict) or lc.get("class") != "File":
            raise InputError(None, f"workflow_params.stars[{i}].lightcurve must be a CWL File")
        loc = lc.get("location", lc.get("path"))
        star = {"star_id": rec.get("star_id"),
                "lightcurve": location_to_relative(data_root, loc,
                                                   f"workflow_params.stars[{i}].lightcurve")}
        unknown = set(rec) - {"star_id", "lightcurve", "input_error", *STAR_FIELDS}
        if unknown:
            raise InputError(None, f"workflow_params.stars[{i}]: unknown field(s) "
                                   f"{', '.join(sorted(unknown))}")
        star.update({k: rec[k] for k in STAR_FIELDS if k in rec})
        out.append(star)
    unknown = set(job) - {"observation_id", "stars", "chunk_size"}
    if unknown:
        raise InputError(None, f"workflow_params: unknown field(s) {', '.join(sorted(unknown))}")
    return {"manifest_version": 1, "observation_id": job.get("observation_id"),
            "workflow": workflow, "stars": out}


def validate(raw: bytes, name: str, data_root: Path) -> Any:
    """stellarflow.manifest validation of ``raw`` as if it were DATA_ROOT/<name>."""
    virtual = data_root.resolve() / name
    yaml_guard(virtual, raw)
    return load_bytes(virtual, raw, allowed_workflows=tuple(ALLOWED_WORKFLOWS))


def record(ledger: Ledger, raw: bytes, *, sha: str, name: str, data_root: Path, source: str,
           state_dir: Path, reject_invalid: bool = True, reason: str | None = None) -> Submitted:
    """Validate and insert a queued manifest row (or find the row this content already has).

    ``reject_invalid``: raise InputError for a bad manifest (the API answers 400, nothing is
    recorded); else record it as a failed row with its reason (NATS: the message is then
    terminated, and the ledger says why). ``reason``: refuse it for this reason, unvalidated.
    """
    try:
        if reason is not None:  # refused before validation (the caller says why)
            raise InputError(None, reason)
        m = validate(raw, name, data_root)
        stars = [s.to_cwl() for s in m.stars]
    except InputError as exc:
        if reject_invalid:
            raise
        m, stars, reason = None, [], f"{name}: {exc.problem}"
    suffix = Path(name).suffix.lower()
    copy = state_dir / "manifests" / f"{sha}{suffix if suffix in MANIFEST_SUFFIXES else '.json'}"
    if m is not None and not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, copy)
    with ledger.tx() as db:
        original = db.execute("SELECT id FROM manifests WHERE sha256=? AND source!='backfill' "
                              "AND duplicate_of IS NULL ORDER BY id LIMIT 1", (sha,)).fetchone()
        if original is not None:
            return Submitted(int(original[0]), False, sha)
        cols: dict[str, Any] = {"sha256": sha, "name": name, "source": source,
                                "home": str(data_root.resolve()), "received_at": now()}
        if m is not None:
            cols.update(state="queued", observation_id=m.observation_id, n_stars=len(stars),
                        stars_json=dumps(stars), stored_copy=str(copy), workflow=m.workflow)
        else:
            cols.update(state="failed", outcome="failed", reason=(reason or "")[:2000],
                        finished_at=now())
        mid = ledger.insert_manifest(db, **cols)
    return Submitted(mid, True, sha)
