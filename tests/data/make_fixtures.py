#!/usr/bin/env python3
"""Regenerate the small committed inputs of the CWL tool tests (tests/cwl/*.cwltest.yml).

Three generated stars (4 days at 25 s), one written as a TESS-style FITS and one as a plain table,
then every module run once in-process to make each tool's input chunk file.
Run: .venv/bin/python tests/data/make_fixtures.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from stellarflow import lightcurve
from stellarflow.modules import (
    ingest,
    msap1_preparation,
    msap3_seismology,
    msap4_rotation,
    msap5_stellar_parameters,
    star_products,
    transit_search,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def main() -> int:
    lcdir, chunks = HERE / "lightcurves", HERE / "chunks"
    for d in (lcdir, chunks):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(REPO / "scripts" / "generate_observation.py"), tmp,
                        "--stars", "3", "--days", "4", "--seed", "3", "--observation-id", "fx"],
                       check=True)
        for i in range(3):
            shutil.copy(Path(tmp) / "lightcurves" / f"star0000{i}.h5", lcdir)
    # star00001 as a TESS-style FITS, star00002 as a header-less text table.
    lc = lightcurve.read_any(lcdir / "star00001.h5")
    cols = [fits.Column("TIME", "D", array=lc.time),
            fits.Column("PDCSAP_FLUX", "E", array=lc.flux.astype(np.float32)),
            fits.Column("PDCSAP_FLUX_ERR", "E", array=lc.flux_err.astype(np.float32)),
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

    chunk = {"chunk_id": "chunk-0000", "stars": [
        {"star_id": "star00000", "lightcurve": {"path": str(lcdir / "star00000.h5")},
         "teff": 6200.0, "logg": 4.3},
        {"star_id": "star00001", "lightcurve": {"path": str(lcdir / "star00001.fits")}},
        {"star_id": "star00002", "lightcurve": {"path": str(lcdir / "star00002.txt")},
         "teff": 5300.0, "logg": 4.5},
        {"star_id": "missing", "input_error": "lc/missing.h5: light curve not found"},
    ]}
    out = ["--outdir", str(chunks)]
    assert ingest.main([*out, "--observation-id", "fx", "--chunk-json", json.dumps(chunk)]) == 0
    c = chunks / "chunk-0000"
    assert msap1_preparation.main([*out, "--lightcurves", f"{c}.lightcurves.h5"]) == 0
    assert msap4_rotation.main([*out, "--prepared", f"{c}.prepared.h5"]) == 0
    assert msap3_seismology.main([*out, "--prepared", f"{c}.prepared.h5"]) == 0
    assert msap5_stellar_parameters.main([*out, "--prepared", f"{c}.prepared.h5", "--rotation",
                                          f"{c}.rotation.h5", "--seismology",
                                          f"{c}.seismology.h5"]) == 0
    assert transit_search.main([*out, "--prepared", f"{c}.prepared.h5", "--parameters",
                                f"{c}.parameters.h5"]) == 0
    with tempfile.TemporaryDirectory() as tmp:
        assert star_products.main(["--outdir", tmp, "--lightcurves", f"{c}.lightcurves.h5",
                                   "--prepared", f"{c}.prepared.h5", "--rotation",
                                   f"{c}.rotation.h5", "--seismology", f"{c}.seismology.h5",
                                   "--parameters", f"{c}.parameters.h5", "--transit",
                                   f"{c}.transit.h5"]) == 0
        shutil.copy(Path(tmp) / "chunk-0000.rows.ecsv", chunks)
    (chunks / "chunk-0000.msap1.json").unlink()
    print("fixtures:", sorted(p.name for p in (*lcdir.iterdir(), *chunks.iterdir())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
