"""MSAP4 rotation: injected spot signals are recovered, noise gives no period, chunk I/O."""

from __future__ import annotations

from pathlib import Path

import h5py
import msap4_rotation as rot
import numpy as np
import pytest
from scipy.signal import lfilter

from stellarflow_contracts.chunk import NotMeasurable

CADENCE_D = 25.0 / 86400.0
REAL = Path(__file__).resolve().parents[3] / "tests" / "data" / "real"  # in the repository
WASP126 = REAL / "WASP-126_TIC25155310_TESS_S01_hlsp_tess-data-alerts_lc.fits"


def red_noise(rng: np.random.Generator, n: int, tau_d: float, sigma: float) -> np.ndarray:
    """AR(1) (exponentially correlated) noise of standard deviation ``sigma``."""
    a = np.exp(-CADENCE_D / tau_d)
    e = rng.normal(0.0, sigma * np.sqrt(1 - a * a), n)
    return lfilter([1.0], [1.0, -a], e, zi=[a * rng.normal(0.0, sigma)])[0]


def spotted_star(seed: int, prot: float | None, amp: float = 2e-3, harm: float = 0.5,
                 days: float = 60.0, white: float = 200e-6, red: float = 80e-6,
                 tau_d: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Relative flux: quasi-sinusoidal spot signal (evolving amplitude and phase) with a first
    harmonic, white and red noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, days, CADENCE_D)
    f = 1.0 + rng.normal(0.0, white, t.size) + red_noise(rng, t.size, tau_d, red)
    if prot is not None:
        env = 1.0 + 0.3 * np.sin(2 * np.pi * t / (3.7 * prot) + rng.uniform(0, 2 * np.pi))
        phase = 0.3 * np.sin(2 * np.pi * t / (5.3 * prot))
        f += amp * env * (np.sin(2 * np.pi * t / prot + phase)
                          + harm * np.sin(4 * np.pi * t / prot + 2 * phase + 1.0))
    return t, f


@pytest.mark.parametrize("seed,prot,amp,harm", [
    (1, 2.3, 2e-3, 0.5),
    (2, 7.5, 1e-3, 0.3),
    (3, 15.0, 3e-3, 1.4),   # harmonic stronger than the fundamental
    (4, 19.0, 5e-4, 0.5),   # long period, small amplitude
    (5, 4.1, 3e-4, 1.2),
    (6, 11.0, 2e-3, 2.0),   # two active longitudes: LS peaks at P/2, the ACF guard restores P
])
def test_injected_rotation_recovered(seed: int, prot: float, amp: float, harm: float) -> None:
    t, f = spotted_star(seed, prot, amp, harm)
    res = rot.measure(t, f)
    assert res.detected, res
    assert abs(res.prot_d / prot - 1) < 0.10, (res.prot_d, prot)
    assert 0 < res.prot_err_d < 0.3 * prot
    # S_ph of a stationary A sin + B sin(2x) signal is A sqrt((1 + (B/A)^2) / 2) (+ noise)
    expect = amp * np.sqrt((1 + harm ** 2) / 2) * 1e6
    assert 0.6 * expect < res.activity_sph_ppm < 1.5 * expect + 100


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_white_noise_gives_no_rotation(seed: int) -> None:
    t, f = spotted_star(seed, None, red=0.0)
    res = rot.measure(t, f)
    assert not res.detected, res
    assert np.isnan(res.prot_d) and np.isnan(res.activity_sph_ppm)
    assert np.isfinite(res.candidate_prot_d)  # the best peak is still reported


@pytest.mark.parametrize("seed,red,tau", [(21, 100e-6, 0.5), (22, 300e-6, 2.0)])
def test_red_noise_gives_no_rotation(seed: int, red: float, tau: float) -> None:
    t, f = spotted_star(seed, None, red=red, tau_d=tau)
    assert not rot.measure(t, f).detected


def test_transits_are_not_taken_for_rotation() -> None:
    from stellarflow_contracts.lightcurve import read_any

    lc = read_any(WASP126)
    ok = (lc.quality == 0) & np.isfinite(lc.flux) & np.isfinite(lc.time)
    res = rot.measure(lc.time[ok], lc.flux[ok] / np.median(lc.flux[ok]))
    # WASP-126 is a quiet G star; its 3.29-d transits must not come out as a rotation period
    assert not (np.isfinite(res.prot_d) and abs(res.prot_d / 3.28879 - 1) < 0.05), res


