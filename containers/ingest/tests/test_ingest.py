"""Ingest: a chunk of light curves in any accepted format; a bad star fails alone."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import ingest
import numpy as np
import pytest

from stellarflow_contracts import lightcurve

REAL = Path(__file__).resolve().parents[3] / "tests" / "data" / "real"  # in the repository
KEPLER90 = ("Kepler-90_kplr011442793-2009350155506_llc.fits",
            "Kepler-90_kplr011442793-2010009091648_llc.fits",
            "Kepler-90_kplr011442793-2010174085026_llc.fits")


def make_lc(n: int = 500, star_id: str = "s") -> lightcurve.LightCurve:
    t = np.linspace(3000.0, 3010.0, n)
    return lightcurve.LightCurve(star_id=star_id, time=t, flux=np.full(n, 100.0),
                                 flux_err=np.ones(n), quality=np.zeros(n, np.uint32),
                                 cadence_s=25.0)


def test_ingest_chunk_keeps_good_stars(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.h5", tmp_path / "bad.h5"
    lightcurve.write_file(good, make_lc())
    lc = make_lc()
    lc.flux[:] = np.nan
    lightcurve.write_file(bad, lc)
    chunk = {"chunk_id": "chunk-0000", "stars": [
        {"star_id": "a", "lightcurve": {"path": str(good)}, "teff": 5000.0},
        {"star_id": "b", "lightcurve": {"path": str(bad)}},
        {"star_id": "c", "input_error": "lc/c.h5: light curve not found"},
    ]}
    rc = ingest.main(["--outdir", str(tmp_path), "--observation-id", "o",
                      "--chunk-json", json.dumps(chunk)])
    assert rc == 0
    with h5py.File(tmp_path / "chunk-0000.lightcurves.h5") as f:
        st = {k: (g.attrs["status"], g.attrs["error"]) for k, g in f["stars"].items()}
        assert st["a"] == ("ok", "")
        assert st["b"][0] == "failed" and "no finite flux" in st["b"][1]
        assert st["c"] == ("failed", "ingest: lc/c.h5: light curve not found")
        assert f["stars/a"].attrs["teff"] == 5000.0
        lightcurve.read_group(f["stars/a"], "a").validate("a")


def test_ingest_stitches_kepler_quarters(tmp_path: Path) -> None:
    chunk = {"chunk_id": "chunk-0000", "stars": [
        {"star_id": "Kepler-90", "lightcurve": [{"path": str(REAL / n)} for n in KEPLER90],
         "teff": 6080.0}]}
    assert ingest.main(["--outdir", str(tmp_path), "--observation-id", "o",
                        "--chunk-json", json.dumps(chunk)]) == 0
    with h5py.File(tmp_path / "chunk-0000.lightcurves.h5") as f:
        g = f["stars/Kepler-90"]
        assert g.attrs["status"] == "ok", g.attrs["error"]
        lc = lightcurve.read_group(g, "Kepler-90")
        assert "3 files" in str(g.attrs["ingest_stitched"])
    t = lc.time[np.isfinite(lc.time)]
    assert t.min() < -1800 and t.max() < -1500  # 2009-2010: before BJD 2457000
    assert t.max() - t.min() > 250
    assert lc.cadence_s == pytest.approx(1765.5, rel=1e-3)


def test_chunk_from_a_file_and_its_errors(tmp_path: Path, capsys) -> None:
    """--chunk-file: the chunk record in a file (a chunk larger than one argument's 128 KiB)."""
    good = tmp_path / "good.h5"
    lightcurve.write_file(good, make_lc())
    stars = [{"star_id": f"s{i:04d}", "lightcurve": {"path": str(good)}} for i in range(400)]
    record = tmp_path / "chunk.json"
    record.write_text(json.dumps({"chunk_id": "chunk-0001", "stars": stars}))
    assert len(record.read_text()) > 2**15
    out = tmp_path / "out"
    out.mkdir()
    assert ingest.main(["--outdir", str(out), "--observation-id", "o",
                        "--chunk-file", str(record)]) == 0
    with h5py.File(out / "chunk-0001.lightcurves.h5") as f:
        assert len(f["stars"]) == 400
    record.write_text("{not json")
    assert ingest.main(["--outdir", str(out), "--observation-id", "o",
                        "--chunk-file", str(record)]) != 0
    assert "invalid JSON" in capsys.readouterr().err.strip().splitlines()[-1]
