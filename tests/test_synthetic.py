"""Synthetic observation generator: contract validity, determinism, injected truths."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.table import Table

from stellarflow import manifest, synthetic
from stellarflow_contracts import lightcurve

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "generate_observation.py"


@pytest.fixture(scope="module")
def observation(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("obs") / "syn"
    synthetic.generate(out, n_stars=10, days=3.0, seed=7, observation_id="syn-test")
    return out


def test_manifest_and_lightcurves_follow_the_contracts(observation: Path) -> None:
    m = manifest.load(observation / "manifest.yaml")
    assert m.observation_id == "syn-test" and m.workflow == "sas"
    assert [s.star_id for s in m.stars] == [f"star{i:05d}" for i in range(10)]
    for star in m.stars:
        assert star.input_error is None
        assert star.lightcurve == (observation / "lightcurves" / f"{star.star_id}.h5").resolve()
        assert star.teff > 0 and star.logg is not None and star.feh is not None
        lc = lightcurve.read_any(star.lightcurve)  # validates
        assert lc.star_id == star.star_id
        assert lc.cadence_s == 25.0
        assert lc.time[0] >= synthetic.TIME_START and lc.time[-1] < synthetic.TIME_START + 3.0
        assert np.all(np.diff(lc.time) > 0)
        assert lc.quality.dtype == np.uint32
        assert np.count_nonzero(lc.quality & synthetic.QUALITY_OUTLIER) >= 4
        good = lc.quality == 0
        assert np.all(np.isfinite(lc.flux)) and np.all(lc.flux_err > 0)
        assert 1e3 < np.median(lc.flux[good]) < 1e8  # e-/s
        with h5py.File(star.lightcurve) as f:
            assert f["lightcurve/time"].dtype == np.float64


def test_truth_table_columns_units_and_nans(observation: Path) -> None:
    t = Table.read(observation / "truths.ecsv")
    for col in ("star_id", "kind", "teff", "logg", "feh", "radius_rsun", "mass_msun", "prot_d",
                "numax_uhz", "dnu_uhz", "transit_period_d", "transit_t0_d",
                "transit_depth_ppm", "transit_duration_h", "planet_radius_rearth",
                "prot_detectable", "seismic_detectable", "transit_detectable"):
        assert col in t.colnames, col
    assert str(t["numax_uhz"].unit) == "uHz" and str(t["prot_d"].unit) == "d"
    assert t["seismic_detectable"].dtype == bool
    assert list(t["kind"]) == list(synthetic.KIND_CYCLE[:10])
    for row in t:
        osc = row["kind"].startswith("oscillator")
        assert math.isfinite(row["numax_uhz"]) == osc == bool(row["seismic_detectable"])
        assert row["logg_given"]
        assert math.isfinite(row["prot_d"]) == (row["kind"] == "rotator")
        has_planet = row["kind"] in ("transit", "oscillator_transit")
        assert math.isfinite(row["transit_period_d"]) == has_planet
        if row["kind"] == "hot":
            assert row["teff"] > 7000
        if osc:
            assert 450 < row["numax_uhz"] < 3300
            m, r, teff = row["mass_msun"], row["radius_rsun"], row["teff"]
            assert row["numax_uhz"] == pytest.approx(3090 * m / r**2 * (teff / 5777) ** -0.5)
            assert row["dnu_uhz"] == pytest.approx(135.1 * m**0.5 * r**-1.5)
            assert row["logg"] == pytest.approx(4.438 + math.log10(m / r**2))
        if has_planet:
            k = row["planet_radius_rearth"] / synthetic.RSUN_IN_REARTH / row["radius_rsun"]
            assert row["transit_depth_ppm"] == pytest.approx(k * k * 1e6)


def test_generation_is_deterministic_and_per_star() -> None:
    a, ta = synthetic.simulate_star(4, 2.0, 25.0, seed=3)
    b, tb = synthetic.simulate_star(4, 2.0, 25.0, seed=3)
    c, _ = synthetic.simulate_star(4, 2.0, 25.0, seed=4)
    assert ta == tb
    for name in ("time", "flux", "flux_err", "quality"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.flux[:100], c.flux[:100])


def test_same_seed_same_files(tmp_path: Path) -> None:
    synthetic.generate(tmp_path / "a", 3, 1.0, seed=11, observation_id="a")
    synthetic.generate(tmp_path / "b", 5, 1.0, seed=11, observation_id="b")
    for i in range(3):
        with h5py.File(tmp_path / "a" / "lightcurves" / f"star{i:05d}.h5") as fa, \
                h5py.File(tmp_path / "b" / "lightcurves" / f"star{i:05d}.h5") as fb:
            np.testing.assert_array_equal(fa["lightcurve/flux"][()], fb["lightcurve/flux"][()])
    ta, tb = Table.read(tmp_path / "a" / "truths.ecsv"), Table.read(tmp_path / "b" / "truths.ecsv")
    assert list(ta["teff"]) == list(tb["teff"][:3])


def test_realised_psd_obeys_parseval() -> None:
    n, cad = 100_000, 25.0
    df = 1e6 / (n * cad)
    freq = np.arange(n // 2 + 1) * df
    psd = synthetic.granulation_psd(freq, 2000.0)
    x = synthetic.realise_psd(psd, n, df, np.random.default_rng(0))
    assert x.var() == pytest.approx(psd[1:].sum() * df, rel=0.05)


def test_injected_transit_is_in_the_light_curve() -> None:
    lc, tr = synthetic.simulate_star(1, 10.0, 120.0, seed=1)  # index 1: transit host
    assert tr.kind == "transit"
    good = lc.quality == 0
    t, f = lc.time[good], lc.flux[good] / np.median(lc.flux[good])
    phase = (t - tr.transit_t0_d + 0.5 * tr.transit_period_d) % tr.transit_period_d \
        - 0.5 * tr.transit_period_d
    inside = np.abs(phase) < 0.25 * tr.transit_duration_h / 24
    depth = (1 - np.median(f[inside])) * 1e6
    # Limb darkening makes the centre ~10-20 % deeper than (Rp/R*)^2.
    assert 0.8 * tr.transit_depth_ppm < depth < 1.5 * tr.transit_depth_ppm


def test_cli_writes_an_observation(tmp_path: Path) -> None:
    out = tmp_path / "obs"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), "--stars", "2", "--days", "1", "--seed", "5",
         "--observation-id", "cli-test", "--cadence-s", "50"],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "2 stars" in proc.stdout
    assert manifest.load(out / "manifest.yaml").observation_id == "cli-test"
    assert lightcurve.read_any(out / "lightcurves" / "star00001.h5").cadence_s == 50.0


def test_cli_bad_arguments_are_one_line(tmp_path: Path) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import generate_observation
    finally:
        sys.path.remove(str(SCRIPT.parent))
    code = generate_observation.main([str(tmp_path / "x"), "--stars", "0", "--days", "1",
                                      "--seed", "1", "--observation-id", "bad id"])
    assert code == 2
    assert not (tmp_path / "x").exists()


def test_hard_cases_of_the_second_ten(tmp_path: Path) -> None:
    """Positions 10-19: red giants, subgiants, deep transits, strong variability, no log g,
    and Kepler-era (negative) times when asked."""
    out = tmp_path / "hard"
    truths = synthetic.generate(out, n_stars=20, days=12.0, seed=3, observation_id="hard",
                                time_start=synthetic.KEPLER_ERA_START)
    by_kind: dict[str, list] = {}
    for tr in truths:
        by_kind.setdefault(tr.kind, []).append(tr)
    for kind in ("giant", "subgiant", "hot_jupiter", "active", "active_transit"):
        assert kind in by_kind, kind
    for tr in by_kind["giant"]:
        assert 10.0 <= tr.numax_uhz <= 250.0 and 1.5 <= tr.dnu_uhz <= 22.0
        assert tr.logg < 3.5 and tr.teff < 5300
        assert tr.seismic_snr > 0
    for tr in by_kind["hot_jupiter"]:
        assert tr.transit_depth_ppm >= 10_000 and tr.n_transits >= 2  # >= 1 %, >= 2 in 12 d
    for tr in by_kind["active"] + by_kind["active_transit"]:
        assert tr.spot_amplitude_ppm >= 3000 and tr.prot_d <= 5.0
    m = manifest.load(out / "manifest.yaml")
    no_logg = {s.star_id for s in m.stars if s.logg is None}
    assert no_logg == {tr.star_id for tr in truths if not tr.logg_given}
    assert no_logg and all(s.teff is not None for s in m.stars)
    lc = lightcurve.read_any(out / "lightcurves" / "star00011.h5")
    assert lc.time[0] == pytest.approx(synthetic.KEPLER_ERA_START) and lc.time[-1] < 0
    tr = truths[11]
    assert synthetic.KEPLER_ERA_START <= tr.transit_t0_d < synthetic.KEPLER_ERA_START + 6.0


def test_overrides_fix_drawn_values() -> None:
    _, tr = synthetic.simulate_star(3, 10.0, 60.0, seed=1, kind="giant",
                                    overrides={"numax_uhz": 80.0, "vmag": 9.0})
    assert tr.kind == "giant" and tr.numax_uhz == pytest.approx(80.0) and tr.vmag == 9.0
    with pytest.raises(ValueError, match="unknown kind"):
        synthetic.simulate_star(3, 10.0, 60.0, seed=1, kind="pulsar")


def test_cli_kepler_era(tmp_path: Path) -> None:
    out = tmp_path / "kep"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), "--stars", "1", "--days", "2", "--seed", "5",
         "--observation-id", "kep", "--kepler-era"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    lc = lightcurve.read_any(out / "lightcurves" / "star00000.h5")
    assert lc.time[0] == pytest.approx(synthetic.KEPLER_ERA_START)
