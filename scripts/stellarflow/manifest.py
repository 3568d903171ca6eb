"""Observation manifests: load, validate (schema: stellarflow_contracts), turn into CWL jobs.

Manifest-level problems (syntax, schema, ids, duplicates, paths leaving the manifest's folder)
raise InputError before any work starts. A light curve that is merely missing or unreadable is a
star-level problem: the star is kept with ``input_error`` set and becomes a failed catalogue row.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import InputError

ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_YAML_NODES = 200_000


@dataclass
class Star:
    star_id: str
    # resolved absolute path, or a list of them (several files of one star); None when
    # input_error is set
    lightcurve: Path | list[Path] | None
    teff: float | None = None
    logg: float | None = None
    feh: float | None = None
    input_error: str | None = None

    def to_cwl(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"star_id": self.star_id}
        if isinstance(self.lightcurve, list):
            rec["lightcurve"] = [{"class": "File", "location": p.as_uri()}
                                 for p in self.lightcurve]
        elif self.lightcurve is not None:
            rec["lightcurve"] = {"class": "File", "location": self.lightcurve.as_uri()}
        for key in ("teff", "logg", "feh", "input_error"):
            value = getattr(self, key)
            if value is not None:
                rec[key] = value
        return rec


@dataclass
class Manifest:
    path: Path
    observation_id: str
    workflow: str
    stars: list[Star] = field(default_factory=list)

    def cwl_job(self, chunk_size: int) -> dict[str, Any]:
        return {
            "observation_id": self.observation_id,
            "chunk_size": int(chunk_size),
            "stars": [s.to_cwl() for s in self.stars],
        }


def schema() -> dict[str, Any]:
    text = resources.files("stellarflow_contracts").joinpath("manifest.schema.json").read_text()
    return json.loads(text)


def yaml_guard(path: Path, data: bytes) -> None:
    """Refuse a YAML alias bomb before load(): aliases share nodes, but validating (and the
    validator's messages) walk the expanded tree - 9 lines of anchors can take minutes."""
    if path.suffix.lower() == ".json":
        return
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    try:
        root = YAML(typ="safe").compose(io.StringIO(data.decode("utf-8")))
    except Exception:  # syntax, encoding, nesting: load() gives its own one-line reason
        return
    memo: dict[int, int] = {}

    def size(node: Any) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = 1  # a node reached again through itself counts once
        if isinstance(node, SequenceNode):
            n = 1 + sum(size(c) for c in node.value)
        elif isinstance(node, MappingNode):
            n = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            n = 1
        memo[key] = n
        return n

    try:
        n = size(root) if root is not None else 0
    except RecursionError:
        raise InputError(path, "YAML nested too deeply") from None
    if n > MAX_YAML_NODES:
        raise InputError(path, f"YAML expands to {n} nodes through anchors/aliases (more than "
                               f"{MAX_YAML_NODES}: an alias bomb?)")


def _parse(path: Path, raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"invalid JSON: {exc.msg} (line {exc.lineno})") from None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml_guard(path, raw)
    yaml = YAML(typ="safe")  # libyaml's parser (ruamel.yaml.clib): manifests list 10^4-10^5 stars
    try:
        return yaml.load(io.StringIO(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(path, f"invalid YAML: {problem}{where}") from None


def _where(error: Any) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p)))
    return "".join(parts) or "(top level)"


def validate_document(path: Path, doc: Any) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        msg = e.message if len(e.message) < 200 else e.message[:200] + "..."
        raise InputError(path, f"manifest invalid at {_where(e)}: {msg}{more}")
    # JSON Schema's '$' also matches before a trailing newline: check ids exactly.
    if not ID_RE.fullmatch(doc["observation_id"]):
        raise InputError(path, f"observation_id {doc['observation_id']!r} must match "
                               "[A-Za-z0-9._-]{1,64}")
    seen: set[str] = set()
    for i, star in enumerate(doc["stars"]):
        sid = star["star_id"]
        if not ID_RE.fullmatch(sid):
            raise InputError(path, f"stars[{i}].star_id {sid!r} must match [A-Za-z0-9._-]{{1,64}}")
        if sid in seen:
            raise InputError(path, f"duplicate star_id {sid!r} (stars[{i}])")
        seen.add(sid)


