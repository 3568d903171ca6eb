#!/usr/bin/env python3
"""Airflow 3 side by side with Toil and cwltool (used by scripts/bench.py; runnable alone).

Airflow is not a stellarflow dependency: it lives in its own venv (build/tools/airflow, built by
``scripts/tool-venv airflow`` from the pinned set in scripts/tool-venvs/airflow.txt). This script

- turns a stellarflow CWL job (what ``stellarflow run`` writes: observation_id, stars,
  chunk_size) into a plan of Airflow tasks: per chunk one BashOperator task per module, each
  running the same image with the same module command line as the CWL tool (``podman run``),
  chunked exactly as cwl/workflows/sas.cwl chunks, MSAP3 skipped (exit 99) where MSAP1
  found no seismic candidate, then one catalogue task; or a chain of N tiny tasks (``true``);
- runs it under Airflow with the LocalExecutor on SQLite (its own AIRFLOW_HOME: an api-server on
  127.0.0.1, a scheduler and a dag-processor, parallelism = cores), triggers the DAG once and
  waits for it, and reads every task's start and end from Airflow's database.

The DAG file is scripts/airflow/dags/stellarflow_dags.py; it reads the plan named by
$STELLARFLOW_AIRFLOW_PLAN. ``python scripts/bench_airflow.py chain --tasks 100`` or
``... sas MANIFEST --outdir DIR`` runs one DAG and prints its figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO / "scripts"))
from stellarflow.errors import InputError, RunError  # noqa: E402

DAGS = REPO / "scripts" / "airflow" / "dags"
# The chunk workflow's steps (cwl/workflows/sas_chunk.cwl) in its order.
MODULES = ("ingest", "msap1_preparation", "msap4_rotation", "msap3_seismology",
           "msap5_stellar_parameters", "transit_search", "star_products")
SKIP_EXIT = 99  # BashOperator's skip_on_exit_code: the task ends "skipped"


def airflow_bin() -> Path:
    """The Airflow venv's bin folder, built (once, idempotently) by scripts/tool-venv."""
    p = subprocess.run([str(REPO / "scripts" / "tool-venv"), "airflow"], capture_output=True,
                       text=True, check=False)
    if p.returncode != 0:
        raise RunError("scripts/tool-venv airflow failed: "
                       + (p.stderr.strip().splitlines() or ["no output"])[-1])
    return Path(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Plans


def chunk_spans(n_stars: int, chunk_size: int) -> list[tuple[str, int, int]]:
    """The chunks of cwl/workflows/sas.cwl (its `analyse` step): (chunk_id, start, stop)."""
    if chunk_size < 1:
        raise InputError(None, f"chunk_size must be >= 1, got {chunk_size}")
    return [(f"chunk-{i // chunk_size:04d}", i, min(i + chunk_size, n_stars))
            for i in range(0, n_stars, chunk_size)]


def podman_run(image: str, argv: list[str], *, ro: list[Path], rw: Path, tmp: Path) -> str:
    """``podman run`` as cwltool runs a tool (read-only root, no network, the step's output
    folder as its working directory and HOME, its own /tmp), as one shell command."""
    cmd = ["podman", "run", "--rm", "--network=none", "--read-only=true", "--log-driver=none",
           f"--volume={rw}:{rw}", f"--volume={tmp}:/tmp", f"--workdir={rw}",
           "--env=TMPDIR=/tmp", f"--env=HOME={rw}"]
    cmd += [f"--volume={p}:{p}:ro" for p in ro]
    return shlex.join([*cmd, image, *argv])


def sas_plan(job: dict[str, Any], images: dict[str, str], work: Path, outdir: Path,
             dag_id: str = "stellarflow_sas", figures: str | None = None) -> dict[str, Any]:
    """The SAS workflow of ``job`` as Airflow tasks (see the module's docstring)."""
    stars = job["stars"]
    size = int(job["chunk_size"])
    figures = figures or job.get("figures") or "all"
    obs_dirs = sorted({str(Path(s["lightcurve"]["location"].removeprefix("file://")).parent)
                       for s in stars if s.get("lightcurve")})
    ro = [Path(d) for d in obs_dirs]
    tasks: list[dict[str, Any]] = []
    rows = []
    for chunk_id, start, stop in chunk_spans(len(stars), size):
        base = work / chunk_id
        d = {m: base / m for m in MODULES}
        tmp = base / "tmp"
        chunk = {"chunk_id": chunk_id, "stars": []}
        for s in stars[start:stop]:
            rec = dict(s)
            if s.get("lightcurve"):
                path = s["lightcurve"]["location"].removeprefix("file://")
                rec["lightcurve"] = {"class": "File", "path": path,
                                     "basename": Path(path).name}
            chunk["stars"].append(rec)
        base.mkdir(parents=True, exist_ok=True)
        (base / "chunk.json").write_text(json.dumps(chunk))
        lc = d["ingest"] / f"{chunk_id}.lightcurves.h5"
        prep = d["msap1_preparation"] / f"{chunk_id}.prepared.h5"
        rot = d["msap4_rotation"] / f"{chunk_id}.rotation.h5"
        seis = d["msap3_seismology"] / f"{chunk_id}.seismology.h5"
        par = d["msap5_stellar_parameters"] / f"{chunk_id}.parameters.h5"
        tr = d["transit_search"] / f"{chunk_id}.transit.h5"
        candidates = d["msap1_preparation"] / f"{chunk_id}.msap1.json"

        def step(module: str, argv: list[str], upstream: list[str], inputs: list[Path],
                 prefix: str = "", tail: str = "", trigger_rule: str = "all_success",
                 chunk_id: str = chunk_id, d: dict[str, Path] = d, tmp: Path = tmp) -> str:
            tid = f"{chunk_id}.{module}"
            out = d[module]
            run = podman_run(images[module], [module, "--outdir", str(out), *argv],
                             ro=ro + sorted({p.parent for p in inputs}), rw=out, tmp=tmp)
            run = f"{run} {tail}".rstrip()
            # Every mounted folder must exist (MSAP3's stays empty where it was skipped).
            dirs = " ".join(shlex.quote(str(x))
                            for x in sorted({out, tmp, *(i.parent for i in inputs)}))
            cmd = f"set -euo pipefail; mkdir -p {dirs}"
            tasks.append({"task_id": tid, "bash_command": f"{cmd}; {prefix}{run}",
                          "upstream": [f"{chunk_id}.{u}" for u in upstream],
                          "trigger_rule": trigger_rule})
            return tid

        # The chunk record travels in a file, as the CWL tool passes it.
        # As the CWL tools: ingest refers to contract inputs, MSAP1 reads them via the record.
        step("ingest", ["--observation-id", job["observation_id"], "--chunk-file",
                        str(base / "chunk.json"), "--refer-to-contract-inputs"], [],
             [base / "chunk.json"])
        step("msap1_preparation", ["--lightcurves", str(lc), "--chunk-file",
                                   str(base / "chunk.json")], ["ingest"], [lc, base / "chunk.json"])
        step("msap4_rotation", ["--prepared", str(prep)], ["msap1_preparation"], [prep])
        # Only where a solar-like excess is plausible (the CWL step's `when`).
        step("msap3_seismology", ["--prepared", str(prep)], ["msap1_preparation"], [prep],
             prefix=(f"n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))"
                     f"[\"n_seismic_candidates\"])' {shlex.quote(str(candidates))}); "
                     f"[ \"$n\" -gt 0 ] || exit {SKIP_EXIT}; "))
        q_seis = shlex.quote(str(seis))
        seis_arg = f"$([ -f {q_seis} ] && echo --seismology {q_seis})"
        step("msap5_stellar_parameters", ["--prepared", str(prep), "--rotation", str(rot)],
             ["msap4_rotation", "msap3_seismology"], [prep, rot, seis], tail=seis_arg,
             trigger_rule="none_failed")
        step("transit_search", ["--prepared", str(prep), "--parameters", str(par)],
             ["msap5_stellar_parameters"], [prep, par])
        step("star_products", ["--lightcurves", str(lc), "--prepared", str(prep), "--rotation",
                               str(rot), "--parameters", str(par), "--transit", str(tr),
                               "--figures", figures, "--lightcurve", "link"],
             ["transit_search", "msap4_rotation", "msap3_seismology"],
             [lc, prep, rot, seis, par, tr], tail=seis_arg, trigger_rule="none_failed")
        rows.append(d["star_products"] / f"{chunk_id}.rows.ecsv")
    # The catalogue, then the products moved into the output folder (Toil's --moveOutputs), with
    # the prepared chunk files their light curves link into (the CWL tool's default, `link`).
    cat_dir = work / "catalogue"
    cat_tmp = work / "catalogue-tmp"
    run = podman_run(images["catalogue"], ["catalogue", "--outdir", str(cat_dir),
                                           "--observation-id", job["observation_id"], "--rows",
                                           *map(str, rows)],
                     ro=sorted({r.parent for r in rows}), rw=cat_dir, tmp=cat_tmp)
    out = shlex.quote(str(outdir))
    collect = (f"mkdir -p {out} && mv {shlex.quote(str(cat_dir))}/catalogue.ecsv "
               f"{shlex.quote(str(cat_dir))}/report.html {out}/ && "
               f"find {shlex.quote(str(work))} \\( -path '*/star_products/*' "
               f"\\( -name '*.product.h5' -o -name '*.png' \\) -o -path '*/msap1_preparation/*' "
               f"-name '*.prepared.h5' \\) -exec mv -t {out} {{}} +")
    tasks.append({"task_id": "catalogue",
                  "bash_command": (f"set -euo pipefail; mkdir -p {shlex.quote(str(cat_dir))} "
                                   f"{shlex.quote(str(cat_tmp))}; {run}; {collect}"),
                  "upstream": [t["task_id"] for t in tasks
                               if t["task_id"].endswith(".star_products")],
                  "trigger_rule": "all_success"})
    return {"dag_id": dag_id, "tasks": tasks, "max_active_tasks": 64}


def chain_plan(n: int, dag_id: str = "stellarflow_chain") -> dict[str, Any]:
    """n tiny tasks in a chain (per-task overhead)."""
    tasks = [{"task_id": f"t{i:03d}", "bash_command": "true",
              "upstream": [f"t{i - 1:03d}"] if i else []} for i in range(n)]
    return {"dag_id": dag_id, "tasks": tasks}


def chain_cwl(n: int, path: Path) -> Path:
    """A CWL workflow of n sequential tiny steps (each a ``true`` with no container), the CWL
    counterpart of chain_plan for Toil and cwltool."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tool = path.with_name("tiny.cwl")
    tool.write_text(json.dumps({
        "cwlVersion": "v1.2", "class": "CommandLineTool", "id": "tiny",
        "baseCommand": ["true"], "inputs": {"after": {"type": "Any?"}},
        "outputs": {"done": {"type": "int", "outputBinding": {"outputEval": "$(1)"}}},
        "requirements": {"InlineJavascriptRequirement": {}}}, indent=1))
    steps = {}
    for i in range(n):
        steps[f"s{i:03d}"] = {"run": tool.name,
                              "in": {"after": f"s{i - 1:03d}/done"} if i else {},
                              "out": ["done"]}
    path.write_text(json.dumps({
        "cwlVersion": "v1.2", "class": "Workflow", "id": "chain", "inputs": {},
        "outputs": {"done": {"type": "int", "outputSource": f"s{n - 1:03d}/done"}},
        "steps": steps}, indent=1))
    return path


# ---------------------------------------------------------------------------------------------
# Running a DAG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def airflow_env(home: Path, plan_path: Path, cores: int, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "STELLARFLOW_AIRFLOW_PLAN": str(plan_path),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(cores),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # The DAG file is parsed once the plan is written: no periodic re-parse racing the run.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    return env


def wait_for(check: Any, timeout: float, what: str, procs: list[subprocess.Popen],
             interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for p in procs:
            if p.poll() is not None:
                raise RunError(f"airflow {p.args[-1]} exited ({p.returncode}) while waiting for "
                               f"{what}")
        time.sleep(interval)
    raise RunError(f"airflow: no {what} within {timeout:.0f} s")


def db_query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return []
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # tables not made yet, or locked a moment
        return []
    finally:
        con.close()


def run_dag(plan: dict[str, Any], home: Path, *, cores: int, timeout: float = 7200.0,
            wrap: list[str] | None = None) -> dict[str, Any]:
    """Start Airflow in ``home``, run the plan's DAG once, stop Airflow; its figures.
    ``wrap``: a command prefix for each Airflow component (the bench's reaper)."""
    wrap = list(wrap or [])
    bin_dir = airflow_bin()
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    plan_path = home / "plan.json"
    plan_path.write_text(json.dumps(plan, indent=1))
    port = free_port()
    env = airflow_env(home, plan_path, cores, port)
    airflow = str(bin_dir / "airflow")
    t0 = time.perf_counter()
    p = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True,
                       check=False)
    if p.returncode != 0:
        raise RunError("airflow db migrate failed: "
                       + (p.stderr.strip().splitlines() or ["no output"])[-1])
    migrate_s = time.perf_counter() - t0
    logs = home / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[subprocess.Popen] = []
    db = home / "airflow.db"
    dag_id = plan["dag_id"]
    try:
        for comp in ("api-server", "scheduler", "dag-processor"):
            with open(logs / f"{comp}.log", "wb") as log:
                procs.append(subprocess.Popen([*wrap, airflow, comp], env=env, stdout=log,
                                              stderr=subprocess.STDOUT, cwd=home,
                                              start_new_session=True))
        wait_for(lambda: db_query(db, "select 1 from serialized_dag where dag_id = ?",
                                  (dag_id,)), 300, f"DAG {dag_id} parsed", procs)
        ready_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        p = subprocess.run([airflow, "dags", "trigger", dag_id], env=env, capture_output=True,
                           text=True, check=False)
        if p.returncode != 0:
            raise RunError("airflow dags trigger failed: "
                           + (p.stderr.strip().splitlines() or ["no output"])[-1])
        state = wait_for(lambda: next((s for (s,) in db_query(
            db, "select state from dag_run where dag_id = ?", (dag_id,))
            if s in ("success", "failed")), None), timeout, f"end of DAG {dag_id}", procs)
        wall = time.perf_counter() - t1
    finally:
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    pass
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
    rows = db_query(db, "select task_id, state, start_date, end_date, duration from "
                        "task_instance where dag_id = ?", (dag_id,))
    states: dict[str, int] = {}
    durations = []
    for _, st, _, _, dur in rows:
        states[str(st)] = states.get(str(st), 0) + 1
        if dur is not None and st == "success":
            durations.append(float(dur))
    if state != "success":
        bad = [t for t, st, *_ in rows if st not in ("success", "skipped")]
        raise RunError(f"Airflow DAG {dag_id} {state}: tasks {', '.join(bad[:5])} "
                       f"[logs: {logs}]")
    return {"runner": "airflow (LocalExecutor, SQLite)", "wall_s": wall,
            "start_s": ready_s, "db_migrate_s": migrate_s, "tasks": len(rows),
            "task_states": states, "task_wall_s": sum(durations),
            "airflow_version": airflow_version(bin_dir), "home": str(home)}


def airflow_version(bin_dir: Path) -> str:
    try:
        out = subprocess.run([str(bin_dir / "python"), "-c",
                              "import airflow; print(airflow.__version__)"], capture_output=True,
                             text=True, check=False).stdout.strip()
        return out or "unknown"
    except OSError:
        return "unknown"


def images_for_plan() -> dict[str, str]:
    from stellarflow.images import module_image

    return {m: module_image(REPO / "containers" / m) for m in (*MODULES, "catalogue")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_airflow.py",
                                description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("chain", help="a chain of tiny tasks")
    c.add_argument("--tasks", type=int, default=100)
    s = sub.add_parser("sas", help="the SAS workflow of a manifest")
    s.add_argument("manifest", type=Path)
    s.add_argument("--outdir", type=Path, required=True)
    s.add_argument("--chunk-size", type=int, default=None)
    s.add_argument("--figures", choices=("all", "notable", "none"), default=None)
    for q in (c, s):
        q.add_argument("--home", type=Path, default=REPO / "build" / "bench" / "airflow")
        q.add_argument("--cores", type=int, default=2)
        q.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.what == "chain":
            if args.tasks < 1:
                raise InputError(None, "--tasks must be >= 1")
            rec = run_dag(chain_plan(args.tasks), args.home.resolve(), cores=args.cores)
        else:
            from stellarflow import manifest as manifest_mod
            from stellarflow import run as run_mod

            m = manifest_mod.load(args.manifest)
            size = run_mod.resolve_chunk_size(
                args.chunk_size, len(m.stars), extra_args=["--maxCores", str(args.cores)],
                bytes_per_star=run_mod.mean_lightcurve_bytes(m))
            home = args.home.resolve()
            plan = sas_plan(m.cwl_job(size), images_for_plan(), home.parent / "airflow-work",
                            args.outdir.resolve() / m.observation_id, figures=args.figures)
            rec = run_dag(plan, home, cores=args.cores)
    except (InputError, RunError) as exc:
        if args.debug:
            raise
        print(f"bench_airflow: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(rec, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
