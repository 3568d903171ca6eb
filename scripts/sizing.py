#!/usr/bin/env python3
"""PLATO sizing (`make sizing`): cores and job-store disk for N stars of L-day light curves in a
deadline on a Slurm site, from the measured figures in build/bench/*.json.

Model (docs/performance.md, "PLATO sizing"):

- science CPU per star at L days: the measured per-star CPU of each module at the longest
  baselines measured, scaled to L by a power law per module fitted through the two longest
  measured baselines (a single baseline: linear in the number of samples), unless
  ``--cpu-per-star`` gives it (e.g. from the science helper's cost-with-baseline table);
- core-seconds = stars x CPU per star / efficiency (the measured efficiency of the largest
  bench-scale run: the orchestration cost on a single machine)
  + jobs x the scheduler's per-job cost (jobs = chunks x steps per chunk; Slurm here: 1.6 s)
  + nodes x the per-node start (image import, worker start; ``--node-start-s``, ASSUMED)
  + runs x the run's start (``stellarflow run`` to the first step: loading the job, importing
  the light curves, the scatter; measured by scripts/bench_start.py, scaled by stars) x the
  cores that run's chunks wait on;
- cores = core-seconds / deadline, rounded up to whole nodes;
- job-store peak: a run keeps its outputs in the job store until it ends (then they are moved
  out), and a chunk's intermediate files until the chunk ends (toil_batch_system_cwl_intermediates
  deletes them then; ``--keep-intermediates``: until the run ends, as Toil alone does). Per star,
  outputs and intermediates are measured per light-curve sample at the longest baseline measured
  (the run whose peak held the most besides its outputs: all of its chunks at once, none ended)
  and scaled to L days: a run of R stars peaks at R x outputs + the stars of the chunks in flight
  x intermediates. On a scheduler that is every chunk of the run: Toil submits each job as it
  becomes ready and the scheduler starts them in that order, so all chunks move a step at a
  time and end together (``--in-flight cores``: one chunk per core the run has, as on one
  machine, where stellarflow_single_machine starts the newest job first). The observation is
  cut into runs of ``--run-stars`` (the trigger service's --max-stars), of which as many run at
  once as the cores keep busy. The budget it is held against: those runs' outputs + half their
  inputs (inputs per star from the longest bench-scale run, scaled by samples).

Every input figure says where it came from (measured file, or ASSUMED); the report is Markdown
(stdout, and build/bench/sizing.md) plus build/bench/sizing.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCIENCE_MODULES = ("ingest", "msap1_preparation", "msap4_rotation", "msap3_seismology",
                   "msap5_stellar_parameters", "transit_search", "star_products")


def load_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """Per-star figures of every measured Toil run found: days, cadence, per-module CPU,
    efficiency, job-store peak per star, outputs per star, stars."""
    runs = []
    for p in paths:
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if "sizes" in doc:  # bench-scale
            cadence = doc.get("params", {}).get("cadence_s", 25.0)
            for r in doc["sizes"].values():
                if "wall_s" in r:
                    runs.append(run_record(r, r["days"], cadence, str(p)))
        elif isinstance(doc.get("toil"), dict) and "wall_s" in doc["toil"]:
            prm = doc.get("params", {})
            runs.append(run_record(doc["toil"], prm.get("days"), prm.get("cadence_s", 25.0),
                                   str(p)))
    return [r for r in runs if r["days"]]


def run_record(r: dict[str, Any], days: float | None, cadence: float, src: str) -> dict:
    return {"source": src, "days": days, "cadence_s": cadence, "stars": r["stars"],
            "efficiency": r["efficiency"], "per_module_cpu_s": r.get("per_module_cpu_s", {}),
            "science_cpu_per_star_s": r["science_cpu_per_star_s"],
            "jobstore_peak_per_star_mb": (r["jobstore_peak_mb"] / r["stars"]
                                          if r.get("jobstore_peak_mb") else None),
            "outputs_per_star_mb": r.get("outputs_per_star_mb"),
            "inputs_per_star_mb": (r["inputs_mb"] / r["stars"] if r.get("inputs_mb") else None),
            "leader_peak_rss_mb": r.get("leader_peak_rss_mb")}


def samples(days: float, cadence_s: float) -> float:
    return days * 86_400.0 / cadence_s


def cpu_at(runs: list[dict[str, Any]], days: float, cadence_s: float) -> tuple[float, dict, str]:
    """Science CPU per star at ``days``: per module, a power law in the number of samples
    through the two longest measured baselines (linear with one)."""
    by_days: dict[float, dict[str, Any]] = {}
    for r in runs:
        by_days.setdefault(float(r["days"]), r)  # the first found per baseline
    if not by_days:
        raise SystemExit("sizing: no measured run found (make bench / make bench-scale first, "
                         "or give --cpu-per-star)")
    longest = sorted(by_days)[-2:]
    n = samples(days, cadence_s)
    per_module = {}
    for m in SCIENCE_MODULES:
        pts = [(samples(d, by_days[d]["cadence_s"]), by_days[d]["per_module_cpu_s"].get(m))
               for d in longest]
        pts = [(x, y) for x, y in pts if y and y > 0]
        if not pts:
            continue
        if len(pts) == 2 and pts[0][0] != pts[1][0]:
            (x0, y0), (x1, y1) = pts
            k = math.log(y1 / y0) / math.log(x1 / x0)
            k = min(max(k, 0.0), 2.0)  # noise between two short runs can give odd exponents
        else:
            (x1, y1), k = pts[-1], 1.0
        per_module[m] = {"cpu_s": y1 * (n / x1) ** k, "exponent": k}
    at = ", ".join(f"{d:g}" for d in longest)
    how = (f"per-module power law in samples through the runs at {at} d"
           + (" (EXTRAPOLATED)" if days > max(longest) else ""))
    return sum(v["cpu_s"] for v in per_module.values()), per_module, how


def run_start(args: argparse.Namespace) -> tuple[float, str]:
    """Seconds from a run's launch to its first step for ``--run-stars`` stars: given, or
    measured by scripts/bench_start.py (build/bench/start.json) and scaled by stars (loading the
    job, importing the light curves and slicing the chunks all grow with the stars)."""
    if args.run_start_s is not None:
        return args.run_start_s, "given (--run-start-s)"
    try:
        m = json.loads(args.start_file.read_text())
        secs, stars = float(m["first_step"]), int(m["stars"])
    except (OSError, ValueError, KeyError, TypeError):
        return 90.0, "ASSUMED 90 s (not measured: scripts/bench_start.py)"
    return (secs * args.run_stars / stars,
            f"measured: {secs:.0f} s for {stars:,} stars in chunks of {m.get('chunk_size')} "
            f"({args.start_file.name}), scaled by stars")


def size(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    src: dict[str, str] = {}
    if args.cpu_per_star is not None:
        cpu, per_module, src["cpu_per_star"] = args.cpu_per_star, {}, "given (--cpu-per-star)"
    else:
        cpu, per_module, src["cpu_per_star"] = cpu_at(runs, args.days, args.cadence_s)
    if args.efficiency is not None:
        eff, src["efficiency"] = args.efficiency, "given (--efficiency)"
    else:
        best = max(runs, key=lambda r: r["stars"])
        eff = best["efficiency"]
        src["efficiency"] = (f"measured: {best['stars']} stars x {best['days']:g} d "
                             f"({best['source']})")
    chunks = math.ceil(args.stars / args.chunk_size)
    jobs = chunks * args.steps_per_chunk + 2 * math.ceil(args.stars / args.run_stars)
    science_core_s = args.stars * cpu
    run_core_s = science_core_s / eff
    job_core_s = jobs * args.per_job_s
    deadline_s = args.hours * 3600.0
    base_cores = (run_core_s + job_core_s) / deadline_s
    n_runs = math.ceil(args.stars / args.run_stars)
    chunks_per_run = math.ceil(args.run_stars / args.chunk_size)
    run_start_s, src["run_start"] = run_start(args)

    def run_starts_core_s(cores: int) -> float:
        # While a run starts, the cores its chunks will use wait.
        return n_runs * run_start_s * min(cores, chunks_per_run)

    nodes = math.ceil(base_cores / args.cores_per_node)
    # Each node pays its start once, each run its own; add nodes until the starts fit too.
    while nodes * args.cores_per_node * deadline_s < (
            run_core_s + job_core_s + nodes * args.node_start_s * args.cores_per_node
            + run_starts_core_s(nodes * args.cores_per_node)):
        nodes += 1
    cores = nodes * args.cores_per_node
    # Job store: measured bytes per star per sample, scaled to the baseline.
    js = [r for r in runs if r["jobstore_peak_per_star_mb"] and r["outputs_per_star_mb"]]
    if args.jobstore_per_star_mb is not None:
        # A given per-star figure is held for every star of a run, as before the split.
        out_star, inter_star = args.jobstore_per_star_mb, 0.0
        src["jobstore_per_star"] = "given (--jobstore-per-star-mb: held for every star of a run)"
    elif js:
        # The longest baseline; of its runs, the one whose peak held the most besides its
        # outputs: with every chunk in flight and none ended yet, all of its intermediates.
        longest = max(r["days"] for r in js)
        ref = max((r for r in js if r["days"] == longest),
                  key=lambda r: r["jobstore_peak_per_star_mb"] - r["outputs_per_star_mb"])
        scale = samples(args.days, args.cadence_s) / samples(ref["days"], ref["cadence_s"])
        out_star = ref["outputs_per_star_mb"] * scale
        inter_star = max(ref["jobstore_peak_per_star_mb"] - ref["outputs_per_star_mb"], 0.0) * scale
        src["jobstore_per_star"] = (f"measured at {ref['days']:g} d ({ref['source']}), "
                                    "scaled by samples")
    else:
        out_star = inter_star = float("nan")
        src["jobstore_per_star"] = "not measured (make bench-scale)"
    # Runs at once to keep every core busy: a run keeps at most one core per chunk.
    concurrent_runs = min(math.ceil(cores / chunks_per_run),
                          math.ceil(args.stars / args.run_stars))
    if args.keep_intermediates or args.in_flight == "all":
        stars_in_flight = args.run_stars
    else:
        stars_in_flight = min(args.run_stars,
                              math.ceil(cores / concurrent_runs) * args.chunk_size)
    run_peak_mb = args.run_stars * out_star + stars_in_flight * inter_star
    jobstore_peak_gb = concurrent_runs * run_peak_mb / 1024
    # Issue 16's budget for the job store: the outputs + half the inputs of the runs at once.
    with_inputs = [r for r in runs if r["inputs_per_star_mb"]]
    if with_inputs:
        ref_in = max(with_inputs, key=lambda r: r["days"])
        in_star = ref_in["inputs_per_star_mb"] * (samples(args.days, args.cadence_s)
                                                 / samples(ref_in["days"], ref_in["cadence_s"]))
        src["inputs_per_star"] = (f"measured at {ref_in['days']:g} d ({ref_in['source']}), "
                                  "scaled by samples")
    else:
        in_star = float("nan")
        src["inputs_per_star"] = "not measured (make bench-scale)"
    budget_gb = concurrent_runs * args.run_stars * (out_star + 0.5 * in_star) / 1024
    return {
        "inputs": {"stars": args.stars, "days": args.days, "cadence_s": args.cadence_s,
                   "hours": args.hours, "chunk_size": args.chunk_size,
                   "steps_per_chunk": args.steps_per_chunk, "per_job_s": args.per_job_s,
                   "node_start_s": args.node_start_s, "cores_per_node": args.cores_per_node,
                   "run_stars": args.run_stars, "keep_intermediates": args.keep_intermediates,
                   "in_flight": args.in_flight,
                   "run_start_s": run_start_s, "runs": n_runs},
        "sources": src,
        "cpu_per_star_s": cpu, "per_module": per_module, "efficiency": eff,
        "science_core_h": science_core_s / 3600, "run_core_h": run_core_s / 3600,
        "jobs": jobs, "job_core_h": job_core_s / 3600,
        "node_start_core_h": nodes * args.node_start_s * args.cores_per_node / 3600,
        "run_start_core_h": run_starts_core_s(cores) / 3600,
        "cores_exact": base_cores, "nodes": nodes, "cores": cores,
        "outputs_per_star_mb": out_star, "intermediates_per_star_mb": inter_star,
        "stars_in_flight_per_run": stars_in_flight, "concurrent_runs": concurrent_runs,
        "jobstore_peak_gb": jobstore_peak_gb,
        "inputs_per_star_mb": in_star, "jobstore_budget_gb": budget_gb,
        "runs_measured": [{k: r[k] for k in ("source", "days", "stars", "efficiency",
                                             "science_cpu_per_star_s")} for r in runs],
    }


def markdown(s: dict[str, Any]) -> str:
    i = s["inputs"]
    in_flight_why = ("--keep-intermediates: all" if i["keep_intermediates"]
                     else "all of its chunks: the scheduler starts jobs in the order Toil "
                     "submits them" if i["in_flight"] == "all" else "one chunk per core")
    lines = [
        f"**{i['stars']:,} stars of {i['days']:g}-day light curves ({i['cadence_s']:g} s) in "
        f"{i['hours']:g} h on Slurm**",
        "",
        "| figure | value | from |",
        "|---|---|---|",
        f"| science CPU per star | {s['cpu_per_star_s']:.1f} s | {s['sources']['cpu_per_star']} |",
        f"| efficiency (orchestration on one node) | {s['efficiency']:.3f} | "
        f"{s['sources']['efficiency']} |",
        f"| science | {s['science_core_h']:,.0f} core-h | stars x CPU per star |",
        f"| with orchestration | {s['run_core_h']:,.0f} core-h | / efficiency |",
        f"| Slurm jobs | {s['jobs']:,} ({s['job_core_h']:,.1f} core-h) | chunks of "
        f"{i['chunk_size']} x {i['steps_per_chunk']} steps, {i['per_job_s']:g} s each "
        "(measured here, MACHINE.md) |",
        f"| node starts | {s['node_start_core_h']:,.1f} core-h | {i['node_start_s']:g} s per node "
        "(ASSUMED: image import + worker start) |",
        f"| run starts | {s['run_start_core_h']:,.1f} core-h | {i['runs']} runs x "
        f"{i['run_start_s']:.0f} s while their cores wait ({s['sources']['run_start']}) |",
        f"| **cores** | **{s['cores']:,}** ({s['nodes']} nodes x {i['cores_per_node']}; "
        f"{s['cores_exact']:.1f} exact) | core-h / {i['hours']:g} h |",
        f"| job store per star | outputs {s['outputs_per_star_mb']:.1f} MB, intermediates "
        f"{s['intermediates_per_star_mb']:.1f} MB | {s['sources']['jobstore_per_star']} |",
        f"| **job-store disk (peak)** | **{s['jobstore_peak_gb']:,.0f} GB** | "
        f"{s['concurrent_runs']} run(s) of {i['run_stars']:,} stars at once: their outputs, "
        f"and the intermediates of {s['stars_in_flight_per_run']:,} stars in flight per run"
        f" ({in_flight_why}) |",
        f"| job-store budget | {s['jobstore_budget_gb']:,.0f} GB "
        f"({s['jobstore_peak_gb'] / s['jobstore_budget_gb']:.2f}x) | outputs + 0.5 x inputs "
        f"({s['inputs_per_star_mb']:.1f} MB per star, {s['sources']['inputs_per_star']}) |",
    ]
    if s["per_module"]:
        mods = ", ".join(f"{m} {v['cpu_s']:.2f} s (^{v['exponent']:.2f})"
                         for m, v in s["per_module"].items())
        lines += ["", f"Per module at {i['days']:g} d: {mods}."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/sizing.py", description=__doc__.splitlines()[0])
    p.add_argument("--stars", type=int, default=200_000)
    p.add_argument("--days", type=float, default=730.0, help="light-curve length (730: 2 years)")
    p.add_argument("--cadence-s", type=float, default=25.0)
    p.add_argument("--hours", type=float, default=24.0, help="deadline (24)")
    p.add_argument("--chunk-size", type=int, default=50,
                   help="stars per chunk on a scheduler (50: stellarflow run's default)")
    p.add_argument("--steps-per-chunk", type=int, default=7, help="Slurm jobs per chunk (7)")
    p.add_argument("--per-job-s", type=float, default=1.6,
                   help="scheduler cost per job, core-s (1.6: Slurm measured here)")
    p.add_argument("--node-start-s", type=float, default=120.0,
                   help="per node start, s (ASSUMED 120: image import, worker start)")
    p.add_argument("--cores-per-node", type=int, default=32, help="(ASSUMED 32)")
    p.add_argument("--run-start-s", type=float, default=None,
                   help="a run's start to its first step, s (default: measured, --start-file)")
    p.add_argument("--start-file", type=Path, default=REPO / "build" / "bench" / "start.json",
                   help="scripts/bench_start.py's output")
    p.add_argument("--run-stars", type=int, default=10_000,
                   help="stars per run (the trigger's --max-stars; 10 000)")
    p.add_argument("--cpu-per-star", type=float, default=None,
                   help="science CPU per star at --days, s (default: from the measured runs)")
    p.add_argument("--efficiency", type=float, default=None,
                   help="default: the largest measured bench-scale run's")
    p.add_argument("--jobstore-per-star-mb", type=float, default=None,
                   help="job store per star, MB, held for every star of a run (default: "
                        "measured outputs and intermediates)")
    p.add_argument("--keep-intermediates", action="store_true",
                   help="intermediates stay until the run ends (Toil without "
                        "toil_batch_system_cwl_intermediates)")
    p.add_argument("--in-flight", choices=("all", "cores"), default="all",
                   help="chunks of a run whose intermediates are in the job store at once: all "
                        "(a scheduler; the default) or cores (one per core the run has)")
    p.add_argument("--bench", type=Path, action="append", default=None,
                   help="bench JSON files (default: build/bench/scale.json, "
                        "build/bench/latest.json)")
    p.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "sizing.json")
    args = p.parse_args(argv)
    for k in ("stars", "chunk_size", "steps_per_chunk", "cores_per_node", "run_stars"):
        if getattr(args, k) < 1:
            p.error(f"--{k.replace('_', '-')} must be >= 1")
    if args.days <= 0 or args.hours <= 0 or args.cadence_s <= 0:
        p.error("--days, --hours and --cadence-s must be > 0")
    if args.efficiency is not None and not 0 < args.efficiency <= 1:
        p.error("--efficiency must be within (0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    files = args.bench or [REPO / "build" / "bench" / "scale.json",
                           REPO / "build" / "bench" / "latest.json"]
    runs = load_runs([f for f in files if f.is_file()])
    if not runs and (args.cpu_per_star is None or args.efficiency is None):
        print("sizing: no measured run in " + ", ".join(map(str, files))
              + " (make bench-scale / make bench, or give --cpu-per-star and --efficiency)",
              file=sys.stderr)
        return 1
    s = size(args, runs)
    text = markdown(s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(s, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
