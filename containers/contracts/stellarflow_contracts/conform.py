"""Check a file against its contract (the JSON specs in ``specs/``).

``check_chunk(path)`` returns the problems of a chunk file, one line each (empty: it conforms):
the chunk contract's root attrs, one group per star of ``star_ids``, each star's ``status``,
``error`` and ``cpu_s``, and for a star that is ok and has no ``note`` every attr and dataset
its stage's spec requires, with its dtype and, on datasets, its ``units`` attribute (a spec
``units`` of null: any value, e.g. raw flux in the source's own unit).
``python -m stellarflow_contracts.conform FILE...`` prints them and exits 1 if there are any.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import h5py
import numpy as np

ROOT_ATTRS = ("chunk_id", "observation_id", "stage", "module", "module_version",
              "contracts_version", "image", "host", "created_utc")
STATUSES = ("ok", "failed")


@cache
def spec(stage: str) -> dict[str, Any]:
    """The contract of one chunk stage (``specs/chunk-<stage>.json``); KeyError if none."""
    try:
        text = resources.files(__package__).joinpath(f"specs/chunk-{stage}.json").read_text()
    except FileNotFoundError:
        raise KeyError(stage) from None
    return json.loads(text)


def stages() -> list[str]:
    """Every chunk stage that has a contract."""
    names = (p.name for p in resources.files(__package__).joinpath("specs").iterdir())
    return sorted(n[len("chunk-"):-len(".json")] for n in names
                  if n.startswith("chunk-") and n.endswith(".json"))


def _dtype_ok(value: Any, want: str) -> bool:
    if want == "str":
        return isinstance(value, (str, bytes))
    kind = np.asarray(value).dtype.kind
    return kind in ("iu" if want == "int" else "f")


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def check_star(g: h5py.Group, sid: str, contract: dict[str, Any]) -> list[str]:
    problems = []
    status = _text(g.attrs.get("status", ""))
    if status not in STATUSES:
        problems.append(f"star {sid}: status {status!r}, expected one of {', '.join(STATUSES)}")
    for key, want in (("error", "str"), ("cpu_s", "float")):
        if key not in g.attrs or not _dtype_ok(g.attrs[key], want):
            problems.append(f"star {sid}: attr {key!r} missing or not {want}")
    if status == "failed":
        if not _text(g.attrs.get("error", "")):
            problems.append(f"star {sid}: failed without an error message")
        if len(g.keys()):
            problems.append(f"star {sid}: failed but holds data ({', '.join(g.keys())})")
        return problems
    if status != "ok" or "note" in g.attrs:
        return problems
    for key, a in contract["star_attrs"].items():
        if key not in g.attrs:
            if a.get("required", True):
                problems.append(f"star {sid}: attr {key!r} missing ({a['dtype']})")
        elif not _dtype_ok(g.attrs[key], a["dtype"]):
            problems.append(f"star {sid}: attr {key!r} is {np.asarray(g.attrs[key]).dtype}, "
                            f"expected {a['dtype']}")
    # A star whose arrays stay in its input file (a reference, contracts 1.3.0) has none here.
    held_by = contract.get("datasets_in_input_when_attr")
    elsewhere = bool(held_by) and held_by in g.attrs
    for name, d in contract["star_datasets"].items():
        obj = g.get(name)
        if obj is None:
            if d.get("required", True) and not elsewhere:
                problems.append(f"star {sid}: dataset {name!r} missing ({d['dtype']})")
            continue
        if not isinstance(obj, h5py.Dataset):
            problems.append(f"star {sid}: {name!r} is not a dataset")
            continue
        if str(obj.dtype) != d["dtype"]:
            problems.append(f"star {sid}: dataset {name!r} is {obj.dtype}, expected {d['dtype']}")
        units = obj.attrs.get("units")
        if units is None or (d["units"] is not None and _text(units) != d["units"]):
            got = "no units attribute" if units is None else f"units {_text(units)!r}"
            problems.append(f"star {sid}: dataset {name!r} has {got}, expected {d['units']!r}")
    return problems


def check_chunk(path: str | Path, stage: str | None = None,
                contract: dict[str, Any] | None = None) -> list[str]:
    """Problems of a chunk file against its stage's contract (``stage`` None: its own attr).

    ``contract``: a module's own contract (same format as specs/), used for its stage when the
    library has none yet (a new module proposes its interface this way)."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        return [f"unreadable HDF5 ({exc})"]
    with f:
        problems = [f"root attr {k!r} missing" for k in ROOT_ATTRS if k not in f.attrs]
        stage = stage or _text(f.attrs.get("stage", ""))
        if _text(f.attrs.get("stage", "")) != stage:
            problems.append(f"root attr 'stage' is {_text(f.attrs.get('stage', ''))!r}, "
                            f"expected {stage!r}")
        try:
            contract = spec(stage)
        except KeyError:
            if not contract or contract.get("stage") != stage:
                return problems + [f"no contract for stage {stage!r} (known: "
                                   f"{', '.join(stages())})"]
        for key, want in contract["root_attrs"].items():
            if key not in f.attrs or not _dtype_ok(f.attrs[key], want):
                problems.append(f"root attr {key!r} missing or not {want}")
        if "stars" not in f or "star_ids" not in f.attrs:
            return problems + ["no /stars group or star_ids attr"]
        for sid in (_text(s) for s in f.attrs["star_ids"]):
            if sid not in f["stars"]:
                problems.append(f"star {sid}: listed in star_ids but has no /stars group")
                continue
            problems += check_star(f["stars"][sid], sid, contract)
        return problems


def main(argv: list[str] | None = None) -> int:
    paths = list(sys.argv[1:] if argv is None else argv)
    bad = 0
    for p in paths:
        for problem in check_chunk(p):
            print(f"{p}: {problem}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
