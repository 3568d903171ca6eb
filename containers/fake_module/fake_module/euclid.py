"""The Euclid example, for real on small FITS frames: split -> dark -> flat -> combine -> extract.

    fake_euclid split|correct-dark|correct-flat|combine|extract|lineage ...

(The inputs are made on the host: stellarflow_dummy.euclid_inputs.make_inputs.)

Every step writes its product(s) and a lineage record ``<step>.lineage.json`` (step, version, host,
image, start/end, inputs and outputs with SHA-256). The ``lineage`` step links the records by
checksum into one tree per final output (catalogue <- image + catalog_spec, ...).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from scipy import ndimage

from . import __version__
from .dummy import sha256

SHAPE = (256, 256)
PSF_SIGMA = 1.6


def _utc(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _file(p: Path) -> dict[str, str]:
    return {"file": p.name, "sha256": sha256(p)}


def write_record(step: str, start: float, inputs: dict[str, list[Path]],
                 outputs: dict[str, Path], name: str | None = None) -> Path:
    rec = {"step": step, "version": __version__, "host": socket.gethostname(),
           "image": os.environ.get("STELLARFLOW_IMAGE", "none (no container)"),
           "start_utc": _utc(start), "end_utc": _utc(time.time()),
           "inputs": {k: [_file(p) for p in v] for k, v in inputs.items()},
           "outputs": {k: _file(p) for k, v in outputs.items() for p in [v]}}
    path = Path(f"{name or step}.lineage.json")
    path.write_text(json.dumps(rec, indent=1))
    return path


# ---- steps ----------------------------------------------------------------------------------

def split(image: Path, n_side: int) -> None:
    start = time.time()
    with fits.open(image) as hdul:
        data, hdr = hdul[0].data, hdul[0].header
    ny, nx = data.shape
    outs: dict[str, Path] = {}
    for j in range(n_side):
        for i in range(n_side):
            y0, y1 = j * ny // n_side, (j + 1) * ny // n_side
            x0, x1 = i * nx // n_side, (i + 1) * nx // n_side
            h = hdr.copy()
            h.update({"X0": x0, "Y0": y0, "FULLNX": nx, "FULLNY": ny, "PIECE": f"{j}{i}"})
            p = Path(f"piece_{j}{i}.fits")
            fits.PrimaryHDU(data[y0:y1, x0:x1], header=h).writeto(p, overwrite=True)
            outs[f"piece_{j}{i}"] = p
    write_record("split_images", start, {"image": [image]}, outs)


def _cut(calib: Path, hdr: fits.Header, shape: tuple[int, ...]) -> np.ndarray:
    with fits.open(calib) as hdul:
        full = hdul[0].data.astype(np.float64)
    if full.shape != (hdr["FULLNY"], hdr["FULLNX"]):
        raise ValueError(f"{calib.name}: shape {full.shape} does not match the frame "
                         f"({hdr['FULLNY']}, {hdr['FULLNX']})")
    y0, x0 = hdr["Y0"], hdr["X0"]
    return full[y0:y0 + shape[0], x0:x0 + shape[1]]


def correct(step: str, piece: Path, calib: Path, calib_name: str) -> None:
    start = time.time()
    with fits.open(piece) as hdul:
        data, hdr = hdul[0].data.astype(np.float64), hdul[0].header.copy()
    cal = _cut(calib, hdr, data.shape)
    if step == "correct_dark":
        out_data, tag = data - cal, "dark"
    else:
        out_data, tag = data / cal, "flat"
    hdr[f"{tag.upper()}COR"] = (calib.name, f"{tag} correction applied")
    out = Path(f"{tag}_{hdr['PIECE']}.fits")
    fits.PrimaryHDU(out_data.astype(np.float32), header=hdr).writeto(out, overwrite=True)
    write_record(step, start, {"piece": [piece], calib_name: [calib]}, {"corrected": out},
                 name=f"{step}_{hdr['PIECE']}")


def combine(pieces: list[Path]) -> None:
    start = time.time()
    full = None
    hdr0 = None
    for p in pieces:
        with fits.open(p) as hdul:
            d, h = hdul[0].data, hdul[0].header
        if full is None:
            full, hdr0 = np.full((h["FULLNY"], h["FULLNX"]), np.nan, np.float32), h.copy()
        full[h["Y0"]:h["Y0"] + d.shape[0], h["X0"]:h["X0"] + d.shape[1]] = d
    if full is None or np.isnan(full).any():
        raise ValueError(f"the {len(pieces)} pieces do not cover the frame")
    for k in ("X0", "Y0", "PIECE"):
        hdr0.remove(k, ignore_missing=True)
    out = Path("combined.fits")
    fits.PrimaryHDU(full, header=hdr0).writeto(out, overwrite=True)
    write_record("combine_images", start, {"pieces": pieces}, {"image": out})


def extract(image: Path, spec_path: Path) -> None:
    start = time.time()
    spec = json.loads(spec_path.read_text())
    with fits.open(image) as hdul:
        data = hdul[0].data.astype(np.float64)
    mean, median, std = sigma_clipped_stats(data, sigma=3.0)
    labels, n = ndimage.label(data - median > spec["threshold_sigma"] * std)
    idx = np.arange(1, n + 1)
    npix = ndimage.sum(np.ones_like(data), labels, idx)
    good = idx[npix >= spec["min_pixels"]]
    cents = ndimage.center_of_mass(data - median, labels, good)
    yy, xx = np.mgrid[0:data.shape[0], 0:data.shape[1]]
    rows = []
    for k, (cy, cx) in zip(good, cents, strict=True):
        ap = (xx - cx) ** 2 + (yy - cy) ** 2 <= spec["aperture_radius_px"] ** 2
        rows.append((int(k), cx, cy, float((data[ap] - median).sum()),
                     float(data[labels == k].max() - median), int(npix[k - 1])))
    cat = Table(rows=rows, names=("id", "x", "y", "flux", "peak", "npix"),
                dtype=(int, float, float, float, float, int))
    cat.meta["lineage"] = {"image": _file(image), "catalog_spec": _file(spec_path)}
    cat.meta["detection"] = spec
    cat_path = Path("catalogue.ecsv")
    cat.write(cat_path, overwrite=True)
    # Quality: the background must be flat once dark and flat are removed (quadrant medians).
    h, w = data.shape
    quads = [data[a:a + h // 2, b:b + w // 2] for a in (0, h // 2) for b in (0, w // 2)]
    qmed = [float(sigma_clipped_stats(q, sigma=3.0)[1]) for q in quads]
    quality = {"n_sources": len(cat), "background": float(median), "background_rms": float(std),
               "quadrant_background": qmed,
               "background_nonuniformity": float((max(qmed) - min(qmed)) / median),
               "lineage": cat.meta["lineage"]}
    q_path = Path("quality.json")
    q_path.write_text(json.dumps(quality, indent=1))
    write_record("extract", start, {"image": [image], "catalog_spec": [spec_path]},
                 {"catalogue": cat_path, "quality": q_path})


def lineage(records: list[Path], finals: dict[str, Path], sources: dict[str, Path]) -> None:
    """Link step records by checksum: for each final output, the tree of what it came from."""
    recs = [json.loads(p.read_text()) for p in records]
    producer = {o["sha256"]: (r, name) for r in recs for name, o in r["outputs"].items()}
    source_by_sum = {sha256(p): name for name, p in sources.items()}

    def node(sha: str, file: str) -> dict[str, Any]:
        if sha in producer:
            r, out_name = producer[sha]
            return {"file": file, "sha256": sha, "output": out_name, "step": r["step"],
                    "host": r["host"], "image": r["image"], "start_utc": r["start_utc"],
                    "end_utc": r["end_utc"],
                    "inputs": {k: [node(f["sha256"], f["file"]) for f in v]
                               for k, v in r["inputs"].items()}}
        return {"file": file, "sha256": sha, "source": source_by_sum.get(sha, "unknown")}

    tree = {name: node(sha256(p), p.name) for name, p in finals.items()}
    Path("lineage.json").write_text(json.dumps({"outputs": tree, "records": recs}, indent=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fake_euclid", description=__doc__)
    p.add_argument("--debug", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("--image", type=Path, required=True)
    s.add_argument("--n-side", type=int, default=2)
    for step, calib in (("correct-dark", "dark"), ("correct-flat", "flat")):
        s = sub.add_parser(step)
        s.add_argument("--piece", type=Path, required=True)
        s.add_argument(f"--{calib}", type=Path, required=True)
    s = sub.add_parser("combine")
    s.add_argument("--pieces", type=Path, nargs="+", required=True)
    s = sub.add_parser("extract")
    s.add_argument("--image", type=Path, required=True)
    s.add_argument("--catalog-spec", type=Path, required=True)
    s = sub.add_parser("lineage")
    s.add_argument("--records", type=Path, nargs="+", required=True)
    s.add_argument("--final", nargs="+", required=True, help="NAME=PATH")
    s.add_argument("--source", nargs="+", default=[], help="NAME=PATH (the workflow inputs)")
    a = p.parse_args(argv)
    try:
        if a.cmd == "split":
            split(a.image, a.n_side)
        elif a.cmd == "correct-dark":
            correct("correct_dark", a.piece, a.dark, "dark")
        elif a.cmd == "correct-flat":
            correct("correct_flat", a.piece, a.flat, "flat")
        elif a.cmd == "combine":
            combine(a.pieces)
        elif a.cmd == "extract":
            extract(a.image, a.catalog_spec)
        else:
            def kv(items: list[str]) -> dict[str, Path]:
                return {i.split("=", 1)[0]: Path(i.split("=", 1)[1]) for i in items}

            lineage(a.records, kv(a.final), kv(a.source))
    except (OSError, ValueError, KeyError) as exc:
        if a.debug:
            raise
        print(f"euclid {a.cmd}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
