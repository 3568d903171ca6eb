"""Catalogue assembly: contract columns and units, a row with an unknown status failed alone,
fakes listed, empty strings stay empty."""

from __future__ import annotations

import json
from pathlib import Path

import catalogue

from stellarflow_contracts.catalogue import COLUMN_NAMES, FAKE_STAGES_META, read_catalogue

DATA = Path(__file__).resolve().parent / "data"


def test_catalogue_report_and_summary(tmp_path: Path) -> None:
    assert catalogue.main(["--observation-id", "fx", "--rows", str(DATA / "chunk-0000.rows.ecsv"),
                           "--outdir", str(tmp_path)]) == 0
    t = read_catalogue(tmp_path / "catalogue.ecsv")
    assert t.colnames == COLUMN_NAMES
    assert str(t["numax_uhz"].unit) == "uHz" and str(t["transit_depth_ppm"].unit) == "ppm"
    rows = {r["star_id"]: r for r in t}
    assert rows["star00000"]["status"] == "ok" and rows["star00000"]["error"] == ""
    assert rows["broken"]["status"] == "failed"
    assert rows["broken"]["error"].startswith("catalogue: row status 'unknown-status'")
    assert t.meta["observation_id"] == "fx" and t.meta[FAKE_STAGES_META] == []
    report = (tmp_path / "report.html").read_text()
    assert "5 stars" in report and "broken" in report
    # Each star links its chunk's light-curve file, which its product's light curve links into.
    assert report.count('href="chunk-0000.prepared.h5"') == 5
    summary = json.loads((tmp_path / "catalogue.summary.json").read_text())
    assert summary["stars"] == {"total": 5, "ok": 3, "failed": 2}


def test_fake_stages_reach_the_report(tmp_path: Path) -> None:
    rows = read_catalogue(DATA / "chunk-0000.rows.ecsv")
    rows.meta[FAKE_STAGES_META] = ["msap3_seismology"]
    rows.write(tmp_path / "r.ecsv", format="ascii.ecsv")
    out = tmp_path / "out"
    out.mkdir()
    assert catalogue.main(["--observation-id", "fx", "--rows", str(tmp_path / "r.ecsv"),
                           "--outdir", str(out)]) == 0
    assert read_catalogue(out / "catalogue.ecsv").meta[FAKE_STAGES_META] == ["msap3_seismology"]
    assert "contract-conformant fakes" in (out / "report.html").read_text()


def test_stars_without_a_figure_get_no_png_link(tmp_path: Path) -> None:
    rows = read_catalogue(DATA / "chunk-0000.rows.ecsv")
    rows.meta[catalogue.NO_FIGURE_META] = ["star00000"]
    rows.write(tmp_path / "r.ecsv", format="ascii.ecsv")
    out = tmp_path / "out"
    out.mkdir()
    assert catalogue.main(["--observation-id", "fx", "--rows", str(tmp_path / "r.ecsv"),
                           "--outdir", str(out)]) == 0
    report = (out / "report.html").read_text()
    assert 'href="star00000.png"' not in report and 'href="star00000.product.h5"' in report
    assert 'href="star00001.png"' in report and "Figures: 4 of 5 stars" in report
