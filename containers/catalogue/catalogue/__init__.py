"""Catalogue and report assembly: the chunks' rows -> catalogue.ecsv + report.html.

A row whose status is neither ok nor failed becomes a failed row naming the problem; the other
rows are kept as they are. Stages that a contract-conformant fake stood in for (the rows'
``fake_stages`` metadata) are listed in the catalogue's metadata and at the top of the report.
Stars that star_products left without a figure (``--figures``; the rows' ``no_figure``
metadata) get no PNG link in the report. Each star also links its chunk's light-curve file
(``<chunk_id>.prepared.h5``, from the rows' ``chunk_id`` metadata), which the SAS workflow
delivers beside the products and into which a product's light curve links.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import json
import math
from pathlib import Path

from astropy.table import Table, vstack

from stellarflow_contracts.catalogue import (
    COLUMN_NAMES,
    FAKE_STAGES_META,
    enable_units,
    make_table,
)
from stellarflow_contracts.chunk import module_main, provenance
from stellarflow_contracts.errors import InputError

MODULE = "catalogue"
__version__ = "1.2.0"
NO_FIGURE_META = "no_figure"  # rows metadata written by star_products: stars without a PNG
STATUSES = ("ok", "failed")
PREPARED_SUFFIX = ".prepared.h5"  # MSAP1's chunk file: the products' light curves link into it


def _fmt(value: object, digits: int = 4) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{digits}g}"
    return html.escape(str(value))


def write_report(path: Path, table: Table, observation_id: str,
                 fake_stages: list[str] | None = None, no_figure: set[str] | None = None,
                 lightcurve_file: dict[str, str] | None = None) -> None:
    """``lightcurve_file``: star id -> the file holding its prepared light curve (LC link)."""
    no_figure = no_figure or set()
    lightcurve_file = lightcurve_file or {}
    n_ok = int(sum(1 for s in table["status"] if s == "ok"))
    n_failed = len(table) - n_ok
    cpu = float(sum(v for v in table["cpu_s"] if not math.isnan(v)))
    detected = int(sum(1 for v in table["transit_period_d"] if not math.isnan(v)))
    seismic = int(sum(1 for v in table["numax_uhz"] if not math.isnan(v)))
    rotating = int(sum(1 for v in table["prot_d"] if not math.isnan(v)))
    cols = [c for c in COLUMN_NAMES if c not in ("star_id", "status", "error")]
    head = "".join(f"<th>{c}</th>" for c in ["star_id", "status", *cols, "products"])
    body = []
    for row in table:
        sid = html.escape(str(row["star_id"]))
        cls = "ok" if row["status"] == "ok" else "failed"
        cells = "".join(f"<td>{_fmt(row[c])}</td>" for c in cols)
        png = "" if str(row["star_id"]) in no_figure else f'<a href="{sid}.png">PNG</a> '
        links = f'{png}<a href="{sid}.product.h5">HDF5</a>'
        lc = lightcurve_file.get(str(row["star_id"]))
        if lc:
            links += f' <a href="{html.escape(lc)}">LC</a>'
        title = f' title="{html.escape(str(row["error"]))}"' if row["error"] else ""
        body.append(f'<tr class="{cls}"{title}><td>{sid}</td><td>{row["status"]}</td>{cells}'
                    f"<td>{links}</td></tr>")
    failures = "".join(
        f"<li><b>{html.escape(str(r['star_id']))}</b>: {html.escape(str(r['error']))}</li>"
        for r in table if r["status"] != "ok") or "<li>none</li>"
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lc_note = ("<p>A product's light curve may be a link into its chunk's light-curve file (LC): "
               "keep the two in one folder.</p>" if lightcurve_file else "")
    fakes = (f'<p class="fake">Stages run by contract-conformant fakes (their results are NaN): '
             f'<b>{html.escape(", ".join(fake_stages))}</b>.</p>' if fake_stages else "")
    path.write_text(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>stellarflow — {html.escape(observation_id)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} tr.failed{{background:#fdd}}
td:first-child{{text-align:left}} p.fake{{background:#ffd;padding:4px}}</style></head><body>
<h1>Observation {html.escape(observation_id)}</h1>{fakes}
<p>{len(table)} stars: <b>{n_ok} ok</b>, <b>{n_failed} failed</b>. Rotation periods: {rotating};
seismic detections: {seismic}; transit detections: {detected}. Science CPU: {cpu:.1f} s.
Figures: {len(table) - len(no_figure & set(map(str, table["star_id"])))} of {len(table)} stars.
Catalogue: <a href="catalogue.ecsv">catalogue.ecsv</a>. Made {created}.</p>{lc_note}
<h2>Failed stars</h2><ul>{failures}</ul>
<h2>Stars</h2><table><tr>{head}</tr>
{chr(10).join(body)}
</table></body></html>
""")


