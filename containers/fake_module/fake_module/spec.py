"""Fake-module interface declarations: the schema, and validation with defaults.

A declaration says what a fake module reads and writes before the real code exists (HDF5 inputs
with the datasets they must hold, parameters, outputs, resources, load to burn). The Dummy
Pipeline's generator (host side) turns YAML declarations into CWL tools; the fake module program
reads the same declaration, as JSON, at run time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from stellarflow_contracts.errors import InputError

NAME = "^[a-z][a-z0-9_]{0,63}$"
DATASET = {
    "type": "object",
    "properties": {
        "dtype": {"enum": ["float32", "float64", "int32", "int64", "uint8"]},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 4},
    },
    "required": ["dtype", "shape"],
    "additionalProperties": False,
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "doc", "outputs"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": NAME},
        "version": {"type": "string", "minLength": 1},
        "doc": {"type": "string", "minLength": 1},
        "container": {"type": "boolean"},
        "inputs": {"type": "array", "items": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": NAME},
                "array": {"type": "boolean"},
                "optional": {"type": "boolean"},
                "datasets": {"type": "array", "items": {"type": "string", "pattern": "^/"}},
                "secondary_files": {"type": "array", "items": {"enum": [".sha256"]}},
            }}},
        "parameters": {"type": "array", "items": {
            "type": "object", "required": ["name", "type"], "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": NAME},
                "type": {"enum": ["int", "float", "string"]},
                "default": {"type": ["integer", "number", "string"]},
            }}},
        "outputs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "file"], "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": NAME},
                "file": {"type": "string", "pattern": r"^[A-Za-z0-9._-]+\.(h5|json)$"},
                "datasets": {"type": "object", "additionalProperties": DATASET},
                "attributes": {"type": "object",
                               "additionalProperties": {"type": ["string", "number"]}},
                "fields": {"type": "array", "items": {"type": "string"}},
                "sidecar": {"enum": ["sha256"]},
            }}},
        "resources": {"type": "object", "additionalProperties": False, "properties": {
            "cores": {"type": "number", "exclusiveMinimum": 0},
            "ram_mb": {"type": "integer", "minimum": 16},
            "tmpdir_mb": {"type": "integer", "minimum": 1},
            "outdir_mb": {"type": "integer", "minimum": 1},
            "walltime_s": {"type": "integer", "minimum": 1},
            "gpus": {"type": "integer", "minimum": 0},
        }},
        "load": {"type": "object", "additionalProperties": False, "properties": {
            "cpu_seconds": {"type": "number", "minimum": 0},
            "memory_mb": {"type": "integer", "minimum": 0},
            "io_mb": {"type": "integer", "minimum": 0},
            "sleep": {"type": "number", "minimum": 0},
        }},
    },
}

RESOURCE_DEFAULTS = {"cores": 1, "ram_mb": 256, "tmpdir_mb": 64, "outdir_mb": 64,
                     "walltime_s": 600, "gpus": 0}
LOAD_DEFAULTS = {"cpu_seconds": 0.0, "memory_mb": 0, "io_mb": 0, "sleep": 0.0}


def normalise(spec: dict[str, Any], where: str | Path | None = None) -> dict[str, Any]:
    """Validate a declaration and fill in defaults (InputError names the first problem)."""
    try:
        jsonschema.validate(spec, SCHEMA)
    except jsonschema.ValidationError as exc:
        at = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise InputError(where, f"fake-module declaration invalid at {at}: {exc.message}") from None
    out = json.loads(json.dumps(spec))
    out.setdefault("container", True)
    out.setdefault("inputs", [])
    out.setdefault("parameters", [])
    out["resources"] = {**RESOURCE_DEFAULTS, **out.get("resources", {})}
    out["load"] = {**LOAD_DEFAULTS, **out.get("load", {})}
    names = [x["name"] for x in out["inputs"] + out["parameters"]]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InputError(where, f"input/parameter names used twice: {', '.join(sorted(dup))}")
    params = {p["name"] for p in out["parameters"]}
    for o in out["outputs"]:
        is_json = o["file"].endswith(".json")
        if is_json and o.get("datasets"):
            raise InputError(where, f"output {o['name']}: a .json output has no datasets")
        missing = [f for f in o.get("fields", []) if f not in params]
        if missing:
            raise InputError(where, f"output {o['name']}: fields {missing} are not parameters")
    return out
