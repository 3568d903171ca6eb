"""The SAS fakes: a fake writes its stage's contract (NaN results, data passing through, a
passed-here record); failed stars stay failed; a broken star fails alone. (The Dummy Pipeline's
fake program and Euclid steps are tested in tests/test_dummy_pipeline.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from fake_module import sas

from stellarflow_contracts.conform import check_chunk

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[3]


def test_it_fakes_every_science_stage() -> None:
    assert sas.fakeable() == {"msap1_preparation": "prepared", "msap3_seismology": "seismology",
                              "msap4_rotation": "rotation",
                              "msap5_stellar_parameters": "parameters",
                              "transit_search": "transit"}


def test_fake_msap1_passes_the_light_curves_through(tmp_path: Path) -> None:
    out = sas.fake("msap1_preparation", ["--lightcurves", str(DATA / "chunk-0000.lightcurves.h5"),
                                         "--outdir", str(tmp_path)])
    assert check_chunk(out) == []
    with h5py.File(out) as f, h5py.File(DATA / "chunk-0000.lightcurves.h5") as src:
        assert f.attrs["fake_of"] == "msap1_preparation" and f.attrs["module"] == "fake_module"
        assert json.loads(f.attrs["passed_here"])["fake_of"] == "msap1_preparation"
        g = f["stars/star00000"]
        assert np.isnan(g.attrs["rms_ppm"])
        assert abs(np.median(g["prepared/flux"][()]) - 1.0) < 1e-12
        assert g["prepared/time"].size <= src["stars/star00000/lightcurve/time"].size
        assert f["stars/missing"].attrs["status"] == "failed"
        assert f["stars/broken"].attrs["error"].startswith("fake_module: ")
    assert json.loads((tmp_path / "chunk-0000.msap1.json").read_text()) == {
        "n_seismic_candidates": 0}


@pytest.mark.parametrize("module", ["msap3_seismology", "msap4_rotation", "transit_search"])
def test_fakes_of_later_stages_conform(tmp_path: Path, module: str) -> None:
    prepared = REPO / "containers" / module / "tests" / "data" / "chunk-0000.prepared.h5"
    out = sas.fake(module, ["--prepared", str(prepared), "--outdir", str(tmp_path)])
    assert check_chunk(out) == []
