"""MSAP5: scaling relations, catalogue fallback and gyrochronology on the Sun and known stars."""

from __future__ import annotations

import math

import pytest

from stellarflow.modules import msap5_stellar_parameters as m5


def test_sun_seismic_is_one() -> None:
    r, r_err, mass, m_err = m5.seismic(3090.0, 30.0, 135.1, 0.1, 5777.0)
    assert r == pytest.approx(1.0) and mass == pytest.approx(1.0)
    assert 0 < r_err < 0.1 and 0 < m_err < 0.2


def test_kic1435467_published_scaling() -> None:
    # νmax, Δν from the SYD table, Teff ~ 6300 K: R ≈ 1.7 R☉, M ≈ 1.4 M☉ (Huber et al. scale).
    r, _, mass, _ = m5.seismic(1382.0, 9.0, 70.56, 0.05, 6326.0)
    assert r == pytest.approx(1.71, rel=0.03) and mass == pytest.approx(1.37, rel=0.05)


def test_torres_sun() -> None:
    r, r_err, mass, m_err = m5.torres2010(5777.0, 4.438, 0.0)
    assert r == pytest.approx(1.0, rel=0.05) and mass == pytest.approx(1.0, rel=0.07)
    assert r_err > 0 and m_err > 0


def test_gyro_age_sun() -> None:
    age, err, bv = m5.gyro_age(26.1, 1.0, 5777.0)
    assert bv == pytest.approx(0.65, abs=0.03)
    assert age == pytest.approx(4.5, rel=0.15) and err > 0


def test_derive_fallbacks() -> None:
    nan = math.nan
    p = m5.derive(5777.0, 4.438, 0.0, nan, nan, nan, nan, nan, nan)
    assert p.method.startswith("Torres") and math.isnan(p.age_gyr)
    p = m5.derive(5777.0, 4.438, 0.0, 3090.0, 30.0, 135.1, 0.1, 26.1, 1.0)
    assert p.method == "seismic scaling relations" and p.age_gyr > 0
    p = m5.derive(nan, nan, nan, nan, nan, nan, nan, nan, nan)
    assert p.method == "none" and math.isnan(p.radius_rsun)
    hot = m5.derive(7500.0, 4.0, 0.0, nan, nan, nan, nan, 1.0, 0.1)
    assert math.isnan(hot.age_gyr)  # outside the gyrochronology calibration
