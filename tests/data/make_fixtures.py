#!/usr/bin/env python3
"""Regenerate every module's small committed fixture (containers/<module>/tests/data/).

Three generated stars (4 days at 25 s), one written as a TESS-style FITS and one as a plain table,
and a star whose light curve is missing (failed from ingest on); every module is run once, in the
venv, to make the next module's input chunk files. Each module's copy of its inputs then gets one
more star, ``broken``, that breaks the contract in a way that module must notice (a truncated
light curve for ingest, a star group without its data or attrs for the others, a row with an
unknown status for the catalogue): the module must fail that star with a one-line error and
process the others. The CWL tool tests (cwl/tools/*.cwltest.yml) and `stellarflow check-module`
run on these files.
Run: .venv/bin/python tests/data/make_fixtures.py   (then update the cwltest summaries)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import catalogue
import h5py
import ingest
import msap1_preparation
import msap3_seismology
import msap4_rotation
import numpy as np
import star_products
import transit_search
from astropy.io import fits

from stellarflow_contracts import lightcurve

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONTAINERS = REPO / "containers"
BROKEN = "broken"


def module_data(name: str) -> Path:
    d = CONTAINERS / name / "tests" / "data"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def add_broken_star(path: Path, drop: str | None = None, drop_attr: str | None = None,
                    attrs: dict | None = None) -> None:
    """Append a star ``broken`` to a chunk file: a copy of the first ok star without the group
    ``drop`` (or the attr ``drop_attr``), so that the file breaks the contract for that star."""
    with h5py.File(path, "a") as f:
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in f.attrs["star_ids"]]
        first = next(i for i in ids if f["stars"][i].attrs.get("status") == "ok")
        f["stars"].copy(f["stars"][first], BROKEN)
        g = f["stars"][BROKEN]
        if drop and drop in g:
            del g[drop]
        if drop_attr and drop_attr in g.attrs:
            del g.attrs[drop_attr]
        for key, value in (attrs or {}).items():
            g.attrs[key] = value
        f.attrs["star_ids"] = np.array([*ids, BROKEN], dtype=h5py.string_dtype())


def run_msap5(out: Path, c: Path) -> None:
    """MSAP5 is a C program: from PATH (a host build) or else in its image."""
    args = ["--outdir", str(out), "--prepared", f"{c}.prepared.h5", "--rotation",
            f"{c}.rotation.h5", "--seismology", f"{c}.seismology.h5"]
    exe = shutil.which("msap5_stellar_parameters")
    if exe:
        cmd = [exe, *args]
    else:
        sys.path.insert(0, str(REPO / "scripts"))
        from stellarflow.images import module_image

        image = module_image(CONTAINERS / "msap5_stellar_parameters")
        cmd = ["podman", "run", "--rm", "--network=none", "-v", f"{out}:{out}", "-w", str(out),
               image, "msap5_stellar_parameters", *args]
    subprocess.run(cmd, check=True)


def main() -> int:
    lcdir = module_data("ingest")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(REPO / "scripts" / "generate_observation.py"), tmp,
                        "--stars", "3", "--days", "4", "--seed", "3", "--observation-id", "fx"],
                       check=True)
        for i in range(3):
            shutil.copy(Path(tmp) / "lightcurves" / f"star0000{i}.h5", lcdir)
    # star00001 as a TESS-style FITS, star00002 as a header-less text table.
    lc = lightcurve.read_any(lcdir / "star00001.h5")
    cols = [fits.Column("TIME", "D", array=lc.time),
            fits.Column("PDCSAP_FLUX", "E", unit="e-/s", array=lc.flux.astype(np.float32)),
            fits.Column("PDCSAP_FLUX_ERR", "E", unit="e-/s",
                        array=lc.flux_err.astype(np.float32)),
            fits.Column("QUALITY", "J", array=lc.quality.astype(np.int32))]
    primary = fits.PrimaryHDU()
    primary.header.update({"TELESCOP": "TESS", "OBJECT": "star00001"})
    table = fits.BinTableHDU.from_columns(cols)
    table.header.update({"BJDREFI": 2457000, "BJDREFF": 0.0, "TIMEREF": "SOLARSYSTEM",
                         "TIMEDEL": 25.0 / 86400.0})
    fits.HDUList([primary, table]).writeto(lcdir / "star00001.fits")
    (lcdir / "star00001.h5").unlink()
    lc = lightcurve.read_any(lcdir / "star00002.h5")
    good = lc.quality == 0
    np.savetxt(lcdir / "star00002.txt", np.c_[lc.time[good], lc.flux[good]], fmt="%.8f")
    (lcdir / "star00002.h5").unlink()
    # A truncated HDF5 light curve: ingest's broken star.
    (lcdir / f"{BROKEN}.h5").write_bytes((lcdir / "star00000.h5").read_bytes()[:2048])

    stars = [
        {"star_id": "star00000", "lightcurve": {"path": str(lcdir / "star00000.h5")},
         "teff": 6200.0, "logg": 4.3},
        {"star_id": "star00001", "lightcurve": {"path": str(lcdir / "star00001.fits")}},
        {"star_id": "star00002", "lightcurve": {"path": str(lcdir / "star00002.txt")},
         "teff": 5300.0, "logg": 4.5},
        {"star_id": "missing", "input_error": "lc/missing.h5: light curve not found"},
    ]
    with tempfile.TemporaryDirectory() as tmp:
        chain = Path(tmp)
        out = ["--outdir", str(chain)]
        chunk = {"chunk_id": "chunk-0000", "stars": stars}
        assert ingest.main([*out, "--observation-id", "fx", "--chunk-json",
                            json.dumps(chunk)]) == 0
        c = chain / "chunk-0000"
        assert msap1_preparation.main([*out, "--lightcurves", f"{c}.lightcurves.h5"]) == 0
        assert msap4_rotation.main([*out, "--prepared", f"{c}.prepared.h5"]) == 0
        assert msap3_seismology.main([*out, "--prepared", f"{c}.prepared.h5"]) == 0
        run_msap5(chain, c)
        assert transit_search.main([*out, "--prepared", f"{c}.prepared.h5", "--parameters",
                                    f"{c}.parameters.h5"]) == 0
        assert star_products.main([*out, *(a for s in star_products.STAGES
                                           for a in (f"--{s}", f"{c}.{s}.h5"))]) == 0

        def give(module: str, *stages: str) -> Path:
            d = module_data(module)
            for s in stages:
                shutil.copy(chain / f"chunk-0000.{s}", d)
            return d

        for module in ("msap1_preparation", "fake_module"):  # the fake stands in for MSAP1
            d = give(module, "lightcurves.h5")
            add_broken_star(d / "chunk-0000.lightcurves.h5", drop="lightcurve")
        for module in ("msap3_seismology", "msap4_rotation"):
            d = give(module, "prepared.h5")
            add_broken_star(d / "chunk-0000.prepared.h5", drop="prepared",
                            attrs={"seismic_candidate": 1})
        d = give("msap5_stellar_parameters", "prepared.h5", "rotation.h5", "seismology.h5")
        add_broken_star(d / "chunk-0000.prepared.h5", drop_attr="teff")
        d = give("transit_search", "prepared.h5", "parameters.h5")
        add_broken_star(d / "chunk-0000.prepared.h5", drop="prepared")
        d = give("star_products", *(f"{s}.h5" for s in star_products.STAGES))
        add_broken_star(d / "chunk-0000.prepared.h5", drop="prepared")
        # The fixture `stellarflow new-module` copies into a new module's tests/data/.
        template = REPO / "scripts" / "stellarflow" / "templates" / "data"
        template.mkdir(parents=True, exist_ok=True)
        shutil.copy(CONTAINERS / "msap4_rotation" / "tests" / "data" / "chunk-0000.prepared.h5",
                    template)
        d = give("catalogue", "rows.ecsv")
        rows = catalogue.Table.read(d / "chunk-0000.rows.ecsv", format="ascii.ecsv")
        rows.add_row({**{c: rows[0][c] for c in rows.colnames}, "star_id": BROKEN,
                      "status": "unknown-status"})
        rows.write(d / "chunk-0000.rows.ecsv", format="ascii.ecsv", overwrite=True)
    made = sorted(str(p.relative_to(REPO)) for p in CONTAINERS.glob("*/tests/data/*"))
    print("fixtures:", *made, sep="\n  ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
