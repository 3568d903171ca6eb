"""`stellarflow verify OUTDIR/<observation_id>`: recompute every checksum the run's RO-Crate holds.

Every File entity of ``ro-crate-metadata.json`` with a ``sha256`` is read again: the products in
the folder (catalogue, report, per-star product HDF5 and figures, the provenance files) and the
inputs outside it (the light curves, by their ``file://`` address). Exit 0 when all match; exit 1
with one line naming the first file that differs or is missing; exit 2 when there is no crate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from .errors import InputError
from .provenance import METADATA, sha256_file


def crate_files(crate_dir: Path) -> list[tuple[str, Path, str]]:
    """(crate id, path on this machine, sha256) of every File with a checksum, crate order."""
    meta = crate_dir / METADATA
    try:
        doc = json.loads(meta.read_text())
    except FileNotFoundError:
        raise InputError(crate_dir, f"no {METADATA} here (not the output folder of a run with "
                                    "provenance)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(meta, f"unreadable RO-Crate metadata ({exc})") from None
    out = []
    for ent in doc.get("@graph") or []:
        types = ent.get("@type")
        types = types if isinstance(types, list) else [types]
        digest = ent.get("sha256")
        if "File" not in types or not isinstance(digest, str):
            continue
        ident = ent["@id"]
        if ident.startswith("file://"):
            path = Path(unquote(urlparse(ident).path))
        elif "://" in ident or ident.startswith("#"):
            continue
        else:
            path = crate_dir / unquote(ident)
        out.append((ident, path, digest.lower()))
    return out


def verify(crate_dir: Path) -> tuple[int, str | None]:
    """(files checked, None) when every checksum matches, else (n, the first problem)."""
    files = crate_files(crate_dir)
    for n, (ident, path, digest) in enumerate(files, 1):
        if not path.is_file():
            return n, f"{path}: missing (crate entity {ident})"
        found = sha256_file(path)
        if found != digest:
            return n, f"{path}: SHA-256 differs from the crate (crate {digest[:16]}..., file " \
                      f"{found[:16]}...)"
    return len(files), None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stellarflow verify", description=__doc__.split("\n\n")[0])
    p.add_argument("outputs", type=Path, help="OUTDIR/<observation_id> (holds the RO-Crate)")
    args = p.parse_args(argv)
    n, problem = verify(args.outputs)
    if problem:
        print(f"stellarflow verify: {problem}", file=sys.stderr)
        return 1
    print(f"{args.outputs}: all {n} checksums match the RO-Crate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
