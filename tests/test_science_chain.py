"""The SAS modules chained as the workflow chains them (MSAP1 then the transit search), in
process, on real Kepler quarters and on the generator's hardest cases: what no single module's
own tests can show."""

from __future__ import annotations

import msap1_preparation as m1
import transit_search as ts

from stellarflow import synthetic
from stellarflow_contracts.lightcurve import read_many

from conftest import REAL

KEPLER90 = [REAL / f"Kepler-90_kplr011442793-{q}_llc.fits"
            for q in ("2009350155506", "2010009091648", "2010174085026")]
KEPLER90_PLANETS = {"b": 7.008, "c": 8.719, "i": 14.449, "d": 59.737, "e": 91.939,
                    "f": 124.914, "g": 210.607, "h": 331.601}



def test_kepler90_quarters_give_one_of_its_planets() -> None:
    """Three stitched Kepler quarters: a plain BLS folds the single transits of g and h
    together near 114.6 d; vetting masks those single events and finds a real planet."""
    prep = m1.prepare(read_many(KEPLER90))
    res = ts.search(prep.time, prep.flux, 1.2, 0.1, 1.1)
    assert res.detected, res
    matches = [k for k, p in KEPLER90_PLANETS.items() if abs(res.period_d / p - 1) < 0.005]
    assert matches and matches[0] in ("d", "e", "f", "g"), (res.period_d, res.vetting)
    assert res.n_searches >= 2  # single events were masked on the way


def test_kepler_era_short_deep_transits() -> None:
    """Kepler short cadence, 10 days, times before BJD 2457000, transits >= 1 % deep."""
    for index in (501, 503):
        lc, tr = synthetic.simulate_star(index, 10.0, 58.85, 3, kind="hot_jupiter",
                                         time_start=synthetic.KEPLER_ERA_START)
        assert lc.time.max() < 0 and tr.transit_depth_ppm >= 10_000
        prep = m1.prepare(lc)
        res = ts.search(prep.time, prep.flux, tr.radius_rsun, 0.05, tr.mass_msun)
        assert res.detected, res
        assert abs(res.period_d / tr.transit_period_d - 1) < 0.005
        assert res.t0_d < 0


def test_no_false_transits_on_red_giants() -> None:
    """Granulation and oscillations of red giants must not pass the box tests."""
    for index in (10, 14, 16):
        lc, tr = synthetic.simulate_star(index, 30.0, 25.0, 5)
        assert tr.kind == "giant"
        prep = m1.prepare(lc)
        res = ts.search(prep.time, prep.flux, tr.radius_rsun, 0.1, tr.mass_msun)
        assert not res.detected, res
