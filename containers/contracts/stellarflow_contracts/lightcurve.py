"""The light-curve contract (docs/contracts.md) and readers for what ingest accepts.

Contract, HDF5: root attrs ``star_id`` (str), ``cadence_s`` (float); group ``/lightcurve`` with
``time`` (float64, days, BJD_TDB - 2457000), ``flux`` (float64), ``flux_err`` (float64),
``quality`` (uint32, 0 = good). The same layout may sit in any HDF5 group (chunk files keep one
such group per star).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .errors import InputError

# Offsets from mission time systems to BJD_TDB - 2457000 (the contract's time system).
BKJD_OFFSET = 2454833.0 - 2457000.0  # Kepler/K2: BJD - 2454833
BTJD_OFFSET = 0.0  # TESS: BJD - 2457000 already

FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fts")
HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")
# A star's group in a light-curve chunk with this attr holds no arrays: its input file, named
# by the attr, already is its contract light curve (contracts 1.3.0; docs/contracts.md, 5).
IN_INPUT_ATTR = "lightcurve_in_input"
SOURCE_FORMAT_CONTRACT = "stellarflow-hdf5"


@dataclass
class LightCurve:
    star_id: str
    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    quality: np.ndarray
    cadence_s: float
    # What ingest did to reach the contract (source format, time conversion, columns used).
    provenance: dict[str, str] = field(default_factory=dict)
    # Unit of flux and flux_err as the source gives it ("" when it says nothing).
    flux_units: str = ""

    def validate(self, source: str | os.PathLike[str]) -> None:
        """Raise InputError when the arrays break the contract or carry no usable data."""
        n = self.time.shape[0]
        for name in ("time", "flux", "flux_err", "quality"):
            arr = getattr(self, name)
            if arr.ndim != 1 or arr.shape[0] != n:
                raise InputError(source, f"'{name}' has shape {arr.shape}, expected ({n},)")
        if n < 10:
            raise InputError(source, f"only {n} samples; at least 10 are needed")
        good = np.isfinite(self.time) & np.isfinite(self.flux) & (self.quality == 0)
        if not good.any():
            raise InputError(source, "no finite flux with quality 0 (all NaN or all flagged)")
        if not np.isfinite(self.cadence_s) or self.cadence_s <= 0:
            raise InputError(source, f"cadence_s must be a positive number, got {self.cadence_s}")


def _as_float64(source: str | os.PathLike[str], name: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind not in "fiu":
        raise InputError(source, f"dataset '{name}' has dtype {arr.dtype}, expected float64")
    return np.asarray(arr, dtype=np.float64)


def cadence_from_time(time: np.ndarray) -> float:
    finite = np.diff(time[np.isfinite(time)])
    finite = finite[finite > 0]
    return float(np.median(finite) * 86400.0) if finite.size else float("nan")


def write_attrs(group: h5py.Group, lc: LightCurve) -> None:
    """The contract's attrs of ``lc`` (star id, cadence, what ingest did) into ``group``."""
    group.attrs["star_id"] = lc.star_id
    group.attrs["cadence_s"] = float(lc.cadence_s)
    for key, value in lc.provenance.items():
        group.attrs[f"ingest_{key}"] = value


def write_group(group: h5py.Group, lc: LightCurve) -> None:
    """Write ``lc`` into ``group`` in the contract layout (the group plays the file's root)."""
    write_attrs(group, lc)
    g = group.require_group("lightcurve")
    opts = {"compression": "lzf", "shuffle": True} if lc.time.size > 4096 else {}
    for name, data, units in (("time", lc.time.astype(np.float64), "d"),
                              ("flux", lc.flux.astype(np.float64), lc.flux_units),
                              ("flux_err", lc.flux_err.astype(np.float64), lc.flux_units),
                              ("quality", lc.quality.astype(np.uint32), "")):
        g.create_dataset(name, data=data, **opts).attrs["units"] = units


def write_reference(group: h5py.Group, lc: LightCurve, source_name: str) -> None:
    """A star of a light-curve chunk whose input file already is ``lc`` in the contract: its
    attrs, and ``IN_INPUT_ATTR`` (the file's name) instead of a copy of its arrays."""
    write_attrs(group, lc)
    group.attrs[IN_INPUT_ATTR] = source_name


def is_reference(group: h5py.Group) -> bool:
    return IN_INPUT_ATTR in group.attrs


