"""`stellarflow lineage PATH [--star ID] [--json]`: the used-inputs tree of a product.

PATH is any output of a run with provenance: a per-star product HDF5 or figure, the catalogue
(``--star`` for one row) or the report. The tree comes from the run's RO-Crate
(``ro-crate-metadata.json`` beside it): the file, the tool run that made it (module, version,
image id and content hash, chunk, start, end), that run's inputs, the runs that made those, and
so on down to the raw light curves (with their SHA-256), keeping only the branches of the star
the product belongs to. Step details come from the crate's ``provenance/profile.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import InputError
from .provenance import METADATA, PROV_DIR


def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [v["@id"] for v in values if isinstance(v, dict) and "@id" in v]


def _types(ent: dict) -> list[str]:
    t = ent.get("@type")
    return t if isinstance(t, list) else [t]


class Crate:
    """The crate's graph, indexed for lineage: which tool run made which file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        doc = json.loads((root / METADATA).read_text())
        self.graph = {e["@id"]: e for e in doc.get("@graph") or []}
        tools = {i for i, e in self.graph.items() if "SoftwareApplication" in _types(e)}
        self.maker: dict[str, str] = {}  # file id -> id of the tool run that made it
        for aid, e in self.graph.items():
            if "CreateAction" in _types(e) and set(_ids(e.get("instrument"))) & tools:
                for fid in _ids(e.get("result")):
                    self.maker.setdefault(fid, aid)
        self.lines: dict[tuple[str | None, str], dict] = {}
        prof = root / PROV_DIR / "profile.jsonl"
        if prof.is_file():
            for text in prof.read_text().splitlines():
                if text.strip():
                    ln = json.loads(text)
                    self.lines[(ln.get("chunk"), ln.get("step"))] = ln
        self.chunks: dict[str, list[str]] = {}
        for e in self.graph.values():
            if "PropertyValue" in _types(e) and e.get("name") == "chunks":
                try:
                    self.chunks = json.loads(e.get("value") or "{}")
                except json.JSONDecodeError:
                    pass

    def chunk_of(self, aid: str) -> str | None:
        return next((c for c in self.chunks if f"-{c}-" in aid), None)

    def step_of(self, aid: str) -> dict:
        chunk = self.chunk_of(aid)
        step = aid.rsplit(f"-{chunk}-", 1)[-1] if chunk else aid.rsplit("-run-", 1)[-1]
        return self.lines.get((chunk, step), {})

    def node(self, fid: str, star: str | None, seen: set[str]) -> dict:
        ent = self.graph.get(fid, {"@id": fid})
        out: dict[str, Any] = {"file": ent.get("name") or fid, "id": fid}
        for key in ("sha256", "contentSize", "identifier"):
            if ent.get(key):
                out[key] = ent[key]
        if fid.startswith("file://"):
            out["raw_input"] = True
        aid = self.maker.get(fid)
        if aid is None:
            return out
        if fid in seen:
            out["see_above"] = True
            return out
        seen.add(fid)
        act = self.graph[aid]
        line = self.step_of(aid)
        made = {"tool": act["instrument"]["@id"].rsplit("#", 1)[-1].removesuffix(".cwl"),
                "step": line.get("step"), "chunk": self.chunk_of(aid),
                "module": line.get("module"), "module_version": line.get("module_version"),
                "image": line.get("image"), "image_digest": line.get("image_digest"),
                "start": act.get("startTime"), "end": act.get("endTime")}
        for img in _ids(act.get("containerImage")):
            made["image_id"] = self.graph.get(img, {}).get("sha256")
        if line.get("fake_of"):
            made["fake_of"] = line["fake_of"]
        used = []
        for oid in _ids(act.get("object")):
            o = self.graph.get(oid, {})
            if star and o.get("identifier") and o["identifier"] != star:
                continue  # another star's light curve
            if star and self.maker.get(oid) and not self._has_star(self.maker[oid], star):
                continue  # another chunk's rows
            used.append(self.node(oid, star, seen))
        made["used"] = used
        out["made_by"] = made
        return out

    def _has_star(self, aid: str, star: str) -> bool:
        chunk = self.chunk_of(aid)
        return chunk is None or star in self.chunks.get(chunk, [])


def find_crate(path: Path) -> Path:
    for d in [path.parent if path.is_file() else path, *path.resolve().parents]:
        if (d / METADATA).is_file():
            return d
    raise InputError(path, f"no {METADATA} beside it or above it (not an output of a run with "
                           "provenance)")


def lineage(path: Path, star: str | None = None) -> dict:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    root = find_crate(path)
    crate = Crate(root)
    fid = path.resolve().relative_to(root.resolve()).as_posix()
    if fid not in crate.graph:
        raise InputError(path, f"not a file of the run's RO-Crate ({root / METADATA})")
    if star is None and path.suffix in (".h5", ".png"):
        star = path.name.split(".", 1)[0]
        if star not in {s for v in crate.chunks.values() for s in v}:
            star = None
    tree = crate.node(fid, star, set())
    if star:
        tree["star"] = star
    return tree


def render(node: dict, prefix: str = "", last: bool = True, top: bool = True) -> list[str]:
    digest = f"  sha256 {node['sha256'][:16]}..." if node.get("sha256") else ""
    where = f"  {node['id']}" if node.get("raw_input") else ""
    note = "  (see above)" if node.get("see_above") else ""
    star = f"  [star {node['star']}]" if node.get("star") else ""
    lines = [f"{prefix}{'' if top else ('└─ ' if last else '├─ ')}{node['file']}"
             f"{digest}{where}{star}{note}"]
    made = node.get("made_by")
    if not made:
        return lines
    child_prefix = prefix + ("" if top else ("   " if last else "│  "))
    img = made.get("image") or "no image"
    iid = f" id {made['image_id'][:12]}" if made.get("image_id") else ""
    content = f" content {made['image_digest'][:12]}" if made.get("image_digest") else ""
    fake = f" (fake of {made['fake_of']})" if made.get("fake_of") else ""
    lines.append(f"{child_prefix}└─ made by {made['tool']} ({made.get('module')} "
                 f"{made.get('module_version')}{fake}) on {made.get('chunk') or 'the run'}, "
                 f"{img}{iid}{content}, {made.get('start')} -> {made.get('end')}")
    used = made.get("used") or []
    for i, u in enumerate(used):
        lines += render(u, child_prefix + "   ", i == len(used) - 1, top=False)
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stellarflow lineage", description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="a product, figure, the catalogue or the report")
    p.add_argument("--star", help="one star's row of the catalogue (or report)")
    p.add_argument("--json", action="store_true", help="the tree as JSON")
    args = p.parse_args(argv)
    tree = lineage(args.path, args.star)
    if args.json:
        print(json.dumps(tree, indent=1))
    else:
        print("\n".join(render(tree)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
