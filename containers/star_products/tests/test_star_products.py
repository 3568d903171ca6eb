"""Star products on the fixture: a product HDF5 and a PNG per star, the rows; a broken star fails
alone; stages made by a fake are marked as such."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import star_products as sp

from stellarflow_contracts.catalogue import COLUMN_NAMES, FAKE_STAGES_META, read_catalogue

DATA = Path(__file__).resolve().parent / "data"


def run(tmp_path: Path, data: Path = DATA) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    args = [a for s in sp.STAGES for a in (f"--{s}", str(data / f"chunk-0000.{s}.h5"))]
    assert sp.main([*args, "--outdir", str(out)]) == 0
    return out


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
