"""MSAP3 seismology: recovery of injected numax/Dnu, non-detection of non-oscillators,
published values of two Kepler stars, and the chunk wrapper."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import h5py
import msap3_seismology as m3
import numpy as np
import pytest

from stellarflow import synthetic
from stellarflow_contracts import lightcurve

REAL = Path(__file__).resolve().parents[3] / "tests" / "data" / "real"  # in the repository
SEED, DAYS = 1, 30.0  # 30 d at 25 s keeps each star ~0.5 s


def _prepared(index: int) -> tuple[np.ndarray, np.ndarray, synthetic.Truth]:
    """What MSAP1 hands over, in short: quality-masked and normalised to median 1."""
    lc, truth = synthetic.simulate_star(index, DAYS, 25.0, SEED)
    good = lc.quality == 0
    return lc.time[good], lc.flux[good] / np.median(lc.flux[good]), truth


# The first oscillators of the kind cycle (indices 0, 4, 6: F/G dwarfs, one transit host).
@pytest.mark.parametrize("index", [0, 4, 6])
def test_recovers_injected_numax_and_dnu(index: int) -> None:
    t, f, truth = _prepared(index)
    assert truth.seismic_detectable
    res = m3.measure(t, f, cadence_s=25.0)
    assert res.detected, (res.excess_snr, res.comb_snr)
    assert res.numax_uhz == pytest.approx(truth.numax_uhz, rel=0.05)
    assert res.dnu_uhz == pytest.approx(truth.dnu_uhz, rel=0.03)
    assert 0 < res.numax_err_uhz < 0.1 * res.numax_uhz
    assert 0 < res.dnu_err_uhz < 0.05 * res.dnu_uhz


@pytest.mark.parametrize("index", [3, 5, 9])  # quiet, hot, quiet
def test_quiet_and_hot_stars_are_not_detected(index: int) -> None:
    t, f, truth = _prepared(index)
    assert truth.kind in ("quiet", "hot") and not truth.seismic_detectable
    res = m3.measure(t, f, cadence_s=25.0)
    assert not res.detected
    assert math.isnan(res.numax_uhz) and math.isnan(res.dnu_uhz)


def test_transit_host_is_not_taken_for_an_oscillator() -> None:
    t, f, truth = _prepared(1)
    assert truth.kind == "transit"
    assert not m3.measure(t, f, cadence_s=25.0).detected


@pytest.mark.parametrize("factor", [1.3, 4.0, 0.1])
def test_numax_guess_is_a_prior_never_a_window(factor: float) -> None:
    """A log g ranks candidates; even a guess a whole evolutionary state off (x4, /10) does
    not hide the true envelope."""
    t, f, truth = _prepared(4)
    res = m3.measure(t, f, cadence_s=25.0, numax_guess=truth.numax_uhz * factor)
    assert res.detected
    assert res.numax_uhz == pytest.approx(truth.numax_uhz, rel=0.05)


def test_search_range_reaches_red_giants_and_the_nyquist_limit() -> None:
    lo, hi = m3.numax_search_range(730.0, 25.0)
    assert lo == m3.NUMAX_FLOOR_UHZ and hi == pytest.approx(0.85 * 20000.0)
    lo30, _ = m3.numax_search_range(30.0, 25.0)
    assert lo30 < 20.0  # red giants' numax 10-250 uHz: resolution permitting
    lo_kepler, hi_kepler = m3.numax_search_range(90.0, 1765.5)  # Kepler long cadence
    assert lo_kepler < 10.0 and hi_kepler == pytest.approx(0.85 * 283.2, rel=1e-3)


def test_psd_is_parseval_normalised() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(100_000) * 25.0 / 86400.0
    sigma = 200.0
    f, psd = m3.power_density(t, rng.normal(0, sigma, t.size), 25.0)
    # One-sided white-noise density: 2 sigma^2 dt, in ppm^2/uHz.
    assert psd.mean() == pytest.approx(2 * sigma**2 * 25.0 * 1e-6, rel=0.02)
    assert f[-1] == pytest.approx(20000.0, rel=1e-3)


@pytest.mark.parametrize("name,numax,dnu", [("KIC1435467", 1382.0, 70.56),
                                            ("KIC4646780", 1120.0, 60.0)])
def test_published_values_of_kepler_stars(name: str, numax: float, dnu: float) -> None:
    path = REAL / f"{name}_LC.txt"
    lc = lightcurve.read_any(path)
    good = (lc.quality == 0) & np.isfinite(lc.flux)
    res = m3.measure(lc.time[good], lc.flux[good] / np.median(lc.flux[good]),
                     cadence_s=lc.cadence_s)
    assert res.detected
    assert res.numax_uhz == pytest.approx(numax, rel=0.05)
    assert res.dnu_uhz == pytest.approx(dnu, rel=0.03)


def _write_prepared_chunk(path: Path) -> None:
    stars = {"osc": 0, "quiet": 3, "notcand": 6, "broken": None, "upstream": None}
    with h5py.File(path, "w") as fh:
        fh.attrs["chunk_id"] = "chunk-0001"
        fh.attrs["observation_id"] = "obs-test"
        fh.attrs["stage"] = "prepared"
        fh.attrs["star_ids"] = np.array(list(stars), dtype=h5py.string_dtype())
        root = fh.create_group("stars")
        for sid, index in stars.items():
            g = root.create_group(sid)
            g.attrs["status"] = "ok"
            g.attrs["error"] = ""
            g.attrs["cpu_s"] = 0.0
            g.attrs["cadence_s"] = 25.0
            g.attrs["teff"] = 5800.0
            g.attrs["numax_guess_uhz"] = math.nan
            g.attrs["seismic_candidate"] = 0 if sid == "notcand" else 1
            if sid == "upstream":
                g.attrs["status"] = "failed"
                g.attrs["error"] = "msap1_preparation: something upstream"
            if index is None:
                continue
            t, f, _ = _prepared(index)
            p = g.create_group("prepared")
            p.create_dataset("time", data=t)
            p.create_dataset("flux", data=f)
            p.create_dataset("flux_err", data=np.full_like(f, 1e-4))


def test_chunk_wrapper(tmp_path: Path) -> None:
    src = tmp_path / "chunk-0001.prepared.h5"
    _write_prepared_chunk(src)
    out = tmp_path / "out"
    out.mkdir()
    assert m3.main(["--prepared", str(src), "--outdir", str(out)]) == 0
    with h5py.File(out / "chunk-0001.seismology.h5") as fh:
        assert fh.attrs["stage"] == "seismology"
        assert fh.attrs["module"] == "msap3_seismology"
        assert fh.attrs["module_version"] == m3.__version__
        s = fh["stars"]
        osc = s["osc"]
        assert osc.attrs["status"] == "ok" and osc.attrs["seismic_detected"] == 1
        assert osc.attrs["numax_uhz"] > 0 and osc.attrs["dnu_uhz"] > 0
        assert osc.attrs["cpu_s"] > 0
        psd = osc["psd"]
        n = psd["frequency_uhz"].shape[0]
        assert 1000 < n <= m3.PSD_STORE_MAX
        assert psd["psd_ppm2_per_uhz"].shape == psd["background_ppm2_per_uhz"].shape == (n,)
        assert np.all(np.diff(psd["frequency_uhz"][()]) > 0)
        quiet = s["quiet"]
        assert quiet.attrs["status"] == "ok" and quiet.attrs["seismic_detected"] == 0
        assert math.isnan(quiet.attrs["numax_uhz"])
        nc = s["notcand"]
        assert nc.attrs["status"] == "ok" and nc.attrs["seismic_detected"] == 0
        assert math.isnan(nc.attrs["numax_uhz"]) and "psd" not in nc
        broken = s["broken"]
        assert broken.attrs["status"] == "failed"
        assert "msap3_seismology" in broken.attrs["error"]
        assert s["upstream"].attrs["status"] == "failed"
        assert s["upstream"].attrs["error"] == "msap1_preparation: something upstream"


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "nope.h5"
    bad.write_text("not hdf5")
    assert m3.main(["--prepared", str(bad), "--outdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err


def test_version_flag() -> None:
    proc = subprocess.run(["msap3_seismology",
                           "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"msap3_seismology {m3.__version__}"


def test_red_giant_numax_with_teff_only() -> None:
    """A red giant of the generator (l = 1 mixed modes), 60 days, no log g."""
    lc, truth = synthetic.simulate_star(7, 60.0, 25.0, 2, kind="giant",
                                        overrides={"numax_uhz": 110.0, "vmag": 9.0})
    good = lc.quality == 0
    res = m3.measure(lc.time[good], lc.flux[good] / np.median(lc.flux[good]), cadence_s=25.0)
    assert res.detected, (res.excess_snr, res.comb_snr, res.numax_candidate_uhz)
    assert res.numax_uhz == pytest.approx(truth.numax_uhz, rel=0.05)


@pytest.mark.parametrize("shift", [None, 0.15, -0.15])
def test_subgiant_kic11802939_is_detected_where_published(shift: float | None) -> None:
    """KIC 11802939 (subgiant, 20.9 d, Teff 6000 K assumed): detected by the harmonic comb
    (its ACF comb, 3.1, is below COMB_SNR_MIN), numax inside the published 574 +- 96 uHz and
    Dnu within 3 % of 36.7 uHz, with Teff only and with a log g 0.15 dex off either way."""
    path = REAL / "KIC11802939_LC.txt"
    from stellarflow_contracts import solar

    lc = lightcurve.read_any(path)
    good = (lc.quality == 0) & np.isfinite(lc.flux)
    logg = solar.LOGG_SUN + math.log10(574.0 / solar.NUMAX_SUN_UHZ) + 0.5 * math.log10(
        6000.0 / solar.TEFF_SUN_K)
    guess = None if shift is None else solar.numax_from_logg(6000.0, logg + shift)
    res = m3.measure(lc.time[good], lc.flux[good] / np.median(lc.flux[good]),
                     cadence_s=lc.cadence_s, teff=6000.0, numax_guess=guess)
    assert res.detected, (res.numax_candidate_uhz, res.excess_snr, res.comb_snr)
    assert abs(res.numax_uhz - 574.0) < 96.0
    assert math.isfinite(res.dnu_uhz)
    assert res.dnu_uhz == pytest.approx(36.7, rel=0.03)


def test_harmonic_sigma_is_the_gamma_tail() -> None:
    """The harmonic sum of white noise is Gamma(COMB_HARMONICS, 1): its Gaussian-equivalent
    significance is 0 at the median and grows with S."""
    from scipy.stats import gamma

    assert m3.harmonic_sigma(float(gamma.median(m3.COMB_HARMONICS))) == pytest.approx(0.0,
                                                                                     abs=1e-9)
    assert m3.harmonic_sigma(m3.HARMONIC_SUM_MIN) > 3.0
    assert m3.harmonic_sigma(0.0) == 0.0 and m3.harmonic_sigma(math.nan) == 0.0


def test_white_noise_is_not_detected_by_the_harmonic_comb() -> None:
    """Pure white noise (a few fixed seeds): no detection by any rule."""
    for seed in range(3):
        rng = np.random.default_rng([11, seed])
        t = np.arange(0.0, 30.0, 25.0 / 86400.0)
        res = m3.measure(t, 1.0 + rng.normal(0.0, 200e-6, t.size), cadence_s=25.0)
        assert not res.detected, (seed, res.numax_candidate_uhz, res.excess_snr, res.comb_snr)