def resolve_lightcurve(manifest_path: Path, rel: str) -> Path:
    """Resolve a manifest's light-curve path; InputError if it could leave the manifest's folder."""
    if "\x00" in rel:
        raise InputError(manifest_path, f"light-curve path {rel!r} contains a NUL byte")
    p = Path(rel)
    if p.is_absolute() or rel.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", rel):
        raise InputError(manifest_path, f"light-curve path {rel!r} is absolute; "
                                        "paths must be relative to the manifest's folder")
    if ".." in p.parts or ".." in rel.replace("\\", "/").split("/"):
        raise InputError(manifest_path, f"light-curve path {rel!r} contains '..'")
    base = manifest_path.parent.resolve()
    resolved = (base / p).resolve()
    if resolved != base and base not in resolved.parents:
        raise InputError(manifest_path, f"light-curve path {rel!r} resolves outside the "
                                        f"manifest's folder (symlink escape to {resolved})")
    return resolved


def load(path: str | os.PathLike[str], *,
         allowed_workflows: tuple[str, ...] = ("sas",)) -> Manifest:
    """Load and validate a manifest. Raises InputError (one line) on any manifest-level problem."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "manifest not found")
    if not p.is_file():
        raise InputError(p, "manifest is not a regular file")
    if p.suffix.lower() not in MANIFEST_SUFFIXES:
        raise InputError(p, f"manifest must end in {', '.join(MANIFEST_SUFFIXES)}")
    size = p.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise InputError(p, f"manifest is {size} bytes, more than the {MAX_MANIFEST_BYTES} allowed")
    if size == 0:
        raise InputError(p, "manifest is empty")
    return load_bytes(p, p.read_bytes(), allowed_workflows=allowed_workflows)


def load_bytes(path: str | os.PathLike[str], raw: bytes, *,
               allowed_workflows: tuple[str, ...] = ("sas",)) -> Manifest:
    """Validate a manifest given as bytes (a message, an API request) as if it were ``path``:
    light-curve paths resolve against ``path``'s folder, which need not hold the file."""
    p = Path(path)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise InputError(p, f"manifest is {len(raw)} bytes, more than the {MAX_MANIFEST_BYTES} "
                            "allowed")
    if not raw.strip():
        raise InputError(p, "manifest is empty")
    doc = _parse(p, raw)
    if not isinstance(doc, dict):
        raise InputError(p, f"manifest must be a mapping, got {type(doc).__name__}")
    wf = doc.get("workflow")
    if isinstance(wf, str) and wf not in allowed_workflows:
        raise InputError(p, f"unknown workflow {wf!r}; allowed: {', '.join(allowed_workflows)}")
    validate_document(p, doc)
    stars = []
    for s in doc["stars"]:
        rels = s["lightcurve"] if isinstance(s["lightcurve"], list) else [s["lightcurve"]]
        resolved = [resolve_lightcurve(p, rel) for rel in rels]
        if len(set(resolved)) < len(resolved):
            raise InputError(p, f"star {s['star_id']!r} lists one light-curve file twice")
        err = None
        for rel, lc in zip(rels, resolved, strict=True):
            if not lc.exists():
                err = f"{rel}: light curve not found"
            elif not lc.is_file():
                err = f"{rel}: light curve is not a regular file"
            elif not os.access(lc, os.R_OK):
                err = f"{rel}: light curve is not readable"
            if err:
                break
        chosen: Path | list[Path] | None = None
        if not err:
            chosen = resolved if isinstance(s["lightcurve"], list) else resolved[0]
        stars.append(Star(
            star_id=s["star_id"], lightcurve=chosen,
            teff=s.get("teff"), logg=s.get("logg"), feh=s.get("feh"), input_error=err,
        ))
    return Manifest(path=p, observation_id=doc["observation_id"], workflow=doc["workflow"],
                    stars=stars)
