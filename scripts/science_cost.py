#!/usr/bin/env python3
"""Science CPU per star and per module, for light curves of several lengths at 25-s cadence.

Each length gets one synthetic star with every signal the pipeline measures (an oscillating
transit host, so every module does its full work). The modules run in this process, chained
through their own command-line entry points and chunk files exactly as the workflow chains them
(ingest -> MSAP1 -> MSAP4 -> MSAP3 -> MSAP5 -> transit search -> star products), without Toil
or containers. The CPU seconds are the ones each module records per star (``cpu_s``: process
time of its per-star work, the same number the catalogue sums).

Usage: scripts/science_cost.py [--days 30 90 365 730] [--cadence-s 25] [--seed 7]
       [--workdir DIR] [--json OUT.json] [--markdown] [--plot OUT.png]
       scripts/science_cost.py --from-json IN.json [--markdown] [--plot OUT.png]   (no run)
Light curves are cached in the work folder (``--workdir``), so a second run on other code
measures the same input. The machine's load average is printed next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from stellarflow import synthetic
from stellarflow_contracts import lightcurve

STAGES = (  # (stage file suffix, module, extra arguments given the chunk folder and id)
    ("lightcurves", "ingest"),
    ("prepared", "msap1_preparation"),
    ("rotation", "msap4_rotation"),
    ("seismology", "msap3_seismology"),
    ("parameters", "msap5_stellar_parameters"),
    ("transit", "transit_search"),
)
OSC_TRANSIT_INDEX = 4  # KIND_CYCLE[4] == "oscillator_transit"


class _Program:
    """A compiled module (MSAP5 is C): its command, as the workflow runs it (from the venv's bin,
    where make install builds it)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def main(self, argv: list[str]) -> int:
        import subprocess

        return subprocess.run([self.name, *argv], check=False).returncode


