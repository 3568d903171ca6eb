"""MSAP1 preparation: clipping, detrending, normalisation, candidates; a broken star fails alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import msap1_preparation as m1
import numpy as np

from stellarflow_contracts import lightcurve

DATA = Path(__file__).resolve().parent / "data"


def lc(flux: np.ndarray, cadence_s: float = 60.0) -> lightcurve.LightCurve:
    t = 3000.0 + np.arange(flux.size) * cadence_s / 86400.0
    return lightcurve.LightCurve("s", t, flux, np.full(flux.size, np.nan),
                                 np.zeros(flux.size, np.uint32), cadence_s)


def test_prepare_normalises_detrends_and_clips_upward_outliers() -> None:
    rng = np.random.default_rng(1)
    n = 5000
    flux = 1000.0 * (1.0 + 0.02 * np.arange(n) / n) + rng.normal(0, 1.0, n)
    flux[100] += 50.0  # a cosmic ray: clipped
    flux[200:210] -= 20.0  # a dip (transit-like): kept
    prep = m1.prepare(lc(flux))
    assert prep.n_clipped >= 1 and prep.time.size == n - prep.n_clipped
    assert abs(np.median(prep.flux) - 1.0) < 1e-12
    assert abs(np.median(prep.flux[:500]) - np.median(prep.flux[-500:])) < 1e-3  # drift removed
    assert np.min(prep.flux) < 0.985  # the dip survives
    assert np.all(np.isfinite(prep.flux_err)) and np.all(prep.flux_err > 0)


def test_numax_guess_and_seismic_candidates() -> None:
    assert math.isclose(m1.numax_guess(5777.0, 4.438), 3090.0)
    assert math.isnan(m1.numax_guess(5777.0, math.nan))
    assert not m1.seismic_candidate(7500.0, 4.0, 60.0)  # hot: no convective envelope
    assert m1.seismic_candidate(5000.0, 3.0, 60.0)


def test_chunk_on_the_fixture(tmp_path: Path) -> None:
    assert m1.main(["--lightcurves", str(DATA / "chunk-0000.lightcurves.h5"),
                    "--outdir", str(tmp_path)]) == 0
    with h5py.File(tmp_path / "chunk-0000.prepared.h5") as f:
        status = {sid: g.attrs["status"] for sid, g in f["stars"].items()}
        assert status == {"star00000": "ok", "star00001": "ok", "star00002": "ok",
                          "missing": "failed", "broken": "failed"}
        assert f["stars/broken"].attrs["error"].startswith("msap1_preparation: ")
        assert f["stars/star00000/prepared/time"].attrs["units"] == "d"
    gate = json.loads((tmp_path / "chunk-0000.msap1.json").read_text())
    assert gate["n_seismic_candidates"] == 3


def test_msap1_flags_giants_and_stars_without_logg() -> None:
    assert m1.seismic_candidate(4700.0, 2.4, 1765.5)  # red giant, Kepler long cadence
    assert m1.seismic_candidate(5800.0, math.nan, 25.0)  # Teff only
    assert m1.seismic_candidate(5800.0, 4.4, 1765.5)  # a log g can be wrong: searched anyway
    assert not m1.seismic_candidate(7500.0, 4.0, 25.0)  # no convective envelope
