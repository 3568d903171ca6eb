"""Fake-module interface files (dummy_pipeline/modules/<name>.yaml): load and validate (the
schema and its defaults are the fake module's own: containers/fake_module/fake_module/spec.py).

A file declares what a module will read and write before its code exists: HDF5 inputs (with
datasets they must hold and secondary files), parameters, outputs (datasets, attributes, an
optional checksum sidecar) and resources. The generator turns it into a CWL tool; the fake
module program reads the same declaration at run time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fake_module.spec import normalise
from ruamel.yaml import YAML

from stellarflow.errors import InputError


def modules_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "modules"


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(path, f"cannot read fake-module declaration ({exc.strerror})") from None
    try:
        data = YAML(typ="safe").load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is one line for the user
        raise InputError(path, f"not valid YAML/JSON: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(data, dict):
        raise InputError(path, "a fake-module declaration is a mapping")
    spec = normalise(data, path)
    if path.stem != spec["name"]:
        raise InputError(path, f"file name must be <name>.yaml (name is {spec['name']!r})")
    return spec


def load_all(folder: Path | None = None) -> list[dict[str, Any]]:
    folder = folder or modules_dir()
    return [load(p) for p in sorted(folder.glob("*.yaml"))]