def _module(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return _Program(name)


def _make_star(workdir: Path, days: float, cadence_s: float, seed: int) -> tuple[Path, dict]:
    path = workdir / f"cost_{days:g}d_{cadence_s:g}s_seed{seed}.h5"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    index = OSC_TRANSIT_INDEX
    if synthetic.KIND_CYCLE[index % len(synthetic.KIND_CYCLE)] != "oscillator_transit":
        index = list(synthetic.KIND_CYCLE).index("oscillator_transit")
    lc, truth = synthetic.simulate_star(index, days, cadence_s, seed)
    lightcurve.write_file(path, lc)
    meta = {"teff": round(float(truth.teff)), "logg": round(float(truth.logg), 2),
            "feh": round(float(truth.feh), 2), "n_points": int(lc.time.size)}
    meta_path.write_text(json.dumps(meta))
    return path, meta


def run_star(lc_path: Path, meta: dict, outdir: Path) -> dict[str, float]:
    """Chain the module CLIs on a one-star chunk; return cpu_s per module (+ wall per module)."""
    outdir.mkdir(parents=True, exist_ok=True)
    chunk = {"chunk_id": "chunk-0000",
             "stars": [{"star_id": "cost", "lightcurve": {"path": str(lc_path)},
                        "teff": meta["teff"], "logg": meta["logg"], "feh": meta["feh"]}]}
    c = outdir / "chunk-0000"
    argv = {
        "ingest": ["--observation-id", "cost", "--chunk-json", json.dumps(chunk)],
        "msap1_preparation": ["--lightcurves", f"{c}.lightcurves.h5"],
        "msap4_rotation": ["--prepared", f"{c}.prepared.h5"],
        "msap3_seismology": ["--prepared", f"{c}.prepared.h5"],
        "msap5_stellar_parameters": ["--prepared", f"{c}.prepared.h5", "--rotation",
                                     f"{c}.rotation.h5", "--seismology", f"{c}.seismology.h5"],
        "transit_search": ["--prepared", f"{c}.prepared.h5", "--parameters",
                           f"{c}.parameters.h5"],
    }
    cpu: dict[str, float] = {}
    for stage, module in STAGES:
        rc = _module(module).main(["--outdir", str(outdir), *argv[module]])
        if rc != 0:
            raise SystemExit(f"science_cost: {module} exited {rc}")
        with h5py.File(f"{c}.{stage}.h5", "r") as f:
            g = f["stars/cost"]
            if g.attrs.get("status") != "ok":
                raise SystemExit(f"science_cost: {module} failed: {g.attrs.get('error')}")
            cpu[module] = float(g.attrs["cpu_s"])
    sp = _module("star_products")
    rc = sp.main(["--outdir", str(outdir)] + [a for stage, _ in STAGES
                                              for a in (f"--{stage}", f"{c}.{stage}.h5")])
    if rc != 0:
        raise SystemExit(f"science_cost: star_products exited {rc}")
    from astropy.table import Table

    rows = Table.read(f"{c}.rows.ecsv", format="ascii.ecsv")
    total = float(rows["cpu_s"][0])
    cpu["star_products"] = total - sum(cpu.values())
    cpu["total"] = total
    return cpu


GOAL_730D_S = 20.0  # science CPU budget per two-year star (issue 15)


def plot(doc: dict, path: Path) -> None:
    """CPU per star against light-curve length, per module and in total (log-log)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = sorted(doc["results"], key=lambda r: r["days"])
    days = [r["days"] for r in results]
    fig = Figure(figsize=(7, 4.5), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    mods = [m for m in results[0]["cpu_s"] if m != "total"]
    floor = 0.01  # modules that stay under it are named in the title, not drawn
    tiny = [m for m in mods if max(r["cpu_s"][m] for r in results) < floor]
    for m in mods:
        if m not in tiny:
            ax.plot(days, [r["cpu_s"][m] for r in results], "o-", lw=1, ms=3, label=m)
    ax.plot(days, [r["cpu_s"]["total"] for r in results], "s-", color="k", lw=2, label="total")
    ax.plot([730], [GOAL_730D_S], "r*", ms=10, label=f"goal at 730 d (<= {GOAL_730D_S:g} s)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(days)
    ax.set_xticklabels([f"{d:g} d" for d in days])
    ax.minorticks_off()
    ax.set_xlabel(f"light-curve length (cadence {doc['cadence_s']:g} s)")
    ax.set_ylabel("science CPU per star (s)")
    loads = [x for r in results for x in r.get("load_avg_1min", [])]
    ax.set_ylim(bottom=floor)
    under = f"; under {floor:g} s: {', '.join(tiny)}" if tiny else ""
    ax.set_title("cost against light-curve length (one star per length, seed "
                 f"{doc['seed']}; load {min(loads):.1f}-{max(loads):.1f}{under})", fontsize=8)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def markdown(results: list[dict]) -> str:
    mods = list(results[0]["cpu_s"].keys())
    out = ["| days | points | " + " | ".join(mods) + " |", "|---|---|" + "---|" * len(mods)]
    for r in results:
        out.append(f"| {r['days']:g} | {r['n_points']} | "
                   + " | ".join(f"{r['cpu_s'][m]:.2f}" for m in mods) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=float, nargs="+", default=[30, 90, 365, 730])
    p.add_argument("--cadence-s", type=float, default=25.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", type=Path, default=None,
                   help="folder for the cached light curves and chunk files (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON here")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--plot", type=Path, default=None, help="draw the figures as a PNG here")
    p.add_argument("--from-json", type=Path, default=None,
                   help="take the figures from this JSON (--json of an earlier run); run nothing")
    args = p.parse_args(argv)
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(),
                                                        f"stellarflow-mpl-{os.getuid()}"))
    if args.from_json:
        try:
            doc = json.loads(args.from_json.read_text())
            if args.markdown:
                print(markdown(doc["results"]))
            if args.plot:
                plot(doc, args.plot)
        except (OSError, ValueError, KeyError, IndexError) as exc:
            print(f"science_cost: {args.from_json}: not a science-cost JSON ({exc})",
                  file=sys.stderr)
            return 1
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="science-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for days in args.days:
        lc_path, meta = _make_star(work, days, args.cadence_s, args.seed)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        cpu = run_star(lc_path, meta, work / f"run_{days:g}d")
        wall = time.perf_counter() - t0
        load1 = os.getloadavg()[0]
        row = {"days": days, "n_points": meta["n_points"], "cpu_s": cpu, "wall_s": wall,
               "load_avg_1min": [round(load0, 2), round(load1, 2)]}
        results.append(row)
        print(f"{days:g} d ({meta['n_points']} points): "
              + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
              + f" CPU-s; wall {wall:.1f} s; load {load0:.2f}->{load1:.2f}", flush=True)
    doc = {"cadence_s": args.cadence_s, "seed": args.seed, "results": results}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))
    if args.markdown:
        print("\n" + markdown(results))
    if args.plot:
        plot(doc, args.plot)
    np.seterr(all="ignore")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
