"""Dataset-lines mode (Airflow's data-aware scheduling): each line appended to a dataset file is
a star; new lines are batched into observations.

Line format: ``star_id, lightcurve[, teff[, logg[, feh]]]`` (commas or whitespace; ``#`` comments,
blank lines and a ``star_id,...`` header are skipped; ``-``/``nan``/empty = not given). Several
files of one star (quarters, sectors) are one field joined by ``;``:
``KIC11442793, q3.fits;q4.fits;q5.fits, 6080``. Light-curve paths are relative to the dataset
file's folder, with the manifest's rules (no ``..``, no absolute path, no symlink escape).
Only complete lines (ending in a newline) count. New lines become an observation
``<dataset stem>-L<first>-<last>`` (line numbers; at most --max-stars stars, a repeated star id
starts the next one) written as a manifest beside the dataset (hidden name) and taken
through the same intake as an inbox manifest. A bad line goes to INBOX/failed/ with its reason.
The byte offset consumed is stored in the ledger in the same transaction as what it produced.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stellarflow.errors import InputError
from stellarflow.manifest import resolve_lightcurve, validate_document

from . import CLAIM_PREFIX
from .intake import choose_dest, register
from .ledger import now

if TYPE_CHECKING:
    from .service import Service

OPTIONAL = ("teff", "logg", "feh")
LIST_SEPARATOR = ";"  # several light-curve files of one star in one field


def parse_line(dataset: Path, text: str) -> dict[str, Any]:
    """One star record from a line; InputError (one line) when it is not valid."""
    fields = [f.strip() for f in (text.split(",") if "," in text else text.split())]
    if len(fields) < 2 or len(fields) > 5:
        raise InputError(dataset, f"expected 'star_id, lightcurve[, teff[, logg[, feh]]]', "
                                  f"got {len(fields)} field(s)")
    files = [part.strip() for part in fields[1].split(LIST_SEPARATOR)]
    if len(files) > 1 and not all(files):
        raise InputError(dataset, f"empty file name in the list {fields[1]!r} (files are joined "
                                  f"by '{LIST_SEPARATOR}')")
    star: dict[str, Any] = {"star_id": fields[0],
                            "lightcurve": files if len(files) > 1 else fields[1]}
    for key, val in zip(OPTIONAL, fields[2:], strict=False):
        if val.lower() in ("", "-", "nan"):
            continue
        try:
            num = float(val)
        except ValueError:
            raise InputError(dataset, f"{key} {val!r} is not a number") from None
        if not math.isfinite(num):
            raise InputError(dataset, f"{key} {val!r} is not finite")
        star[key] = num
    validate_document(dataset, {"manifest_version": 1, "observation_id": "line",
                                "workflow": "sas", "stars": [star]})
    for rel in (files if len(files) > 1 else [fields[1]]):
        resolve_lightcurve(dataset, rel)
    return star


class DatasetFeed:
    def __init__(self, svc: Service, path: Path) -> None:
        self.svc = svc
        self.path = path
        self.dirty = True
        self.pending_since: float | None = None
        self.stem = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem)[:40] or "dataset"

    def _row(self) -> tuple[int, int, int]:
        row = self.svc.ledger.one("SELECT inode, offset, line_no FROM datasets WHERE path=?",
                                  str(self.path))
        return (row[0], row[1], row[2]) if row else (-1, 0, 0)

    def _unread(self) -> tuple[bytes, int, int]:
        """(complete new lines, their start offset, line number before them)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return b"", 0, 0
        inode, offset, line_no = self._row()
        if inode != st.st_ino or st.st_size < offset:
            if inode != -1:
                self.svc_log(f"{self.path}: replaced or truncated; reading it from the start")
            with self.svc.ledger.tx() as db:
                db.execute("INSERT OR REPLACE INTO datasets (path, inode, offset, line_no) "
                           "VALUES (?,?,0,0)", (str(self.path), st.st_ino))
            offset, line_no = 0, 0
        if st.st_size == offset:
            return b"", offset, line_no
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(st.st_size - offset)
        end = data.rfind(b"\n")
        return (data[: end + 1] if end >= 0 else b""), offset, line_no

    def svc_log(self, msg: str) -> None:
        import logging

        logging.getLogger("stellarflow.trigger").warning(msg)

    def has_pending(self) -> bool:
        return bool(self._unread()[0])

    def poll(self, flush: bool) -> None:
        data, offset, line_no = self._unread()
        if not data:
            self.pending_since = None
            return
        if self.pending_since is None:
            self.pending_since = time.monotonic()
        n_lines = data.count(b"\n")
        if not flush and n_lines < self.svc.cfg.max_stars and \
                time.monotonic() - self.pending_since < self.svc.cfg.max_wait:
            return
        self.pending_since = None
        self.consume(data, offset, line_no)

    def consume(self, data: bytes, offset: int, line_no: int) -> None:
        group: list[tuple[int, dict[str, Any]]] = []
        bad: list[tuple[int, str, str]] = []
        ids: set[str] = set()
        pos = offset
        for raw in data.splitlines(keepends=True):
            if group and len(group) >= self.svc.cfg.max_stars:
                self.emit(group, bad, pos, line_no)
                group, bad, ids = [], [], set()
            line_no += 1
            text = raw.decode("utf-8", errors="replace").strip()
            star = None
            if text and not text.startswith("#") and not text.lower().startswith("star_id"):
                try:
                    star = parse_line(self.path, text)
                except InputError as exc:
                    bad.append((line_no, text, exc.problem))
            if star is not None and star["star_id"] in ids:
                self.emit(group, bad, pos, line_no - 1)
                group, bad, ids = [], [], set()
            if star is not None:
                group.append((line_no, star))
                ids.add(star["star_id"])
            pos += len(raw)
        self.emit(group, bad, pos, line_no)

    def emit(self, group: list[tuple[int, dict[str, Any]]], bad: list[tuple[int, str, str]],
             end_offset: int, end_line: int) -> None:
        """Commit one range of lines: its observation (if any), its bad lines, the offset."""
        svc, folder = self.svc, self.path.parent
        rejected = []
        for n, text, problem in bad:
            name = f"{self.path.name}.line{n}.txt"
            claim = folder / f"{CLAIM_PREFIX}ds.{self.stem}.line{n}.txt"
            claim.write_text(text[:4096] + "\n")
            rejected.append((name, claim, f"{self.path}:{n}: {problem}"))

        def in_tx(db: Any) -> None:
            for name, claim, reason in rejected:
                cur = db.execute(
                    "INSERT INTO manifests (sha256, name, source, home, claim_path, state, "
                    "outcome, reason, received_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    ("-", name, "dataset", str(folder), str(claim), "finalizing", "failed",
                     reason, now()))
                db.execute("UPDATE manifests SET dest=? WHERE id=?",
                           (choose_dest(svc.ledger, svc.cfg.inbox, name, cur.lastrowid,
                                        "failed"), cur.lastrowid))
            db.execute("UPDATE datasets SET offset=?, line_no=? WHERE path=?",
                       (end_offset, end_line, str(self.path)))

        if not group:
            with svc.ledger.tx() as db:
                in_tx(db)
            return
        obs = f"{self.stem}-L{group[0][0]}-{group[-1][0]}"
        doc = {"manifest_version": 1, "observation_id": obs, "workflow": "sas",
               "stars": [s for _, s in group]}
        claim = folder / f"{CLAIM_PREFIX}ds.{obs}.json"
        tmp = folder / f".{claim.name}.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, claim)
        register(svc.ledger, claim, name=f"{obs}.json", home=folder, source="dataset",
                 state_dir=svc.cfg.state, inbox=svc.cfg.inbox, in_tx=in_tx)

    def recover(self, known: set[str]) -> None:
        """Generated files never committed are dropped: their lines are read again."""
        for p in self.path.parent.glob(f"{CLAIM_PREFIX}ds.{self.stem}*"):
            if str(p) not in known:
                p.unlink(missing_ok=True)
