"""Light-curve contract: FITS, tables, HDF5; bad files give one line naming the file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits

from stellarflow_contracts import lightcurve
from stellarflow_contracts.errors import InputError

REAL = Path(__file__).resolve().parents[3] / "tests" / "data" / "real"  # in the repository


def make_lc(n: int = 500, star_id: str = "s") -> lightcurve.LightCurve:
    t = 3000.0 + np.arange(n) * 25.0 / 86400.0
    return lightcurve.LightCurve(star_id, t, 1000.0 + np.random.default_rng(1).normal(0, 1, n),
                                 np.ones(n), np.zeros(n, np.uint32), 25.0)


def test_hdf5_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "a.h5"
    lightcurve.write_file(p, make_lc())
    lc = lightcurve.read_any(p)
    assert lc.star_id == "s" and lc.cadence_s == 25.0 and lc.time.dtype == np.float64
    with h5py.File(p) as f:  # the contract, literally
        assert set(f["lightcurve"]) == {"time", "flux", "flux_err", "quality"}
        assert f["lightcurve/quality"].dtype == np.uint32


def test_tess_fits_real() -> None:
    lc = lightcurve.read_any(REAL / "WASP-126_TIC25155310_TESS_S01_hlsp_tess-data-alerts_lc"
                                         ".fits")
    assert lc.provenance["flux_column"] == "PDCSAP_FLUX"
    assert 1325 < np.nanmin(lc.time) < 1326  # BTJD is already BJD - 2457000
    assert lc.cadence_s == pytest.approx(120.0)


def test_kepler_fits_time_conversion(tmp_path: Path) -> None:
    t = np.linspace(100.0, 101.0, 50)
    cols = [fits.Column("TIME", "D", array=t), fits.Column("SAP_FLUX", "E", array=np.ones(50)),
            fits.Column("SAP_FLUX_ERR", "E", array=np.ones(50) * 1e-3),
            fits.Column("SAP_QUALITY", "J", array=np.zeros(50, np.int32))]
    hdu = fits.BinTableHDU.from_columns(cols)
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "Kepler"
    p = tmp_path / "kplr.fits"
    fits.HDUList([primary, hdu]).writeto(p)
    lc = lightcurve.read_any(p)
    assert lc.time[0] == pytest.approx(100.0 - 2167.0)
    assert "BKJD" in lc.provenance["time_conversion"]


def test_tables_named_and_headerless(tmp_path: Path) -> None:
    lc = lightcurve.read_any(REAL / "KIC1435467_LC.txt")
    assert lc.time.size > 30000 and np.isnan(lc.flux_err).all()
    p = tmp_path / "named.csv"
    p.write_text("time,flux,flux_err\n" + "".join(f"{i},{1+i*1e-6},0.001\n" for i in range(20)))
    assert lightcurve.read_any(p).flux_err[0] == 0.001


@pytest.mark.parametrize("case,expected", [
    ("all_nan", "no finite flux with quality 0"),
    ("wrong_dtype", "has dtype"),
    ("truncated", "unreadable HDF5"),
    ("not_contract", "no group '/lightcurve'"),
    ("garbage_table", "not a readable light-curve table"),
    ("missing", "light curve not found"),
])
def test_bad_light_curves(tmp_path: Path, case: str, expected: str) -> None:
    p = tmp_path / ("x.txt" if case == "garbage_table" else "x.h5")
    if case == "all_nan":
        lc = make_lc()
        lc.flux[:] = np.nan
        lightcurve.write_file(p, lc)
    elif case == "wrong_dtype":
        lightcurve.write_file(p, make_lc())
        with h5py.File(p, "a") as f:
            del f["lightcurve/flux"]
            f["lightcurve/flux"] = np.array([b"a"] * 500)
    elif case == "truncated":
        lightcurve.write_file(p, make_lc(20000))
        p.write_bytes(p.read_bytes()[:3000])
    elif case == "not_contract":
        with h5py.File(p, "w") as f:
            f["data"] = np.arange(3)
    elif case == "garbage_table":
        p.write_text("hello world\nthis is not\na light curve at all\n")
    with pytest.raises(InputError) as err:
        lightcurve.read_any(p)
    assert str(err.value).startswith(str(p)) and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_stitch_normalises_each_file_and_sorts(tmp_path: Path) -> None:
    a, b = make_lc(300), make_lc(300)
    b.time = b.time + 10.0
    b.flux = b.flux * 3.0  # another aperture, another level
    pa, pb = tmp_path / "a.h5", tmp_path / "b.h5"
    lightcurve.write_file(pa, a)
    lightcurve.write_file(pb, b)
    lc = lightcurve.read_many([pb, pa])  # order of the list does not matter
    assert np.all(np.diff(lc.time) > 0) and lc.time.size == 600
    assert np.median(lc.flux[:300]) == pytest.approx(1.0, abs=1e-3)
    assert np.median(lc.flux[300:]) == pytest.approx(1.0, abs=1e-3)
    assert "a.h5, b.h5" in lc.provenance["source_file"] and "2 files" in lc.provenance["stitched"]


@pytest.mark.parametrize("case,expected", [("overlap", "overlaps a.h5 in time"),
                                           ("cadence", "cadence 60.0 s differs")])
def test_stitch_refuses_overlaps_and_mixed_cadences(tmp_path: Path, case: str,
                                                    expected: str) -> None:
    a, b = make_lc(300), make_lc(300)
    if case == "overlap":
        b.time = b.time + 0.01
    else:
        b.time = 3010.0 + np.arange(300) * 60.0 / 86400.0
        b.cadence_s = 60.0
    pa, pb = tmp_path / "a.h5", tmp_path / "b.h5"
    lightcurve.write_file(pa, a)
    lightcurve.write_file(pb, b)
    with pytest.raises(InputError) as err:
        lightcurve.read_many([pa, pb])
    assert str(err.value).startswith(str(pb)) and expected in str(err.value)


def test_empty_pdcsap_falls_back_to_sap(tmp_path: Path) -> None:
    """Archives deliver Kepler/TESS files whose PDCSAP column is all NaN: SAP is used."""
    t = np.linspace(100.0, 101.0, 50)
    cols = [fits.Column("TIME", "D", array=t),
            fits.Column("PDCSAP_FLUX", "E", array=np.full(50, np.nan)),
            fits.Column("SAP_FLUX", "E", array=np.full(50, 5.0e4)),
            fits.Column("QUALITY", "J", array=np.zeros(50, np.int32))]
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "TESS"
    p = tmp_path / "tess.fits"
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols)]).writeto(p)
    lc = lightcurve.read_any(p)
    assert lc.provenance["flux_column"] == "SAP_FLUX" and np.all(lc.flux == 5.0e4)