def chunk_record_sources(record: dict) -> dict[str, list[str]]:
    """star_id -> paths of the star's light-curve files in a chunk record (ingest's and MSAP1's
    ``--chunk-file``: ``{chunk_id, stars: [{star_id, lightcurve: {path} or [{path}, ...]}]}``)."""
    sources = {}
    for star in record.get("stars", []):
        given = star.get("lightcurve") or []
        items = given if isinstance(given, list) else [given]
        sources[str(star["star_id"])] = [str(i["path"]) for i in items
                                         if isinstance(i, dict) and i.get("path")]
    return sources


def chunk_file_sources(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """``chunk_record_sources`` of a chunk record file (``--chunk-file``); a file that is not
    one is an ``InputError`` naming it."""
    try:
        return chunk_record_sources(json.loads(Path(path).read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(path, f"not a chunk record ({exc})") from None


def read_chunk_star(group: h5py.Group, star_id: str,
                    sources: dict[str, list[str]] | None) -> LightCurve:
    """A star's light curve from a light-curve chunk: from the chunk itself, or, for a
    reference (``write_reference``), from the star's input file in ``sources``
    (``chunk_record_sources``), read as ingest read it. Errors name the star."""
    if not is_reference(group):
        return read_group(group, star_id)
    paths = (sources or {}).get(star_id, [])
    if len(paths) != 1:
        raise InputError(star_id, "its light curve is held by its input file "
                                  f"{_text(group.attrs[IN_INPUT_ATTR])}, which the chunk record "
                                  "does not give (--chunk-file)")
    lc = read_any(paths[0])
    lc.star_id = star_id
    return lc


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def write_file(path: str | os.PathLike[str], lc: LightCurve) -> None:
    with h5py.File(path, "w") as f:
        write_group(f, lc)


def read_group(group: h5py.Group, source: str | os.PathLike[str]) -> LightCurve:
    """Read a contract light curve from ``group``; InputError naming ``source`` if it is not one."""
    if "lightcurve" not in group or not isinstance(group["lightcurve"], h5py.Group):
        raise InputError(source, "no group '/lightcurve' (not a stellarflow light-curve HDF5)")
    g = group["lightcurve"]
    arrays = {}
    for name in ("time", "flux", "flux_err", "quality"):
        if name not in g:
            raise InputError(source, f"missing dataset '/lightcurve/{name}'")
        arrays[name] = g[name][()]
    if arrays["quality"].dtype.kind not in "iu":
        raise InputError(source, f"dataset 'quality' has dtype {arrays['quality'].dtype}, "
                                 "expected uint32")
    time = _as_float64(source, "time", arrays["time"])
    star_id = group.attrs.get("star_id", "")
    if isinstance(star_id, bytes):
        star_id = star_id.decode()
    cadence = group.attrs.get("cadence_s")
    cadence_s = float(cadence) if cadence is not None else cadence_from_time(time)
    prov = {k[len("ingest_"):]: str(v) for k, v in group.attrs.items() if k.startswith("ingest_")}
    units = g["flux"].attrs.get("units", "")
    return LightCurve(
        star_id=str(star_id),
        time=time,
        flux=_as_float64(source, "flux", arrays["flux"]),
        flux_err=_as_float64(source, "flux_err", arrays["flux_err"]),
        quality=np.asarray(arrays["quality"], dtype=np.uint32),
        cadence_s=cadence_s,
        provenance=prov,
        flux_units=units.decode() if isinstance(units, bytes) else str(units),
    )


def _read_hdf5(path: Path) -> LightCurve:
    try:
        with h5py.File(path, "r") as f:
            lc = read_group(f, path)
    except InputError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(path, f"unreadable HDF5 ({exc.__class__.__name__}: {exc})") from None
    lc.provenance.setdefault("source_format", SOURCE_FORMAT_CONTRACT)
    return lc


def _fits_column(data, names: list[str], candidates: tuple[str, ...]) -> str | None:
    for c in candidates:
        if c in names:
            return c
    return None


def _read_fits(path: Path) -> LightCurve:
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul if isinstance(h, fits.BinTableHDU)), None)
            if hdu is None:
                raise InputError(path, "FITS file has no BINTABLE extension")
            names = [n.upper() for n in hdu.columns.names]
            data = hdu.data
            header = hdul[0].header.copy()
            header.update(hdu.header)
            if "TIME" not in names:
                raise InputError(path, "FITS light curve has no TIME column")
            # PDCSAP (systematics-corrected) when it has data, else SAP: archives deliver
            # files whose PDCSAP column is empty (targets the PDC pipeline skipped).
            fcol = None
            for cand in ("PDCSAP_FLUX", "SAP_FLUX", "FLUX"):
                if cand in names and np.isfinite(np.asarray(data[cand], dtype=np.float64)).any():
                    fcol = cand
                    break
            if fcol is None:
                raise InputError(path, "FITS light curve has no finite PDCSAP_FLUX, SAP_FLUX or "
                                       "FLUX")
            ecol = fcol + "_ERR" if fcol + "_ERR" in names else None
            qcol = _fits_column(data, names, ("QUALITY", "SAP_QUALITY"))
            flux_units = str(hdu.columns[hdu.columns.names[names.index(fcol)]].unit or "")
            time = np.asarray(data["TIME"], dtype=np.float64)
            flux = np.asarray(data[fcol], dtype=np.float64)
            err = (np.asarray(data[ecol], dtype=np.float64) if ecol
                   else np.full_like(flux, np.nan))
            quality = (np.asarray(data[qcol]).astype(np.uint32) if qcol
                       else np.zeros(flux.shape, np.uint32))
    except InputError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(path, f"unreadable FITS ({exc.__class__.__name__}: {exc})") from None

    telescope = str(header.get("TELESCOP", "")).upper()
    timeref = str(header.get("TIMEREF", "")).upper()
    bjdrefi = header.get("BJDREFI")
    bjdreff = header.get("BJDREFF", 0.0)
    if bjdrefi is not None:
        offset = float(bjdrefi) + float(bjdreff) - 2457000.0
        how = f"TIME + (BJDREFI+BJDREFF-2457000) = TIME + {offset:.6f} d"
    elif telescope == "KEPLER" or telescope == "K2":
        offset, how = BKJD_OFFSET, "BKJD -> BJD-2457000 (TIME - 2167.0 d)"
    elif telescope == "TESS":
        offset, how = BTJD_OFFSET, "BTJD = BJD-2457000 (unchanged)"
    else:
        raise InputError(path, "FITS header gives no BJDREFI nor a known TELESCOP "
                               "(Kepler, K2, TESS): cannot convert TIME")
    if timeref and timeref != "SOLARSYSTEM":
        raise InputError(path, f"TIMEREF is {timeref}, expected SOLARSYSTEM (barycentric)")
    star_id = str(header.get("OBJECT", "") or header.get("TICID", "") or header.get("KEPLERID", ""))
    cadence_s = float(header.get("TIMEDEL", np.nan)) * 86400.0
    if not np.isfinite(cadence_s) or cadence_s <= 0:
        cadence_s = cadence_from_time(time)
    return LightCurve(
        star_id=star_id, time=time + offset, flux=flux, flux_err=err, quality=quality,
        cadence_s=cadence_s,
        provenance={"source_format": f"fits ({telescope or 'unknown mission'})",
                    "flux_column": fcol, "time_conversion": how},
        flux_units=flux_units,
    )


def _read_table(path: Path) -> LightCurve:
    from astropy.table import Table

    table = None
    errors = []
    for fmt in (None, "ascii.ecsv", "ascii.csv", "ascii.basic", "ascii.no_header"):
        try:
            t = Table.read(path, format=fmt) if fmt else Table.read(path)
        except Exception as exc:  # astropy raises many types while guessing formats
            errors.append(str(exc))
            continue
        names = [c.lower() for c in t.colnames]
        if "time" in names and "flux" in names:
            table = t
            table.rename_columns(t.colnames, names)
            break
        if fmt == "ascii.no_header" and len(t.colnames) in (2, 3):
            table = t
            table.rename_columns(t.colnames, ["time", "flux", "flux_err"][: len(t.colnames)])
            break
    if table is None:
        raise InputError(path, "not a readable light-curve table (need columns time, flux"
                               "[, flux_err] named or as the first 2-3 header-less columns)")
    for col in ("time", "flux") + (("flux_err",) if "flux_err" in table.colnames else ()):
        if table[col].dtype.kind not in "fiu":
            raise InputError(path, f"column '{col}' is not numeric ({table[col].dtype})")
    time = np.asarray(table["time"], dtype=np.float64)
    flux = np.asarray(table["flux"], dtype=np.float64)
    err = (np.asarray(table["flux_err"], dtype=np.float64) if "flux_err" in table.colnames
           else np.full_like(flux, np.nan))
    quality = (np.asarray(table["quality"]).astype(np.uint32) if "quality" in table.colnames
               else np.zeros(flux.shape, np.uint32))
    return LightCurve(
        star_id="", time=time, flux=flux, flux_err=err, quality=quality,
        cadence_s=cadence_from_time(time),
        provenance={"source_format": "table",
                    "time_conversion": "none (table times taken as BJD_TDB-2457000)"},
    )


STITCH_CADENCE_TOLERANCE = 0.01  # files of one star must share their cadence to 1 %


def stitch(parts: list[tuple[str | os.PathLike[str], LightCurve]]) -> LightCurve:
    """One light curve from several files of one star (Kepler quarters, TESS sectors, PLATO
    quarters): each file divided by the median of its good flux (instruments, apertures and
    detectors change between files, so their levels do), then all sorted by time. Files must
    not overlap in time and must share one cadence; InputError naming the file otherwise."""
    if not parts:
        raise InputError(None, "no light-curve files given")
    if len(parts) == 1:
        return parts[0][1]
    spans = []
    for src, lc in parts:
        good = np.isfinite(lc.time) & np.isfinite(lc.flux) & (lc.quality == 0)
        level = float(np.median(lc.flux[good]))
        if not np.isfinite(level) or level == 0:
            raise InputError(src, "median of the good flux is zero or not finite: cannot "
                                  "normalise it for stitching")
        t = lc.time[np.isfinite(lc.time)]
        spans.append((float(t.min()), float(t.max()), src, lc, level))
    spans.sort(key=lambda x: x[0])
    cad0 = spans[0][3].cadence_s
    for (_, a1, asrc, alc, _), (b0, _, bsrc, _, _) in zip(spans[:-1], spans[1:], strict=True):
        if b0 < a1 - 0.5 * alc.cadence_s / 86400.0:
            raise InputError(bsrc, f"overlaps {Path(asrc).name} in time ({b0:.4f} < {a1:.4f}, "
                                   "BJD_TDB - 2457000): give each span once")
    for _, _, src, lc, _ in spans:
        if abs(lc.cadence_s / cad0 - 1.0) > STITCH_CADENCE_TOLERANCE:
            raise InputError(src, f"cadence {lc.cadence_s:.1f} s differs from "
                                  f"{Path(spans[0][2]).name}'s {cad0:.1f} s: stitch files of "
                                  "one cadence")
    time = np.concatenate([x[3].time for x in spans])
    flux = np.concatenate([x[3].flux / x[4] for x in spans])
    err = np.concatenate([x[3].flux_err / x[4] for x in spans])
    quality = np.concatenate([x[3].quality for x in spans])
    first = spans[0][3]
    prov = dict(first.provenance)
    prov["source_file"] = ", ".join(Path(x[2]).name for x in spans)
    prov["stitched"] = (f"{len(spans)} files, each divided by the median of its good flux, "
                        "sorted by time")
    return LightCurve(star_id=first.star_id, time=time, flux=flux, flux_err=err,
                      quality=quality, cadence_s=float(np.median([x[3].cadence_s for x in spans])),
                      provenance=prov)


def read_many(paths: list[str | os.PathLike[str]]) -> LightCurve:
    """Read and stitch several light-curve files of one star (see ``stitch``)."""
    lc = stitch([(p, read_any(p)) for p in paths])
    lc.validate(paths[0] if len(paths) == 1 else f"{Path(paths[0]).name} and {len(paths) - 1} "
                                                  "more (stitched)")
    return lc


def is_hdf5(path: str | os.PathLike[str]) -> bool:
    """Whether ``read_any`` reads ``path`` as a contract HDF5 light curve (no conversion)."""
    p = Path(path)
    with open(p, "rb") as fh:
        return _hdf5_by(fh.read(8), p.name.lower())


def _hdf5_by(magic: bytes, name: str) -> bool:
    return magic == b"\x89HDF\r\n\x1a\n" or name.endswith(HDF5_SUFFIXES)


def read_any(path: str | os.PathLike[str]) -> LightCurve:
    """Read a contract HDF5, a Kepler/TESS FITS or a plain table; validate it."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "light curve not found")
    if not p.is_file():
        raise InputError(p, "light curve is not a regular file")
    with open(p, "rb") as fh:
        magic = fh.read(8)
    name = p.name.lower()
    if _hdf5_by(magic, name):
        lc = _read_hdf5(p)
    elif magic.startswith(b"SIMPLE") or name.endswith(FITS_SUFFIXES):
        lc = _read_fits(p)
    else:
        lc = _read_table(p)
    lc.provenance.setdefault("source_file", p.name)
    lc.validate(p)
    return lc
