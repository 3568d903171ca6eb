"""End to end: `stellarflow run` under Toil on generated + real + bad stars; cwltool agrees.

One observation is run twice (Toil, then cwltool on the same CWL job); every other assertion
reads those two runs' outputs, so the default test run pays for two pipeline runs only.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.table import Table
from ruamel.yaml import YAML

from stellarflow import cli
from stellarflow_contracts import lightcurve
from stellarflow_contracts.catalogue import COLUMN_NAMES, read_catalogue

from conftest import REPO, containers_available, generate

WASP126 = "WASP-126_TIC25155310_TESS_S01_hlsp_tess-data-alerts_lc.fits"
SCIENCE = [c for c in COLUMN_NAMES if c not in ("star_id", "status", "error", "cpu_s")]


def use_containers() -> bool:
    """STELLARFLOW_TEST_CONTAINERS=1 (make test) requires the images; 0 forbids; unset: auto."""
    want = os.environ.get("STELLARFLOW_TEST_CONTAINERS", "auto")
    if want == "0":
        return False
    have = containers_available()
    if want == "1" and not have:
        pytest.fail("STELLARFLOW_TEST_CONTAINERS=1 but the images are missing: run `make images`")
    return have


@pytest.fixture(scope="module")
def observation(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> Path:
    obs = tmp_path_factory.mktemp("e2e") / "obs"
    manifest = generate(obs, "--stars", "8", "--days", "30", "--seed", "11",
                        "--observation-id", "e2e")
    (obs / "real").mkdir()
    for name in (WASP126, "KIC1435467_LC.txt", "KIC4646780_LC.txt"):
        shutil.copy(real_data / name, obs / "real" / name)
    # A light curve whose flux is all NaN: a star-level failure.
    lc = lightcurve.read_any(obs / "lightcurves" / "star00000.h5")
    lc.flux[:] = np.nan
    lightcurve.write_file(obs / "lightcurves" / "allnan.h5", lc)
    yaml = YAML()
    doc = yaml.load(manifest)
    doc["stars"] += [
        {"star_id": "WASP-126", "lightcurve": f"real/{WASP126}", "teff": 5800.0, "logg": 4.2},
        {"star_id": "KIC1435467", "lightcurve": "real/KIC1435467_LC.txt", "teff": 6326.0,
         "logg": 4.1},
        {"star_id": "KIC4646780", "lightcurve": "real/KIC4646780_LC.txt", "teff": 6200.0,
         "logg": 4.2},
        {"star_id": "missing", "lightcurve": "lightcurves/does-not-exist.h5"},
        {"star_id": "allnan", "lightcurve": "lightcurves/allnan.h5"},
    ]
    yaml.dump(doc, manifest)
    return manifest


def run_cli(*args: str) -> int:
    return cli.main(list(args))


@pytest.fixture(scope="module")
def toil_out(observation: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toil_out")
    flags = [] if use_containers() else ["--no-container"]
    rc = run_cli("run", str(observation), "--outdir", str(out), "--chunk-size", "7", *flags)
    assert rc == 0
    return out / "e2e"


@pytest.fixture(scope="module")
def cwltool_out(observation: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cwltool_out")
    flags = [] if use_containers() else ["--no-container"]
    rc = run_cli("run", str(observation), "--outdir", str(out), "--chunk-size", "7",
                 "--runner", "cwltool", *flags)
    assert rc == 0
    return out / "e2e"


def rows(out: Path) -> dict[str, dict]:
    t = read_catalogue(out / "catalogue.ecsv")
    return {str(r["star_id"]): {c: r[c] for c in t.colnames} for r in t}


def test_catalogue_contract(toil_out: Path) -> None:
    t = read_catalogue(toil_out / "catalogue.ecsv")
    assert t.colnames == COLUMN_NAMES
    assert len(t) == 13
    assert str(t["prot_d"].unit) == "d" and str(t["numax_uhz"].unit) == "uHz"
    assert str(t["transit_depth_ppm"].unit) == "ppm" and str(t["cpu_s"].unit) == "s"
    assert set(t["status"]) <= {"ok", "failed"}
    assert (t["cpu_s"] > 0).all()
    text = (toil_out / "catalogue.ecsv").read_text()
    assert "# %ECSV" in text.splitlines()[0]


def test_bad_stars_are_failed_rows_and_nothing_else_is_lost(toil_out: Path) -> None:
    r = rows(toil_out)
    assert r["missing"]["status"] == "failed"
    assert r["missing"]["error"] == ("ingest: lightcurves/does-not-exist.h5: "
                                     "light curve not found")
    assert r["allnan"]["status"] == "failed"
    assert r["allnan"]["error"].startswith("ingest: allnan.h5: no finite flux with quality 0")
    assert "\n" not in r["allnan"]["error"]
    ok = [s for s, v in r.items() if v["status"] == "ok"]
    assert len(ok) == 11, {s: v["error"] for s, v in r.items() if v["status"] != "ok"}
    assert math.isnan(r["missing"]["prot_d"])


def test_cwltool_gives_the_same_catalogue(toil_out: Path, cwltool_out: Path) -> None:
    a, b = rows(toil_out), rows(cwltool_out)
    assert a.keys() == b.keys()
    for sid in a:
        assert a[sid]["status"] == b[sid]["status"] and a[sid]["error"] == b[sid]["error"]
        for col in SCIENCE:
            x, y = float(a[sid][col]), float(b[sid][col])
            assert (math.isnan(x) and math.isnan(y)) or x == y, (sid, col, x, y)


def test_synthetic_recovery(toil_out: Path, observation: Path) -> None:
    truths = Table.read(observation.parent / "truths.ecsv")
    r = rows(toil_out)
    checked = {"prot": 0, "seismic": 0, "transit": 0, "quiet": 0}
    for t in truths:
        got = r[str(t["star_id"])]
        assert got["status"] == "ok", got["error"]
        if t["prot_detectable"]:
            assert got["prot_d"] == pytest.approx(t["prot_d"], rel=0.10)
            checked["prot"] += 1
        if t["seismic_detectable"]:
            assert got["numax_uhz"] == pytest.approx(t["numax_uhz"], rel=0.05)
            assert got["dnu_uhz"] == pytest.approx(t["dnu_uhz"], rel=0.03)
            checked["seismic"] += 1
        if t["transit_detectable"]:
            assert got["transit_period_d"] == pytest.approx(t["transit_period_d"], rel=0.005)
            checked["transit"] += 1
        if t["kind"] in ("quiet", "rotator", "hot"):
            assert math.isnan(got["transit_period_d"]), f"false transit in {t['star_id']}"
            checked["quiet"] += 1
    assert all(v > 0 for v in checked.values()), checked


def test_real_stars_through_the_pipeline(toil_out: Path) -> None:
    r = rows(toil_out)
    assert r["WASP-126"]["transit_period_d"] == pytest.approx(3.28879, rel=0.001)
    assert r["WASP-126"]["transit_depth_ppm"] == pytest.approx(6000, rel=0.25)
    assert r["KIC1435467"]["numax_uhz"] == pytest.approx(1382, rel=0.05)
    assert r["KIC1435467"]["dnu_uhz"] == pytest.approx(70.56, rel=0.03)
    assert r["KIC4646780"]["numax_uhz"] == pytest.approx(1120, rel=0.05)
    assert r["KIC4646780"]["dnu_uhz"] == pytest.approx(60.0, rel=0.03)


def test_products_and_report(toil_out: Path) -> None:
    report = (toil_out / "report.html").read_text()
    for sid, v in rows(toil_out).items():
        product = toil_out / f"{sid}.product.h5"
        assert (toil_out / f"{sid}.png").stat().st_size > 1000
        assert f'href="{sid}.png"' in report and f'href="{sid}.product.h5"' in report
        with h5py.File(product) as f:
            assert f.attrs["status"] == v["status"]
            if v["status"] != "ok":
                continue
            # Its light curve links into its chunk's prepared file, delivered beside it.
            assert (toil_out / f.attrs["lightcurve_file"]).is_file()
            assert f'href="{f.attrs["lightcurve_file"]}"' in report  # the report links it
            assert {"ingest", "msap1_preparation", "msap4_rotation",
                    "msap5_stellar_parameters", "transit_search", "star_products"} <= {
                f["provenance"][s].attrs["module"] for s in f["provenance"]}
            value, err = f["parameters/radius_rsun"][()]
            assert value > 0 and err > 0
            images = {f["provenance"][s].attrs["image"] for s in f["provenance"]}
            if use_containers():
                assert all(i.startswith("localhost/stellarflow/") for i in images), images
        # The product is itself a valid light-curve contract file (the prepared light curve).
        lightcurve.read_any(product)


def test_manifest_error_exits_before_any_work(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("manifest_version: 1\nobservation_id: x\nworkflow: sas\nstars: []\n")
    proc = subprocess.run([sys.executable, "-m", "stellarflow.cli", "run", str(bad),
                           "--outdir", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(bad) in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_site_is_one_line(small_observation: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "stellarflow.cli", "run",
                           str(small_observation), "--outdir", str(tmp_path),
                           "--site", "nowhere", "--no-container"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert proc.stderr.startswith("stellarflow: error: unknown site profile 'nowhere'")
    assert proc.stderr.count("\n") == 1


def test_fake_swap_runs_the_module_tool_in_the_fake_image(small_observation: Path,
                                                          tmp_path: Path) -> None:
    """`stellarflow run --fake msap3_seismology`: the same CWL, MSAP3's tool in the fake module's
    image (numpy 1.26) beside the science images (numpy 2); the catalogue and the report say
    which stage was a fake; the rest of the science is unchanged."""
    if not use_containers():
        pytest.skip("--fake runs the fake's image: containers are off")
    rc = run_cli("run", str(small_observation), "--outdir", str(tmp_path), "--fake",
                 "msap3_seismology")
    assert rc == 0
    out = tmp_path / "small"
    t = read_catalogue(out / "catalogue.ecsv")
    assert t.meta["fake_stages"] == ["msap3_seismology"]
    assert "contract-conformant fakes" in (out / "report.html").read_text()
    assert all(math.isnan(v) for v in t["numax_uhz"])
    ok = [r for r in t if r["status"] == "ok"]
    assert ok and any(math.isfinite(r["radius_rsun"]) for r in ok)  # MSAP5 falls back on Teff
    runs = list((tmp_path / ".stellarflow" / "runs").glob("small-*"))
    assert (runs[0] / "overrides.json").exists()
    with h5py.File(out / f"{ok[0]['star_id']}.product.h5") as f:
        seis = f["provenance/seismology"].attrs
        assert seis["fake"] == 1 and seis["module"] == "fake_module"
        assert seis["image"].startswith("localhost/stellarflow/fake_module:")
        assert "numpy 1.26" in seis["runtime"]
        assert "numpy 2." in f["provenance/rotation"].attrs["runtime"]


def test_fake_of_an_unknown_module_is_one_line(small_observation: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "stellarflow.cli", "run",
                           str(small_observation), "--outdir", str(tmp_path), "--fake",
                           "ingest"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("stellarflow: error: --fake ingest: no fake for it; choose from")
