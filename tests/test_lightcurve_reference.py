"""Ingest refers to a contract HDF5 input instead of copying it (contracts 1.3.0): MSAP1, and
MSAP1's fake, read that file through the chunk record and prepare exactly what they prepare
from a copy; without the record, only the referred star fails, with one line."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import ingest
import msap1_preparation as m1
import numpy as np
import pytest
from fake_module import sas as fake_sas

from stellarflow_contracts import conform, lightcurve

DATA = Path(__file__).resolve().parents[1] / "containers" / "ingest" / "tests" / "data"


def chunk_record(tmp_path: Path) -> Path:
    record = {"chunk_id": "chunk-0000", "stars": [
        {"star_id": "star00000", "lightcurve": {"path": str(DATA / "star00000.h5")},
         "teff": 6200.0, "logg": 4.3},
        {"star_id": "star00001", "lightcurve": {"path": str(DATA / "star00001.fits")}},
        {"star_id": "broken", "lightcurve": {"path": str(DATA / "broken.h5")}},
    ]}
    path = tmp_path / "chunk.json"
    path.write_text(json.dumps(record))
    return path


def ingested(tmp_path: Path, refer: bool) -> Path:
    out = tmp_path / ("referred" if refer else "copied")
    out.mkdir()
    argv = ["--outdir", str(out), "--observation-id", "o",
            "--chunk-file", str(chunk_record(tmp_path))]
    assert ingest.main(argv + (["--refer-to-contract-inputs"] if refer else [])) == 0
    return out / "chunk-0000.lightcurves.h5"


def prepared(lightcurves: Path, chunk_file: Path | None, fake: bool = False) -> h5py.File:
    out = lightcurves.parent / ("fake" if fake else "msap1")
    out.mkdir()
    argv = ["--outdir", str(out), "--lightcurves", str(lightcurves)]
    argv += ["--chunk-file", str(chunk_file)] if chunk_file else []
    if fake:  # the fake's own entry point (the image calls it under the module's name)
        assert fake_sas.fake("msap1_preparation", argv).exists()
    else:
        assert m1.main(argv) == 0
    return h5py.File(out / "chunk-0000.prepared.h5", "r")


def test_ingest_refers_only_to_a_contract_hdf5(tmp_path: Path) -> None:
    path = ingested(tmp_path, refer=True)
    assert conform.check_chunk(path, "lightcurves") == []
    with h5py.File(path, "r") as f:
        hdf5, fits = f["stars/star00000"], f["stars/star00001"]
        assert lightcurve.is_reference(hdf5) and "lightcurve" not in hdf5
        assert hdf5.attrs[lightcurve.IN_INPUT_ATTR] == "star00000.h5"
        assert hdf5.attrs["teff"] == 6200.0 and hdf5.attrs["cadence_s"] > 0
        assert not lightcurve.is_reference(fits) and "lightcurve/flux" in fits  # converted
        assert f["stars/broken"].attrs["status"] == "failed"  # still validated by ingest
    assert path.stat().st_size < (DATA / "star00000.h5").stat().st_size


@pytest.mark.parametrize("fake", [False, True], ids=["msap1", "msap1-fake"])
def test_msap1_prepares_a_referred_star_as_a_copied_one(tmp_path: Path, fake: bool) -> None:
    record = chunk_record(tmp_path)
    with prepared(ingested(tmp_path, refer=False), None, fake) as copied, \
            prepared(ingested(tmp_path, refer=True), record, fake) as referred:
        for sid in ("star00000", "star00001", "broken"):
            a, b = copied[f"stars/{sid}"], referred[f"stars/{sid}"]
            assert dict(a.attrs).keys() == dict(b.attrs).keys()
            for key, value in a.attrs.items():
                if key == "cpu_s":
                    continue
                if isinstance(value, (float, np.floating)):
                    assert np.array_equal(value, b.attrs[key], equal_nan=True), (sid, key)
                else:
                    assert value == b.attrs[key], (sid, key)
            for name in ("time", "flux", "flux_err"):
                if f"prepared/{name}" in a:
                    assert np.array_equal(a[f"prepared/{name}"][()], b[f"prepared/{name}"][()])
        assert referred["stars/star00000"].attrs["status"] == "ok"


def test_a_referred_star_without_its_record_fails_alone(tmp_path: Path) -> None:
    with prepared(ingested(tmp_path, refer=True), None) as f:
        star = f["stars/star00000"]
        assert star.attrs["status"] == "failed"
        assert star.attrs["error"] == ("msap1_preparation: star00000: its light curve is held by "
                                       "its input file star00000.h5, which the chunk record does "
                                       "not give (--chunk-file)")
        assert f["stars/star00001"].attrs["status"] == "ok"
