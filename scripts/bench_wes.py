#!/usr/bin/env python3
"""Load on `stellarflow serve`: CLIENTS concurrent pollers while RUNS runs are submitted.

Starts its own server (fresh state under build/bench/wes/, loopback, --no-container unless
--containers), generates a small observation, then for the whole measurement:
- every client loops: GET /ga4gh/wes/v1/runs/{id}/status of a submitted run (service-info before
  the first), GET / (the page) and GET /ui/api/runs (the page's poll), sleeping --interval between
  rounds;
- one submitter posts RUNS distinct SAS jobs (2 stars each) through the WES API, one every
  --submit-every seconds, then every run is followed to its end.
Reports p50/p95/p99/max latency per kind, errors, and the check: exactly RUNS runs recorded, all
COMPLETE, no duplicate. Writes build/bench/wes.json. Run on a quiet machine for published figures
(the load average is recorded next to them).

    make bench-wes                      # 50 clients, 20 runs
    scripts/bench_wes.py --smoke        # 5 clients, 2 runs: does it work
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
WES = "/ga4gh/wes/v1"
FINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * len(xs) + 0.5)) - 1))] if xs else 0.0


def start(workdir: Path, containers: bool) -> tuple[subprocess.Popen, str, Path, Path]:
    data = workdir / "data"
    if not (data / "manifest.yaml").exists():
        subprocess.run([sys.executable, str(REPO / "scripts" / "generate_observation.py"),
                        str(data), "--stars", "2", "--days", "5", "--seed", "1",
                        "--observation-id", "bench"], check=True, capture_output=True)
    state = workdir / f"state-{time.strftime('%Y%m%dT%H%M%S')}"
    port = free_port()
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(REPO / "scripts" / "bin"), str(Path(sys.executable).parent),
                                   env["PATH"]])
    argv = [sys.executable, "-m", "stellarflow.cli", "serve", "--state", str(state),
            "--data-root", str(data), "--port", str(port), "--insecure-loopback"]
    if not containers:
        argv.append("--no-container")
    log = open(workdir / "serve.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + WES + "/service-info", timeout=2).status_code == 200:
                return proc, url, data, state
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("bench_wes: the server did not start; see " + str(workdir / "serve.log"))


async def client(c: httpx.AsyncClient, ids: list[str], lat: dict[str, list[float]],
                 errors: dict[str, int], stop: asyncio.Event, interval: float) -> None:
    await asyncio.sleep(random.random() * interval)
    while not stop.is_set():
        for kind, path in (("status", None), ("page", "/"), ("page_data", "/ui/api/runs")):
            if kind == "status":
                path = f"{WES}/runs/{random.choice(ids)}/status" if ids else f"{WES}/service-info"
            t0 = time.perf_counter()
            try:
                r = await c.get(path)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            dt = time.perf_counter() - t0
            lat[kind].append(dt)
            if not ok:
                errors[kind] = errors.get(kind, 0) + 1
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass


async def submitter(c: httpx.AsyncClient, data: Path, n: int, every: float,
                    ids: list[str], lat: dict[str, list[float]]) -> None:
    tag = f"{int(time.time())}"
    for i in range(n):
        job = {"observation_id": f"bench-{tag}-{i:02d}", "stars": [
            {"star_id": f"star0000{k}", "lightcurve": {
                "class": "File", "location": (data / "lightcurves" / f"star0000{k}.h5").as_uri()}}
            for k in range(2)]}
        t0 = time.perf_counter()
        r = await c.post(f"{WES}/runs", data={"workflow_params": json.dumps(job),
                                              "workflow_type": "CWL",
                                              "workflow_type_version": "v1.2",
                                              "workflow_url": "sas"})
        lat["submit"].append(time.perf_counter() - t0)
        r.raise_for_status()
        ids.append(r.json()["run_id"])
        await asyncio.sleep(every)


async def measure(url: str, data: Path, args: argparse.Namespace) -> dict:
    lat: dict[str, list[float]] = {"status": [], "page": [], "page_data": [], "submit": []}
    errors: dict[str, int] = {}
    ids: list[str] = []
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=args.clients + 5)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
        clients = [asyncio.create_task(client(c, ids, lat, errors, stop, args.interval))
                   for _ in range(args.clients)]
        t0 = time.time()
        await submitter(c, data, args.runs, args.submit_every, ids, lat)
        states: dict[str, str] = {}
        while time.time() - t0 < args.max_seconds:
            states = {i: (await c.get(f"{WES}/runs/{i}/status")).json()["state"] for i in ids}
            if all(s in FINAL for s in states.values()):
                break
            await asyncio.sleep(2)
        wall = time.time() - t0
        stop.set()
        await asyncio.gather(*clients)
        listed, token = [], ""
        while True:
            page = (await c.get(f"{WES}/runs?page_size=100" +
                                (f"&page_token={token}" if token else ""))).json()
            listed += [r["run_id"] for r in page["runs"]]
            token = page["next_page_token"]
            if not token:
                break
    return {"lat": lat, "errors": errors, "ids": ids, "states": states, "listed": listed,
            "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--interval", type=float, default=1.0,
                   help="seconds each client sleeps between polling rounds (default 1)")
    p.add_argument("--submit-every", type=float, default=0.5)
    p.add_argument("--max-seconds", type=float, default=1200)
    p.add_argument("--containers", action="store_true", help="run the steps in their images")
    p.add_argument("--smoke", action="store_true", help="5 clients, 2 runs")
    p.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "wes.json")
    args = p.parse_args(argv)
    if args.smoke:
        args.clients, args.runs = 5, 2
    workdir = REPO / "build" / "bench" / "wes"
    workdir.mkdir(parents=True, exist_ok=True)
    proc, url, data, state = start(workdir, args.containers)
    try:
        load0 = os.getloadavg()
        res = asyncio.run(measure(url, data, args))
        load1 = os.getloadavg()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    ids, states = res["ids"], res["states"]
    check = {
        "submitted": len(ids), "distinct_ids": len(set(ids)),
        "listed": len(res["listed"]), "listed_distinct": len(set(res["listed"])),
        "complete": sum(s == "COMPLETE" for s in states.values()),
        "lost": len(set(ids) - set(res["listed"])), "extra": len(set(res["listed"]) - set(ids)),
    }
    check["ok"] = (check["distinct_ids"] == args.runs == check["listed_distinct"] ==
                   check["listed"] and check["lost"] == 0 and check["extra"] == 0
                   and check["complete"] == args.runs)
    figs = {k: {"n": len(v), "p50_ms": round(1000 * pct(v, 50), 1),
                "p95_ms": round(1000 * pct(v, 95), 1), "p99_ms": round(1000 * pct(v, 99), 1),
                "max_ms": round(1000 * max(v), 1) if v else 0.0,
                "mean_ms": round(1000 * statistics.fmean(v), 1) if v else 0.0}
            for k, v in res["lat"].items()}
    doc = {"clients": args.clients, "runs": args.runs, "interval_s": args.interval,
           "wall_s": round(res["wall_s"], 1), "latency": figs, "errors": res["errors"],
           "check": check, "loadavg_start": load0, "loadavg_end": load1,
           "cpus": os.cpu_count(), "state": str(state),
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"{args.clients} clients polling every {args.interval:g} s while {args.runs} runs were "
          f"submitted and run ({res['wall_s']:.0f} s; load average {load0[0]:.2f} -> "
          f"{load1[0]:.2f} on {os.cpu_count()} CPUs)")
    print(f"{'request':<10} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for k, f in figs.items():
        print(f"{k:<10} {f['n']:>6} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['p99_ms']:>8} "
              f"{f['max_ms']:>8}")
    print(f"errors: {res['errors'] or 'none'}; runs: {check}")
    print(f"written: {args.out}")
    return 0 if check["ok"] and not res["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