def assemble(rows: list[Path], observation_id: str, outdir: Path) -> tuple[Path, Path]:
    tables = []
    fakes: set[str] = set()
    no_figure: set[str] = set()
    lightcurve_file: dict[str, str] = {}
    with enable_units():
        for p in rows:
            try:
                tables.append(Table.read(p, format="ascii.ecsv"))
            except Exception as exc:  # astropy raises several types on bad tables
                raise InputError(p, f"unreadable catalogue rows ({exc})") from None
            fakes.update(tables[-1].meta.get(FAKE_STAGES_META) or [])
            no_figure.update(map(str, tables[-1].meta.get(NO_FIGURE_META) or []))
            chunk_id = tables[-1].meta.get("chunk_id")
            if chunk_id:
                lightcurve_file.update({str(sid): f"{chunk_id}{PREPARED_SUFFIX}"
                                        for sid in tables[-1]["star_id"]})
    if tables:
        table = vstack(tables, metadata_conflicts="silent")
        table.meta.clear()
    else:
        table = make_table([])
    # Column order, units and descriptions exactly as the contract says.
    table = make_table([_checked(dict(zip(table.colnames, r, strict=True))) for r in table])
    table.meta["observation_id"] = observation_id
    table.meta["catalogue"] = provenance(MODULE, __version__)
    table.meta["units_note"] = "NaN where not measured; transit_t0_d in BJD_TDB - 2457000"
    table.meta[FAKE_STAGES_META] = sorted(fakes)
    cat = outdir / "catalogue.ecsv"
    table.write(cat, format="ascii.ecsv", overwrite=True)
    report = outdir / "report.html"
    write_report(report, table, observation_id, sorted(fakes), no_figure, lightcurve_file)
    write_summary(table, outdir)
    return cat, report


def _checked(row: dict) -> dict:
    """The row, or the row failed with the reason when its status breaks the contract."""
    if str(row["status"]) not in STATUSES:
        row = {**row, "error": f"{MODULE}: row status {str(row['status'])!r} is not one of "
                               f"{', '.join(STATUSES)}", "status": "failed"}
        row.update({c: math.nan for c in COLUMN_NAMES
                    if c not in ("star_id", "status", "error", "cpu_s")})
    return row


def write_summary(table: Table, outdir: Path) -> Path:
    """catalogue.summary.json: star counts and the rows without timings (deterministic)."""
    def number(v: float) -> float | None:
        return float(f"{v:.4g}") if math.isfinite(v) else None

    statuses = [str(s) for s in table["status"]]
    star = {str(r["star_id"]): {"status": str(r["status"]), "error": str(r["error"]),
                                "row": {c: number(float(r[c])) for c in COLUMN_NAMES
                                        if c not in ("star_id", "status", "error", "cpu_s")}}
            for r in table}
    path = outdir / "catalogue.summary.json"
    path.write_text(json.dumps({
        "stage": "catalogue", "module": MODULE, "module_version": __version__,
        "stars": {"total": len(statuses), "ok": statuses.count("ok"),
                  "failed": statuses.count("failed")},
        "fake_stages": table.meta[FAKE_STAGES_META], "star": star},
        indent=1, ensure_ascii=False) + "\n")
    return path


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--observation-id", required=True)
    p.add_argument("--rows", type=Path, nargs="*", default=[], help="chunk row tables (ECSV)")


def _run(args: argparse.Namespace) -> None:
    assemble(args.rows, args.observation_id, args.outdir)


def main(argv: list[str] | None = None) -> int:
    return module_main(argv, module=MODULE, version=__version__,
                       description="Assemble the observation's catalogue and report",
                       add_arguments=_args, run=_run)


if __name__ == "__main__":
    raise SystemExit(main())
