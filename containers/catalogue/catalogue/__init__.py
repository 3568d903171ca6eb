"""Catalogue and report assembly: the chunks' rows -> catalogue.ecsv + report.html."""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import math
from pathlib import Path

from astropy.table import Table, vstack

from ..errors import InputError
from ..products import COLUMN_NAMES, enable_units, make_table
from ..stage import module_main, provenance

MODULE = "catalogue"
VERSION = "0.1.0"


def _fmt(value: object, digits: int = 4) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{digits}g}"
    return html.escape(str(value))


def write_report(path: Path, table: Table, observation_id: str) -> None:
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
        links = (f'<a href="{sid}.png">PNG</a> <a href="{sid}.product.h5">HDF5</a>')
        title = f' title="{html.escape(str(row["error"]))}"' if row["error"] else ""
        body.append(f'<tr class="{cls}"{title}><td>{sid}</td><td>{row["status"]}</td>{cells}'
                    f"<td>{links}</td></tr>")
    failures = "".join(
        f"<li><b>{html.escape(str(r['star_id']))}</b>: {html.escape(str(r['error']))}</li>"
        for r in table if r["status"] != "ok") or "<li>none</li>"
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    path.write_text(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>stellarflow — {html.escape(observation_id)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} tr.failed{{background:#fdd}}
td:first-child{{text-align:left}}</style></head><body>
<h1>Observation {html.escape(observation_id)}</h1>
<p>{len(table)} stars: <b>{n_ok} ok</b>, <b>{n_failed} failed</b>. Rotation periods: {rotating};
seismic detections: {seismic}; transit detections: {detected}. Science CPU: {cpu:.1f} s.
Catalogue: <a href="catalogue.ecsv">catalogue.ecsv</a>. Made {created}.</p>
<h2>Failed stars</h2><ul>{failures}</ul>
<h2>Stars</h2><table><tr>{head}</tr>
{chr(10).join(body)}
</table></body></html>
""")


def assemble(rows: list[Path], observation_id: str, outdir: Path) -> tuple[Path, Path]:
    tables = []
    with enable_units():
        for p in rows:
            try:
                tables.append(Table.read(p, format="ascii.ecsv"))
            except Exception as exc:  # astropy raises several types on bad tables
                raise InputError(p, f"unreadable catalogue rows ({exc})") from None
    if tables:
        table = vstack(tables, metadata_conflicts="silent")
        table.meta.clear()
    else:
        table = make_table([])
    # Column order, units and descriptions exactly as the contract says.
    table = make_table([dict(zip(table.colnames, r, strict=True)) for r in table])
    table.meta["observation_id"] = observation_id
    table.meta["catalogue"] = provenance(MODULE, VERSION)
    table.meta["units_note"] = "NaN where not measured; transit_t0_d in BJD_TDB - 2457000"
    cat = outdir / "catalogue.ecsv"
    table.write(cat, format="ascii.ecsv", overwrite=True)
    report = outdir / "report.html"
    write_report(report, table, observation_id)
    return cat, report


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--observation-id", required=True)
    p.add_argument("--rows", type=Path, nargs="*", default=[], help="chunk row tables (ECSV)")


def _run(args: argparse.Namespace) -> None:
    assemble(args.rows, args.observation_id, args.outdir)


def main(argv: list[str] | None = None) -> int:
    return module_main(argv, module=MODULE, version=VERSION,
                       description="Assemble the observation's catalogue and report",
                       add_arguments=_args, run=_run)


if __name__ == "__main__":
    raise SystemExit(main())
