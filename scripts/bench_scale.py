#!/usr/bin/env python3
"""Scaling benchmark (`make bench-scale`): how the cost of a run grows with its number of stars.

Runs one observation per size (default 240 x 60 d, 2 400 x 10 d, 10 000 x 5 d: short light curves
for the large ones, so that they measure orchestration) under Toil with ``--site local``, through
the code path of ``stellarflow run`` (``scripts/bench.py``'s ``measure``), and reports per size:
wall, efficiency, overhead per star, the leader's peak RSS, the job store's PEAK size (sampled
during the run) against final outputs + 0.5 x inputs, bytes written per star (rusage of the whole
process tree), output bytes and files per star. Writes build/bench/scale.json (after every size),
a Markdown table (build/bench/scale.md) and a plot (docs/figures/scale.png by default).

``--report-only`` redraws the table and the plot from the JSON (e.g. after a partial run).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import bench  # noqa: E402

from stellarflow import sites  # noqa: E402
from stellarflow.errors import InputError, RunError  # noqa: E402

DEFAULT_SIZES = "240x60,2400x10,10000x5"


def parse_sizes(text: str) -> list[tuple[int, float]]:
    """'240x60,2400x10' -> [(240, 60.0), (2400, 10.0)]; ValueError with the bad item."""
    out = []
    for item in text.split(","):
        stars, sep, days = item.strip().partition("x")
        try:
            n, d = int(stars), float(days)
        except ValueError:
            raise ValueError(f"size {item.strip()!r} is not STARSxDAYS (e.g. 240x60)") from None
        if not sep or n < 1 or not 0.5 <= d <= 1000:
            raise ValueError(f"size {item.strip()!r}: stars >= 1 and 0.5 <= days <= 1000")
        out.append((n, d))
    return out


def size_key(stars: int, days: float) -> str:
    return f"{stars}x{days:g}"


def derive(rec: dict[str, Any]) -> dict[str, Any]:
    """The job-store budget and per-star figures of one measured size."""
    inputs = rec["inputs_mb"]
    target = rec["outputs_mb"] + 0.5 * inputs
    peak = rec.get("jobstore_peak_mb")
    return {
        "jobstore_target_mb": target,
        "jobstore_peak_over_target": (peak / target) if peak is not None and target else None,
        "jobstore_peak_per_star_mb": (peak / rec["stars"]) if peak is not None else None,
        "inputs_per_star_mb": inputs / rec["stars"],
    }


def table(doc: dict[str, Any]) -> str:
    """Markdown table of every measured size."""
    head = ("| stars x days | chunks | wall | efficiency | overhead/star | leader peak RSS "
            "| job-store peak (budget) | written/star | outputs/star | files/star |")
    rows = [head, "|" + "---|" * 10]
    for key, r in sorted(doc["sizes"].items(), key=lambda kv: kv[1].get("stars", 0)):
        if "wall_s" not in r:
            rows.append(f"| {key} | {r.get('error', 'not run')} |" + " |" * 9)
            continue
        rows.append(
            f"| {r['stars']} x {r['days']:g} d | {r['chunks']} x {r['chunk_size']} "
            f"| {r['wall_s']:.0f} s | {r['efficiency']:.3f} | {r['overhead_per_star_s']:.3f} s "
            f"| {r['leader_peak_rss_mb']:.0f} MB "
            f"| {r['jobstore_peak_mb']:.0f} MB ({r['jobstore_target_mb']:.0f} MB) "
            f"| {r['written_per_star_mb']:.2f} MB | {r['outputs_per_star_mb']:.2f} MB "
            f"| {r['files_per_star']:.2f} |")
    la = doc.get("loadavg_before", [float("nan")] * 3)
    rows.append("")
    rows.append(f"{doc['utc']}, {doc['host']}, git {doc['git']}; load average before "
                f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f}. Budget = final outputs + 0.5 x inputs.")
    kept = [(k, r) for k, r in doc["sizes"].items() if "wall_s" in r and r.get("utc")
            and r["utc"] != doc["utc"]]
    for key, r in kept:  # rows kept from earlier runs (--keep-others)
        la = r.get("loadavg_before") or [float("nan")]
        rows.append(f"{key}: measured {r['utc']}, git {r.get('git', '?')}, load average "
                    f"before {la[0]:.2f}.")
    return "\n".join(rows)


def plot(doc: dict[str, Any], path: Path) -> None:
    """Four panels against the number of stars (log axis)."""
    os.environ.setdefault("MPLCONFIGDIR", os.path.join("/tmp", f"stellarflow-mpl-{os.getuid()}"))
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = sorted((r for r in doc["sizes"].values() if "wall_s" in r), key=lambda r: r["stars"])
    if not runs:
        return
    x = [r["stars"] for r in runs]
    labels = [f"{r['stars']}\nx {r['days']:g} d" for r in runs]
    fig = Figure(figsize=(10, 7), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.subplots(2, 2)
    a = ax[0, 0]
    a.plot(x, [r["efficiency"] for r in runs], "o-", label="efficiency")
    a.axhline(0.90, color="C3", lw=0.8, ls="--", label="0.90")
    a.set_ylim(0, 1)
    a.set_title("efficiency = science CPU / (cores x wall)", fontsize=9)
    a.legend(fontsize=8)
    a = ax[0, 1]
    a.plot(x, [r["leader_peak_rss_mb"] for r in runs], "o-", label="leader")
    a.plot(x, [r["peak_rss_mb"] for r in runs], "s--", label="whole process tree")
    a.axhline(1024, color="C3", lw=0.8, ls="--", label="1 GB")
    a.set_title("peak RSS (MB)", fontsize=9)
    a.legend(fontsize=8)
    a = ax[1, 0]
    a.plot(x, [r["jobstore_peak_mb"] for r in runs], "o-", label="job-store peak")
    a.plot(x, [r["jobstore_target_mb"] for r in runs], "s--", label="outputs + 0.5 x inputs")
    a.plot(x, [r["inputs_mb"] for r in runs], "^:", label="inputs")
    a.set_yscale("log")
    a.set_title("job store (MB)", fontsize=9)
    a.legend(fontsize=8)
    a = ax[1, 1]
    a.plot(x, [r["written_per_star_mb"] for r in runs], "o-", label="written by the run (MB)")
    a.plot(x, [r["outputs_per_star_mb"] for r in runs], "s--", label="outputs (MB)")
    a.plot(x, [r["overhead_per_star_s"] for r in runs], "^:", label="overhead (core-s)")
    a.set_title("per star", fontsize=9)
    a.legend(fontsize=8)
    for a in ax.flat:
        a.set_xscale("log")
        a.set_xticks(x)
        a.set_xticklabels(labels, fontsize=7)
        a.minorticks_off()
    la = doc.get("loadavg_before", [float("nan")] * 3)
    when = {r.get("utc", doc["utc"]) for r in runs}
    stamp = (f"{doc['utc']}, git {doc['git']}, load before {la[0]:.1f}" if len(when) == 1 else
             f"{len(when)} runs, {min(when)[:10]}"
             + (f"..{max(when)[:10]}" if max(when)[:10] != min(when)[:10] else "")
             + ", times in the table")
    fig.suptitle(f"stellarflow under Toil, --site local, {doc['params']['cores']} cores "
                 f"({stamp})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench_scale.py", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=DEFAULT_SIZES,
                   help=f"STARSxDAYS,... (default {DEFAULT_SIZES})")
    p.add_argument("--cadence-s", type=float, default=25.0, help="cadence, seconds (25)")
    p.add_argument("--cores", type=int, default=2, help="cores Toil may use: --maxCores (2)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="stars per chunk (default: what `stellarflow run` chooses)")
    p.add_argument("--figures", default=None,
                   help="star_products figures: all, notable or none (default: the run's)")
    p.add_argument("--no-container", action="store_true", help="run steps in the venv")
    p.add_argument("--workdir", type=Path, default=REPO / "build" / "bench" / "scale",
                   help="observations and runs, one folder per size (build/bench/scale)")
    p.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "scale.json",
                   help="JSON result (build/bench/scale.json); the table beside it (.md)")
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "figures" / "scale.png",
                   help="PNG plot (docs/figures/scale.png)")
    p.add_argument("--interval", type=float, default=0.5,
                   help="process-tree sampling interval, s (0.5)")
    p.add_argument("--jobstore-interval", type=float, default=5.0,
                   help="job-store size sampling interval, s (5)")
    p.add_argument("--toil-arg", action="append", default=[], dest="toil_args",
                   help="extra toil-cwl-runner option (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the job stores and outputs")
    p.add_argument("--keep-others", action="store_true",
                   help="keep the sizes already in --out that this run does not measure "
                        "(each keeps its own date, git and load in the table)")
    p.add_argument("--report-only", action="store_true",
                   help="redraw the table and the plot from --out, run nothing")
    p.add_argument("--debug", action="store_true", help="tracebacks")
    args = p.parse_args(argv)
    try:
        args.size_list = parse_sizes(args.sizes)
    except ValueError as exc:
        p.error(str(exc))
    if args.cores < 1 or (args.chunk_size is not None and args.chunk_size < 1):
        p.error("--cores and --chunk-size must be >= 1")
    if args.figures not in (None, "all", "notable", "none"):
        p.error("--figures must be all, notable or none")
    return args


def write_reports(doc: dict[str, Any], out: Path, plot_path: Path) -> str:
    text = table(doc)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    out.with_suffix(".md").write_text(text + "\n")
    plot(doc, plot_path)
    return text


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = args.out.resolve()
    if args.report_only:
        doc = json.loads(out.read_text())
        print(write_reports(doc, out, args.plot))
        return doc
    bench.wrap_runner_argv()
    os.environ.update(sites.runner_path_env())
    utc = _dt.datetime.now(_dt.UTC)
    doc: dict[str, Any] = {
        "utc": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": f"{socket.gethostname()} ({os.cpu_count()} CPUs)",
        "git": bench.git_describe(),
        "params": {"sizes": args.sizes, "cadence_s": args.cadence_s, "cores": args.cores,
                   "chunk_size": args.chunk_size, "figures": args.figures,
                   "container": not args.no_container, "toil_args": args.toil_args,
                   "interval_s": args.interval, "jobstore_interval_s": args.jobstore_interval},
        "loadavg_before": list(os.getloadavg()),
        "sizes": {size_key(n, d): {"stars": n, "days": d, "pending": True}
                  for n, d in args.size_list},
        "complete": False,
    }
    if args.keep_others and out.is_file():
        try:
            earlier = json.loads(out.read_text())
        except ValueError as exc:
            raise ValueError(f"{out}: not a bench-scale JSON, cannot keep its sizes ({exc})") \
                from None
        for key, r in earlier.get("sizes", {}).items():
            if key not in doc["sizes"] and "wall_s" in r:
                r.setdefault("utc", earlier.get("utc"))
                r.setdefault("git", earlier.get("git"))
                doc["sizes"][key] = r
    for n, d in args.size_list:
        key = size_key(n, d)
        folder = args.workdir.resolve() / key
        print(f"bench-scale: {key}: observation ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        manifest, reused = bench.ensure_observation(folder, n, d, args.cadence_s)
        gen_s = time.perf_counter() - t0
        inputs_mb = bench.dir_size(manifest.parent / "lightcurves") / 2**20
        print(f"bench-scale: {key}: Toil run ...", file=sys.stderr, flush=True)
        la0 = list(os.getloadavg())
        run_kwargs = {"figures": args.figures} if args.figures else None
        try:
            rec = bench.measure("toil", manifest, folder / "runs", runner="toil",
                                chunk_size=args.chunk_size, cores=args.cores,
                                container=not args.no_container, keep=args.keep,
                                interval=args.interval, toil_args=args.toil_args,
                                jobstore_interval=args.jobstore_interval, run_kwargs=run_kwargs)
        except RunError as exc:
            print(f"bench-scale: {key} failed: {exc}", file=sys.stderr)
            doc["sizes"][key] = {"stars": n, "days": d, "error": str(exc)}
            write_reports(doc, out, args.plot)
            continue
        rec.update(utc=doc["utc"], git=doc["git"], days=d, inputs_mb=inputs_mb,
                   observation_reused=reused,
                   observation_s=None if reused else gen_s, loadavg_before=la0,
                   loadavg_after=list(os.getloadavg()))
        rec.update(derive(rec))
        if not args.keep:
            import shutil

            rec.pop("toil_stats", None)
            shutil.rmtree(folder / "runs", ignore_errors=True)
        doc["sizes"][key] = rec
        doc["loadavg_after"] = list(os.getloadavg())
        print(write_reports(doc, out, args.plot), file=sys.stderr, flush=True)
    doc["complete"] = True
    doc["loadavg_after"] = list(os.getloadavg())
    text = write_reports(doc, out, args.plot)
    print(text)
    return doc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (InputError, RunError, OSError, ValueError) as exc:
        if args.debug:
            raise
        print(f"bench-scale: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
