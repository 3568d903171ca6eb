"""Star products on the fixture: a product HDF5 and a PNG per star, the rows; a broken star fails
alone; stages made by a fake are marked as such; --lightcurve link, and the CWL tool's default."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import star_products as sp

from stellarflow_contracts.catalogue import COLUMN_NAMES, FAKE_STAGES_META, read_catalogue

DATA = Path(__file__).resolve().parent / "data"
TOOL = Path(__file__).resolve().parents[3] / "cwl" / "tools" / "star_products.cwl"
LINKED = ("time", "flux", "flux_err")


def run(tmp_path: Path, data: Path = DATA, *extra: str) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    args = [a for s in sp.STAGES for a in (f"--{s}", str(data / f"chunk-0000.{s}.h5"))]
    assert sp.main([*args, "--outdir", str(out), *extra]) == 0
    return out


def assert_links_into_prepared(product: Path, prepared: Path) -> None:
    """The product's light curve links into ``prepared`` (beside it) and reads its values."""
    with h5py.File(product) as f, h5py.File(prepared) as p:
        sid = f.attrs["star_id"]
        assert f.attrs[sp.LIGHTCURVE_FILE] == prepared.name
        for name in LINKED:
            link = f.get(f"lightcurve/{name}", getlink=True)
            assert isinstance(link, h5py.ExternalLink), name
            assert (link.filename, link.path) == (prepared.name, f"/stars/{sid}/prepared/{name}")
            src = p[f"stars/{sid}/prepared/{name}"]
            assert np.array_equal(f[f"lightcurve/{name}"][()], src[()], equal_nan=True)
            assert f[f"lightcurve/{name}"].attrs["units"] == src.attrs["units"]
        quality = f.get("lightcurve/quality", getlink=True)
        assert isinstance(quality, h5py.HardLink) and not f["lightcurve/quality"][()].any()
        assert f["lightcurve/time"].attrs["units"] == "d"


def test_products_rows_and_the_broken_star(tmp_path: Path) -> None:
    out = run(tmp_path)
    rows = read_catalogue(out / "chunk-0000.rows.ecsv")
    assert rows.colnames == COLUMN_NAMES
    status = dict(zip(rows["star_id"], rows["status"], strict=True))
    assert status == {"star00000": "ok", "star00001": "ok", "star00002": "ok",
                      "missing": "failed", "broken": "failed"}
    broken = rows[rows["star_id"] == "broken"][0]
    assert broken["error"].startswith("star_products: ")
    assert rows.meta[FAKE_STAGES_META] == []
    for sid in status:
        assert (out / f"{sid}.png").stat().st_size > 1000
        with h5py.File(out / f"{sid}.product.h5") as f:
            assert f.attrs["status"] == status[sid]
            assert set(f["provenance"]) >= {"prepared", "star_products"}
    with h5py.File(out / "star00000.product.h5") as f:
        assert f["lightcurve/time"].attrs["units"] == "d"
        assert f["parameters/radius_rsun"].attrs["units"] == "solRad"


def test_a_faked_stage_is_marked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    with h5py.File(data / "chunk-0000.rotation.h5", "a") as f:
        f.attrs["fake_of"] = "msap4_rotation"
    out = run(tmp_path, data)
    assert read_catalogue(out / "chunk-0000.rows.ecsv").meta[FAKE_STAGES_META] == [
        "msap4_rotation"]
    with h5py.File(out / "star00000.product.h5") as f:
        assert f["provenance/rotation"].attrs["fake"] == 1


def test_figures_notable_and_none(tmp_path: Path) -> None:
    """notable: failed stars and transit candidates get a PNG; none: no PNG; products always."""
    args = [a for s in sp.STAGES for a in (f"--{s}", str(DATA / f"chunk-0000.{s}.h5"))]
    for choice in ("notable", "none"):
        out = tmp_path / choice
        out.mkdir()
        assert sp.main([*args, "--outdir", str(out), "--figures", choice]) == 0
        rows = read_catalogue(out / "chunk-0000.rows.ecsv")
        notable = {str(r["star_id"]) for r in rows
                   if r["status"] == "failed" or r["transit_period_d"] == r["transit_period_d"]}
        drawn = {p.name.removesuffix(".png") for p in out.glob("*.png")}
        assert drawn == (notable if choice == "notable" else set())
        assert set(rows.meta["no_figure"]) == {str(s) for s in rows["star_id"]} - drawn
        assert len(list(out.glob("*.product.h5"))) == len(rows)


def test_lightcurve_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--lightcurve link: time, flux, flux_err are external links into the prepared chunk file,
    by its base name; the product beside a copy of it reads the same values from any working
    directory; failed stars have no light curve; the rows are those of --lightcurve copy."""
    out = run(tmp_path, DATA, "--lightcurve", "link", "--figures", "none")
    shutil.copy2(DATA / "chunk-0000.prepared.h5", out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for sid in ("star00000", "star00001", "star00002"):
        assert_links_into_prepared(out / f"{sid}.product.h5", out / "chunk-0000.prepared.h5")
    for sid in ("missing", "broken"):
        with h5py.File(out / f"{sid}.product.h5") as f:
            assert "lightcurve" not in f and sp.LIGHTCURVE_FILE not in f.attrs
    copied = tmp_path / "copy"
    copied.mkdir()
    args = [a for s in sp.STAGES for a in (f"--{s}", str(DATA / f"chunk-0000.{s}.h5"))]
    assert sp.main([*args, "--outdir", str(copied), "--figures", "none"]) == 0
    with h5py.File(copied / "star00001.product.h5") as c, \
            h5py.File(out / "star00001.product.h5") as f:
        assert sp.LIGHTCURVE_FILE not in c.attrs
        for name in (*LINKED, "quality"):
            assert np.array_equal(c[f"lightcurve/{name}"][()], f[f"lightcurve/{name}"][()])
    rows = [json.loads((d / "chunk-0000.rows.summary.json").read_text()) for d in (out, copied)]
    assert rows[0] == rows[1]


def test_cwl_tool_links_by_default(tmp_path: Path) -> None:
    """The CWL tool's default is ``lightcurve: link`` (cwltool, the module from this venv)."""
    out = tmp_path / "out"
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "")])}
    r = subprocess.run([sys.executable, "-m", "cwltool", "--quiet", "--no-container",
                        "--outdir", str(out), "--tmpdir-prefix", f"{tmp_path}/tmp/", str(TOOL),
                        str(TOOL.with_name("star_products.job.yml"))],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (out / "chunk-0000.prepared.h5").exists()  # the workflow delivers it, not the tool
    shutil.copy2(DATA / "chunk-0000.prepared.h5", out)
    assert_links_into_prepared(out / "star00002.product.h5", out / "chunk-0000.prepared.h5")
