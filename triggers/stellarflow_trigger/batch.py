"""Micro-batching: several manifests -> one CWL job (one Toil run) -> outputs split back.

A run that holds one manifest keeps its observation_id and star ids unchanged. A run that merges
k > 1 manifests is observation ``batch-<run id>``; star ids are rewritten ``m<k>-<star_id>``
(k = the manifest's index in the run; ``m<k>-h<sha1>`` when that would pass 64 characters), an
injective mapping kept in the run's batch.json. After the run, the catalogue is split back per
manifest (original star ids restored) into OUTDIR/<observation_id>/catalogue.ecsv, per-star
products named after a star id move with their star (renamed back), and run-wide files (the report)
get a per-observation report.html (the catalogue module's write_report); a chunk's prepared light
curves (``<chunk_id>.prepared.h5``, which the products' light curves link to by that name) go,
under the same name and cut down to its stars, to each observation with stars in the chunk; any
other run-wide file is copied into every observation's folder under a ``batch-`` prefix. Each
observation gets its own RO-Crate of its share of the run (stellarflow.provenance.member_crate).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from stellarflow.manifest import ID_RE
from stellarflow.provenance import METADATA, PROV_DIR, member_crate


def batch_star_id(k: int, star_id: str) -> str:
    bid = f"m{k}-{star_id}"
    if len(bid) > 64:
        bid = f"m{k}-h{hashlib.sha1(star_id.encode()).hexdigest()[:20]}"
    assert ID_RE.fullmatch(bid), bid
    return bid


def build(run_id: int, members: list[dict[str, Any]], chunk_size: int) -> dict[str, Any]:
    """members: ledger rows (id, observation_id, stars_json). Returns the content of batch.json."""
    single = len(members) == 1
    stars: list[dict[str, Any]] = []
    out_members = []
    for k, m in enumerate(members):
        ids: dict[str, str] = {}
        for rec in json.loads(m["stars_json"]):
            bid = rec["star_id"] if single else batch_star_id(k, rec["star_id"])
            ids[bid] = rec["star_id"]
            stars.append({**rec, "star_id": bid})
        out_members.append({"manifest_id": m["id"], "observation_id": m["observation_id"],
                            "star_ids": ids})
    obs = members[0]["observation_id"] if single else f"batch-{run_id:06d}"
    return {"run_id": run_id, "observation_id": obs, "members": out_members,
            "workflow": members[0].get("workflow") or "sas",
            "job": {"observation_id": obs, "chunk_size": int(chunk_size), "stars": stars}}


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _owner(name: str, ids: dict[str, tuple[int, str]]) -> tuple[int, str, str] | None:
    """(member index, original id, renamed file name) when ``name`` is named after a star."""
    best = None
    for bid, (k, orig) in ids.items():
        hit = name == bid or (name.startswith(bid) and name[len(bid)] in "._")
        if hit and (best is None or len(bid) > len(best[0])):
            best = (bid, k, orig)
    if best is None:
        return None
    bid, k, orig = best
    return k, orig, orig + name[len(bid):]


def _unmap(text: str, star_ids: dict[str, str]) -> str:
    for bid in sorted(star_ids, key=len, reverse=True):
        text = text.replace(bid, star_ids[bid])
    return text


PREPARED_SUFFIX = ".prepared.h5"  # MSAP1's chunk files: the products' light curves link in


def split_prepared(src: Path, members: list[dict[str, Any]], tmp: Path) -> list[str]:
    """Each member with stars in the chunk file ``src`` gets a copy of it, under the same name
    (its products' external links name it), holding only its own stars (batch ids kept: the
    links' paths use them). Returns the batch ids of the stars the file holds."""
    import h5py
    import numpy as np

    with h5py.File(src, "r") as f:
        order = [str(b) for b in f.attrs["star_ids"]] if "star_ids" in f.attrs else list(f["stars"])
        held = [bid for bid in order if bid in f["stars"]]
        for m in members:
            mine = [bid for bid in held if bid in m["star_ids"]]
            if not mine:
                continue
            with h5py.File(tmp / m["observation_id"] / src.name, "w") as out:
                out.attrs.update(f.attrs)
                out.attrs["star_ids"] = np.array(mine, dtype=h5py.string_dtype())
                stars = out.create_group("stars")
                for bid in mine:
                    f.copy(f["stars"][bid], stars, name=bid)
                if "n_seismic_candidates" in f.attrs:  # a chunk-wide count: recount for mine
                    out.attrs["n_seismic_candidates"] = sum(
                        int(g.attrs.get("seismic_candidate", 0)) for g in stars.values()
                        if g.attrs.get("status") == "ok")
    return held


def split(batch: dict[str, Any], final: Path, split_dir: Path) -> None:
    """Write per-observation folders split_dir/<observation_id>/ from a merged run's outputs."""
    import numpy as np
    from astropy.table import MaskedColumn
    from catalogue import write_report  # the catalogue module's report (installed in the venv)

    from stellarflow_contracts.catalogue import read_catalogue

    members = batch["members"]
    ids = {bid: (k, orig) for k, m in enumerate(members) for bid, orig in m["star_ids"].items()}
    tmp = split_dir.with_name(split_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for m in members:
        (tmp / m["observation_id"]).mkdir(parents=True)
    lc_file: dict[str, str] = {}  # batch star id -> its prepared chunk file (the report's LC link)
    for path in sorted(final.glob(f"*{PREPARED_SUFFIX}")):
        if path.is_file():
            lc_file.update(dict.fromkeys(split_prepared(path, members, tmp), path.name))
    catalogue = final / "catalogue.ecsv"
    if catalogue.exists():
        table = read_catalogue(catalogue)
        col = [str(s) for s in table["star_id"]]
        for m in members:
            rows = [i for i, s in enumerate(col) if s in m["star_ids"]]
            sub = table[rows]
            sub["star_id"] = [m["star_ids"][col[i]] for i in rows]
            if "error" in sub.colnames:  # messages may name the star by its batch id
                errs = [None if e is np.ma.masked else _unmap(str(e), m["star_ids"])
                        for e in sub["error"]]
                sub["error"] = MaskedColumn([e or "" for e in errs],
                                            mask=[e is None for e in errs],
                                            description=sub["error"].description)
            sub.meta = dict(table.meta)
            sub.meta["observation_id"] = m["observation_id"]
            sub.meta["merged_run"] = batch["observation_id"]
            folder = tmp / m["observation_id"]
            sub.write(folder / "catalogue.ecsv", format="ascii.ecsv")
            write_report(folder / "report.html", sub, m["observation_id"],
                         lightcurve_file={orig: lc_file[bid] for bid, orig in m["star_ids"].items()
                                          if bid in lc_file})
    for entry in sorted(final.iterdir()):
        if entry.name in ("catalogue.ecsv", "report.html", METADATA, PROV_DIR):
            continue  # the crate: one per observation, below
        if entry.name.endswith(PREPARED_SUFFIX) and entry.is_file():
            continue  # split above
        owner = _owner(entry.name, ids)
        if owner is not None:
            k, _, new_name = owner
            dest = tmp / members[k]["observation_id"] / new_name
            (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, dest)
            continue
        for m in members:  # run-wide file: every observation gets a copy
            dest = tmp / m["observation_id"] / f"batch-{entry.name}"
            (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, dest)
    for m in members:  # each observation's own RO-Crate of its share of the run
        member_crate(split_dir.parent, tmp / m["observation_id"], m["observation_id"],
                     m["star_ids"], batch["observation_id"])
    os.replace(tmp, split_dir)


def publish(split_dir: Path, outdir: Path, replaced_dir: Path) -> dict[str, str]:
    """Move each split_dir/<obs> to outdir/<obs> (an older result is moved to replaced_dir).

    Idempotent: a folder already moved is skipped, so a crash half-way is finished by a rerun.
    """
    published = {}
    outdir.mkdir(parents=True, exist_ok=True)
    for src in sorted(split_dir.iterdir()) if split_dir.exists() else []:
        dest = outdir / src.name
        if dest.exists():
            replaced_dir.mkdir(parents=True, exist_ok=True)
            os.replace(dest, replaced_dir / f"{src.name}-{time.strftime('%Y%m%dT%H%M%S')}"
                                            f"-{time.time_ns() % 10**9}")
        os.replace(src, dest)
    for name in json.loads((split_dir.parent / "batch.json").read_text())["members"]:
        published[name["observation_id"]] = str(outdir / name["observation_id"])
    return published
