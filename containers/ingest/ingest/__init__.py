"""Ingest: a chunk of stars (FITS, text table or contract HDF5) -> one chunk file of contract
light curves. A star may have several files (quarters, sectors): each is divided by its own
median and they are stitched in time order (``lightcurve.stitch``). A star whose file is
missing or bad becomes a failed row; the chunk goes on.

With ``--refer-to-contract-inputs`` a star whose light curve is one file already in the contract
(HDF5) is validated but not copied: its group holds the attrs and ``lightcurve_in_input``, and
the next stage reads the input file (``lightcurve.read_chunk_star``), given the same chunk
record. The chunk then no longer repeats the inputs (contracts 1.3.0)."""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from pathlib import Path

import h5py

from stellarflow_contracts import lightcurve, profile
from stellarflow_contracts.chunk import (
    STATUS_FAILED,
    STATUS_OK,
    module_main,
    one_line,
    write_root_attrs,
    write_star_status,
    write_summary,
)
from stellarflow_contracts.errors import InputError
from stellarflow_contracts.pool import StarPool

MODULE = "ingest"
__version__ = "1.4.0"


def ingest_star(star: dict, refer: bool = False) -> tuple[bytes, str, str, float]:
    """One star's contract light curve, written into an in-memory HDF5 file (its image), with
    its status, error and CPU time. A missing or bad file is a failed star, not an exception.
    ``refer``: a single contract HDF5 input is validated and referred to, not copied."""
    sid = star["star_id"]
    t0 = time.process_time()
    with h5py.File(f"{sid}.mem", "w", driver="core", backing_store=False) as mem:
        g = mem.create_group(sid)
        try:
            if star.get("input_error"):
                raise InputError(None, star["input_error"])
            lcfile = star.get("lightcurve")
            if not lcfile:
                raise InputError(None, "no light curve given")
            if isinstance(lcfile, list):  # several files of one star: stitched
                lc = lightcurve.read_many([item["path"] for item in lcfile])
            else:
                lc = lightcurve.read_any(lcfile["path"])
            lc.star_id = sid  # the manifest's id is authoritative
            if refer and isinstance(lcfile, dict) and lightcurve.is_hdf5(lcfile["path"]):
                lightcurve.write_reference(g, lc, Path(lcfile["path"]).name)
            else:
                lightcurve.write_group(g, lc)
            status, error = STATUS_OK, ""
        except Exception as exc:  # star-level: record and go on
            for key in list(g.keys()):
                del g[key]
            if isinstance(exc, InputError) and exc.path:
                # Name the file as the user knows it, not by the runner's staging path.
                exc = InputError(Path(exc.path).name, exc.problem)
            status, error = STATUS_FAILED, f"{MODULE}: {one_line(exc)}"
        mem.flush()
        image = mem.id.get_file_image()
    return image, status, error, time.process_time() - t0


def ingest_chunk(chunk: dict, observation_id: str, outdir: Path, refer: bool = False) -> Path:
    """The chunk's stars are read in worker processes (stellarflow_contracts.pool) and copied
    into the chunk file in the manifest's order of stars (``refer``: see the module's doc)."""
    chunk_id = chunk["chunk_id"]
    stars = chunk["stars"]
    out_path = outdir / f"{chunk_id}.lightcurves.h5"
    ids = [s["star_id"] for s in stars]
    for star in stars:  # for the lineage
        lcfile = star.get("lightcurve") or []
        for item in lcfile if isinstance(lcfile, list) else [lcfile]:
            if isinstance(item, dict) and item.get("path"):
                profile.note_input(item["path"], "lightcurve", star["star_id"])
    with StarPool(lambda _state, star: ingest_star(star, refer), lambda: None,
                  len(stars)) as pool, \
            h5py.File(out_path, "w") as f:
        write_root_attrs(f, chunk_id=chunk_id, observation_id=observation_id, stage="lightcurves",
                         ids=ids, module=MODULE, version=__version__)
        grp = f.create_group("stars")
        for star in stars:  # groups in the manifest's order, whatever order the stars finish in
            g = grp.create_group(star["star_id"])
            for key in ("teff", "logg", "feh"):
                value = star.get(key)
                g.attrs[key] = float(value) if value is not None else math.nan
        for star, (image, status, error, cpu_s) in pool.map(stars, None):
            g = grp[star["star_id"]]
            with h5py.File(io.BytesIO(image), "r") as mem:
                for name in mem[star["star_id"]]:
                    mem.copy(mem[star["star_id"]][name], g, name=name)
                for key, value in mem[star["star_id"]].attrs.items():
                    g.attrs[key] = value
            write_star_status(g, status, error, cpu_s)
        write_summary(f, outdir)
    return out_path


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--observation-id", required=True, help="observation the chunk belongs to")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--chunk-json",
                       help="the chunk record as JSON: {chunk_id, stars: [{star_id, lightcurve: "
                            "{path} or [{path}, ...], teff, logg, feh, input_error}]}")
    # One command-line argument holds at most 128 KiB on Linux: ~300 stars of a chunk record.
    given.add_argument("--chunk-file", type=Path,
                       help="a file holding the chunk record as JSON (any number of stars)")
    p.add_argument("--refer-to-contract-inputs", action="store_true",
                   help="do not copy a light curve whose one input file is already a contract "
                        "HDF5: record it (lightcurve_in_input) for the next stage to read "
                        "with the same chunk record")


def _run(args: argparse.Namespace) -> None:
    where = "--chunk-json"
    text = args.chunk_json
    if args.chunk_file is not None:
        where = str(args.chunk_file)
        try:
            text = args.chunk_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(where, f"cannot read the chunk record ({exc})") from None
    try:
        chunk = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(where, f"invalid JSON: {exc.msg}") from None
    ingest_chunk(chunk, args.observation_id, args.outdir, refer=args.refer_to_contract_inputs)


def main(argv: list[str] | None = None) -> int:
    return module_main(argv, module=MODULE, version=__version__,
                       description="Convert a chunk of light curves to the stellarflow contract",
                       add_arguments=_args, run=_run)


if __name__ == "__main__":
    raise SystemExit(main())