@pytest.mark.parametrize("seed,prot,p_orb", [(15, None, 1.0), (16, 8.0, 1.3)])
def test_short_period_transits_are_not_rotation(seed: int, prot: float | None,
                                                p_orb: float) -> None:
    """A 2-h, 0.2 % transit every ~day (12 % of the 30-min bins once widened) is removed
    before the periodogram: no period on a quiet star, the spot period on a spotted one."""
    t, f = spotted_star(seed, prot, 1.5e-3, 0.5)
    phase = (t - 0.3 + 0.5 * p_orb) % p_orb - 0.5 * p_orb
    f = f * np.where(np.abs(phase) < 1.0 / 24, 1 - 2e-3, 1.0)
    res = rot.measure(t, f)
    if prot is None:
        assert not res.detected, res
    else:
        assert abs(res.prot_d / prot - 1) < 0.10, res


def test_gaps_and_nans_are_tolerated() -> None:
    t, f = spotted_star(7, 6.0, 1e-3, 0.5, days=40.0)
    f[(t > 12) & (t < 15)] = np.nan  # a gap
    f[::97] = np.nan
    res = rot.measure(t, f)
    assert abs(res.prot_d / 6.0 - 1) < 0.10


def test_too_short_is_not_measurable() -> None:
    t = np.arange(0, 0.8, CADENCE_D)
    with pytest.raises(NotMeasurable, match="too short"):
        rot.measure(t, np.ones_like(t))


def test_short_star_stays_ok_with_a_note(tmp_path: Path) -> None:
    t = np.arange(0, 0.8, CADENCE_D)
    _write_prepared(tmp_path / "c001.prepared.h5", {"short": (t, np.ones_like(t))})
    assert rot.main(["--prepared", str(tmp_path / "c001.prepared.h5"),
                     "--outdir", str(tmp_path)]) == 0
    with h5py.File(tmp_path / "c001.rotation.h5", "r") as out:
        star = out["stars/short"]
        assert star.attrs["status"] == "ok" and star.attrs["error"] == ""
        assert "too short for a rotation search" in star.attrs["note"]
        assert "prot_d" not in star.attrs  # read downstream as NaN


def _write_prepared(path: Path, stars: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["chunk_id"] = "c001"
        f.attrs["observation_id"] = "obs-test"
        f.attrs["stage"] = "prepared"
        f.attrs["star_ids"] = np.array(list(stars), dtype=h5py.string_dtype())
        g = f.create_group("stars")
        for sid, (t, flux) in stars.items():
            s = g.create_group(sid)
            s.attrs["status"] = "ok"
            s.attrs["error"] = ""
            s.attrs["cpu_s"] = 0.0
            p = s.create_group("prepared")
            p.create_dataset("time", data=t)
            p.create_dataset("flux", data=flux)
            p.create_dataset("flux_err", data=np.full_like(flux, 2e-4))


def test_chunk_wrapper_one_bad_star(tmp_path: Path) -> None:
    t, f = spotted_star(8, 5.0, 2e-3, 0.5, days=30.0)
    t, f = t[::5], f[::5]  # ~2-min cadence keeps the file small
    _write_prepared(tmp_path / "c001.prepared.h5", {
        "good": (t, f),
        "allnan": (np.full(500, np.nan), np.full(500, np.nan)),
    })
    rc = rot.main(["--prepared", str(tmp_path / "c001.prepared.h5"), "--outdir", str(tmp_path)])
    assert rc == 0
    with h5py.File(tmp_path / "c001.rotation.h5", "r") as out:
        assert out.attrs["stage"] == "rotation" and out.attrs["module"] == "msap4_rotation"
        good = out["stars/good"]
        assert good.attrs["status"] == "ok"
        assert abs(good.attrs["prot_d"] / 5.0 - 1) < 0.10
        assert good.attrs["prot_err_d"] > 0 and good.attrs["activity_sph_ppm"] > 0
        n = good["periodogram/period_d"].shape[0]
        assert 0 < n <= rot.MAX_STORED and good["periodogram/power"].shape == (n,)
        assert np.all(np.diff(good["periodogram/period_d"][()]) > 0)
        bad = out["stars/allnan"]
        assert bad.attrs["status"] == "failed"
        err = str(bad.attrs["error"])
        assert err.startswith("msap4_rotation:") and "\n" not in err and "finite" in err
        assert "periodogram" not in bad


def test_cli_bad_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = rot.main(["--prepared", str(tmp_path / "missing.h5"), "--outdir", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "missing.h5" in err and len(err.splitlines()) == 1


def test_downsample_keeps_peak() -> None:
    x = np.linspace(0, 1, 20001)
    y = np.exp(-((x - 0.3217) / 1e-4) ** 2)
    xs, ys = rot.downsample(x, y, 5000)
    assert xs.size <= 5000 and ys.max() == y.max()
