#!/usr/bin/env python3
"""Trigger-service benchmark (figures, not assertions) -> build/bench/trigger.json.

1. Latency from a manifest's rename into INBOX to the start of its toil-cwl-runner process
   (psutil create_time), p50/p99 over --samples manifests, for --max-wait 2 (the default
   batching window) and 0. Each sample uses a fresh daemon and state dir; once Toil has
   started, the sample's processes are killed (the run itself is not what is measured).
2. A burst of --burst one-star manifests renamed into INBOX at once, run to the end by a real
   daemon and real Toil: wall time (first rename -> every manifest in done/ or failed/), Toil runs
   started, peak RSS of the whole process tree (daemon, runners, Toil leaders and workers, tools;
   psutil, sampled every 0.5 s).

Usage: scripts/bench_trigger.py [--samples 15] [--burst 2000] [--days 2] [--chunk-size 100]
       [--no-container]
       [--skip-latency | --skip-burst] [--out build/bench/trigger.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = os.pathsep.join([str(REPO / "scripts" / "bin"), str(Path(sys.executable).parent),
                                 e["PATH"]])
    return e


def generate(work: Path, stars: int, days: float) -> list[Path]:
    out = work / "gen"
    subprocess.run([sys.executable, str(REPO / "scripts" / "generate_observation.py"), str(out),
                    "--stars", str(stars), "--days", str(days), "--seed", "11",
                    "--observation-id", "bench"], check=True, capture_output=True, env=env())
    return sorted((out / "lightcurves").iterdir())


def make_inbox(root: Path, lcs: list[Path]) -> Path:
    inbox = root / "inbox"
    (inbox / "lc").mkdir(parents=True)
    for lc in lcs:
        shutil.copy(lc, inbox / "lc" / lc.name)
    return inbox


def manifest_bytes(obs: str, lc: Path) -> bytes:
    return json.dumps({"manifest_version": 1, "observation_id": obs, "workflow": "sas",
                       "stars": [{"star_id": obs, "lightcurve": f"lc/{lc.name}"}]}).encode()


def start_daemon(inbox: Path, state: Path, container: bool, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "stellarflow.cli", "trigger", "watch", str(inbox), "--state",
            str(state), *extra]
    if not container:
        argv.append("--no-container")
    log = open(state.parent / "daemon.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(argv, stdout=log, stderr=log, env=env())


def ours(state: Path, daemon: subprocess.Popen) -> list[psutil.Process]:
    """The daemon, its descendants and anything working in its state dir."""
    procs: dict[int, psutil.Process] = {}
    try:
        d = psutil.Process(daemon.pid)
        procs[d.pid] = d
        for c in d.children(recursive=True):
            procs[c.pid] = c
    except psutil.NoSuchProcess:
        pass
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(state) in a for a in p.info["cmdline"] or ()):
                procs[p.pid] = p
                for c in p.children(recursive=True):
                    procs[c.pid] = c
        except psutil.Error:
            continue
    return list(procs.values())


def kill_all(state: Path, daemon: subprocess.Popen) -> None:
    for p in ours(state, daemon):
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    daemon.wait()


def toil_start(state: Path) -> float | None:
    for p in psutil.process_iter(["cmdline", "create_time"]):
        try:
            cmd = p.info["cmdline"] or []
            if any("toil-cwl-runner" in a for a in cmd) and any(str(state) in a for a in cmd):
                return float(p.info["create_time"])
        except psutil.Error:
            continue
    return None


def create_time_offset() -> float:
    """psutil's create_time is the boot time (/proc/stat: whole seconds) plus the process's start
    ticks, so it is up to ~1 s off time.time(): measured on a process started now, subtracted."""
    t = time.time()
    p = subprocess.Popen(["sleep", "5"])
    try:
        return psutil.Process(p.pid).create_time() - t
    finally:
        p.kill()
        p.wait()


def latency(work: Path, lcs: list[Path], samples: int, max_wait: float,
            container: bool) -> list[float]:
    out = []
    offset = create_time_offset()
    for i in range(samples):
        root = work / f"lat-{max_wait}-{i}"
        inbox = make_inbox(root, lcs[:1])
        state = root / "state"
        state.mkdir()
        daemon = start_daemon(inbox, state, container, "--max-wait", str(max_wait))
        try:
            deadline = time.time() + 60
            while not (state / "ledger.sqlite").exists() and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # watching
            tmp = inbox / f".s{i}.tmp"
            tmp.write_bytes(manifest_bytes(f"s{i}", lcs[0]))
            t0 = time.time()
            os.replace(tmp, inbox / f"s{i}.json")
            started = None
            while started is None and time.time() - t0 < 120:
                started = toil_start(state)
                time.sleep(0.01)
            if started is not None:
                out.append(started - offset - t0)
        finally:
            kill_all(state, daemon)
            shutil.rmtree(root, ignore_errors=True)
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else values[0]


def burst(work: Path, lcs: list[Path], n: int, container: bool, extra: list[str]) -> dict:
    root = work / "burst"
    inbox = make_inbox(root, lcs)
    state = root / "state"
    state.mkdir()
    staging = inbox / ".staging"
    staging.mkdir()
    for i in range(n):  # written beforehand; the burst is the renames
        (staging / f"b{i:05d}.json").write_bytes(manifest_bytes(f"b{i:05d}", lcs[i % len(lcs)]))
    daemon = start_daemon(inbox, state, container, *extra)
    peak, t0 = 0, 0.0
    try:
        while not (state / "ledger.sqlite").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        t0 = time.time()
        for i in range(n):
            os.replace(staging / f"b{i:05d}.json", inbox / f"b{i:05d}.json")
        t_renamed = time.time() - t0
        finished = 0
        while finished < n:
            rss = 0
            for p in ours(state, daemon):
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
            finished = sum(1 for d in ("done", "failed") for f in (inbox / d).glob("*.json"))
            if daemon.poll() is not None:
                raise RuntimeError("the daemon died; see " + str(root / "daemon.log"))
            time.sleep(0.5)
        wall = time.time() - t0
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    import sqlite3

    db = sqlite3.connect(state / "ledger.sqlite")
    runs = db.execute("SELECT COUNT(*), SUM(n_stars), MAX(n_stars) FROM runs").fetchone()
    by_state = dict(db.execute("SELECT state, COUNT(*) FROM manifests GROUP BY state"))
    attempts = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    db.close()
    return {"manifests": n, "wall_s": round(wall, 1), "rename_s": round(t_renamed, 2),
            "toil_runs": runs[0], "toil_attempts": attempts, "max_stars_in_a_run": runs[2],
            "manifest_states": by_state, "peak_rss_mb": round(peak / 2**20, 1),
            "workdir": str(root)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=15, help="latency samples per setting (15)")
    p.add_argument("--burst", type=int, default=2000, help="one-star manifests in the burst")
    p.add_argument("--days", type=float, default=2.0,
                   help="light-curve length, days (2; MSAP4 needs more than 1)")
    p.add_argument("--light-curves", type=int, default=20,
                   help="distinct generated light curves the burst cycles through (20)")
    p.add_argument("--no-container", action="store_true", help="steps in the venv")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-burst", action="store_true")
    p.add_argument("--chunk-size", type=int, default=100,
                   help="stars per chunk in the burst's runs (100: Toil's per-job cost would "
                        "otherwise dominate what is measured here)")
    p.add_argument("--daemon-arg", action="append", default=[],
                   help="extra `trigger watch` option for the burst (--daemon-arg=--max-runs=1)")
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    p.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "trigger.json")
    args = p.parse_args(argv)
    container = not args.no_container
    work = Path(tempfile.mkdtemp(prefix="bench-trigger-"))
    result: dict = {"machine_cores": psutil.cpu_count(), "container": container,
                    "days": args.days}
    try:
        lcs = generate(work, args.light_curves, args.days)
        if not args.skip_latency:
            for w in (2.0, 0.0):
                lat = latency(work, lcs, args.samples, w, container)
                result[f"latency_max_wait_{w:g}"] = {
                    "samples": len(lat), "p50_s": round(pct(lat, 50), 3),
                    "p99_s": round(pct(lat, 99), 3), "max_s": round(max(lat), 3) if lat else None}
                print(f"latency rename -> toil start, --max-wait {w:g}: "
                      f"p50 {pct(lat, 50):.2f} s, p99 {pct(lat, 99):.2f} s (n={len(lat)})",
                      flush=True)
        if not args.skip_burst:
            b = burst(work, lcs, args.burst, container,
                      ["--chunk-size", str(args.chunk_size), *args.daemon_arg])
            b["chunk_size"] = args.chunk_size
            result["burst"] = b
            print(f"burst of {b['manifests']} one-star manifests: wall {b['wall_s']} s, "
                  f"{b['toil_runs']} Toil runs ({b['toil_attempts']} attempts, at most "
                  f"{b['max_stars_in_a_run']} stars each), peak RSS of the tree "
                  f"{b['peak_rss_mb']} MB; states {b['manifest_states']}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"figures: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
