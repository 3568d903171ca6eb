#!/usr/bin/env python3
"""Throughput benchmark of the SAS workflow (`make bench`): efficiency, overhead, memory, jobs.

Generates one observation (fixed seed; reused while its parameters are unchanged), runs it
through ``stellarflow.run.run_manifest`` (the code path of ``stellarflow run``) under Toil with
``--maxCores CORES --stats``, then the same under ``cwltool --parallel`` and the naive
one-star-per-job variant (the same workflow with chunk_size=1, on a subset), and reports:

- efficiency = sum of science CPU (catalogue cpu_s) / (cores x wall);
- orchestration overhead per star = (cores x wall - sum of science CPU) / stars;
- science CPU per star for each module (product HDF5 /provenance/<stage> cpu_s);
- peak RSS of the runner's whole process tree (read from /proc every 0.5 s), job-store size,
  Toil job count (``toil stats --raw``), CPU of the whole process tree;
- cores needed for 200 000 stars in 24 h from the measured figures.

Writes build/bench/latest.json (and build/bench/<utc>.json, <utc>.txt, so runs can be compared).

Process tree: the runner is started through a thin wrapper (this script, ``--reap-exec``) that
makes itself a child subreaper (Linux prctl) and reaps at once whatever detaches from the runner
(podman's conmon and the containers under it): so they stay in the sampled tree, their CPU is
collected into the tree's rusage, and no zombie is left in a Toil worker's process group (Toil
would wait 5 s for such a group).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
if not (REPO / "stellarflow.egg-info").exists():  # a checkout without the editable install
    sys.path.insert(0, str(REPO / "scripts"))
from stellarflow import profiling, sites  # noqa: E402
from stellarflow import run as run_mod  # noqa: E402
from stellarflow.errors import InputError, RunError  # noqa: E402

SEED = 2026
OBSERVATION_ID = "bench"
STARS_PER_DAY_TARGET = 200_000  # "cores needed for 200 000 stars in 24 h"
MODULES = ("ingest", "msap1_preparation", "msap4_rotation", "msap3_seismology",
           "msap5_stellar_parameters", "transit_search", "star_products", "catalogue")
# Toil jobs that exist once per workflow run (everything else is per chunk).
TOP_LEVEL_JOBS = re.compile(r"CWLWorkflow sas|ResolveIndirect sas\._resolve|CWLScatter|CWLGather"
                            r"|CWLJob sas\.(chunk|assemble)\..*")
PR_SET_CHILD_SUBREAPER = 36
# A science step's process is its module's command (the SAS fakes answer to the same names).
MODULE_COMMANDS = set(MODULES) | {"fake_sas"}


# ---------------------------------------------------------------------------------------------
# Observation


def generator_hash() -> str:
    """Hash of the generator's code: a changed generator regenerates the observation."""
    h = hashlib.sha256()
    for p in (REPO / "scripts" / "generate_observation.py",
              REPO / "scripts" / "stellarflow" / "synthetic.py"):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def ensure_observation(workdir: Path, stars: int, days: float, cadence_s: float,
                       seed: int = SEED) -> tuple[Path, bool]:
    """build/bench/obs with its parameters in obs.params.json; (manifest, reused?)."""
    obs = workdir / "obs"
    params_path = workdir / "obs.params.json"
    params = {"stars": stars, "days": days, "cadence_s": cadence_s, "seed": seed,
              "observation_id": OBSERVATION_ID, "generator": generator_hash()}
    manifest = obs / "manifest.yaml"
    try:
        if json.loads(params_path.read_text()) == params and manifest.is_file():
            return manifest, True
    except (OSError, ValueError):
        pass
    if obs.exists():
        shutil.rmtree(obs)
    params_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(REPO / "scripts" / "generate_observation.py"), str(obs),
           "--stars", str(stars), "--days", f"{days:g}", "--cadence-s", f"{cadence_s:g}",
           "--seed", str(seed), "--observation-id", OBSERVATION_ID]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RunError(f"generate_observation failed: {proc.stderr.strip()[-300:]}")
    params_path.write_text(json.dumps(params, indent=1) + "\n")
    return manifest, False


def subset_manifest(manifest: Path, n: int) -> Path:
    """A manifest with the first n stars, beside the full one (same light-curve paths)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    doc = yaml.load(manifest.read_text())
    if n >= len(doc["stars"]):
        return manifest
    doc["stars"] = doc["stars"][:n]
    out = manifest.with_name(f"manifest-first{n}.yaml")
    with out.open("w") as fh:
        yaml.dump(doc, fh)
    return out


# ---------------------------------------------------------------------------------------------
# Process-tree sampling


def become_subreaper() -> bool:
    """Orphaned descendants (podman's conmon, containers) are re-parented to us, not init."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_exec(cmd: list[str]) -> int:
    """Run ``cmd`` as a child subreaper; reap every adopted orphan at once; return its status."""
    import signal

    become_subreaper()
    proc = subprocess.Popen(cmd)

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    status = None
    deadline = None  # once the runner is done, orphans get 10 s to finish
    while deadline is None or time.monotonic() < deadline:
        try:
            # The runner or an orphan it left (conmon, containers).
            pid, st = os.waitpid(-1, 0 if deadline is None else os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.1)
        elif pid == proc.pid:
            status = os.waitstatus_to_exitcode(st)
            deadline = time.monotonic() + 10.0
    return 1 if status is None else (status if status >= 0 else 128 - status)


def wrap_runner_argv() -> None:
    """Start the runner through ``reap_exec`` (run_job itself is unchanged)."""
    original = run_mod.runner_argv
    if getattr(original, "_bench", False):
        return

    def wrapped(*args: Any, **kwargs: Any) -> tuple[list[str], dict]:
        argv, env = original(*args, **kwargs)
        return [sys.executable, str(Path(__file__).resolve()), "--reap-exec", "--", *argv], env

    wrapped._bench = True  # type: ignore[attr-defined]
    run_mod.runner_argv = wrapped


def process_kind(cmdline: list[str], name: str) -> str:
    """Which part of the run a process is (for the CPU breakdown)."""
    text = " ".join(cmdline)
    if "--reap-exec" in text:
        return "bench wrapper"
    if name in ("podman", "conmon", "crun", "runc", "catatonit"):
        return "podman/conmon/crun"  # `podman run` and `podman stats` (cwltool polls memory)
    if name in ("node", "nodejs"):
        return "nodejs (CWL expressions)"
    if any(Path(a).name in MODULE_COMMANDS for a in cmdline[:2]):
        return "module processes"  # science + their start, imports, I/O
    if "_toil_worker" in text or "toil_batch_system_stellarflow.fork_server" in text:
        return "toil workers"  # forked from the warm server (toil_single_machine) or started
    if "toil-cwl-runner" in text or "stellarflow.toil_runner" in text:
        return "toil leader"
    if any(Path(a).name == "airflow" for a in cmdline[:2]) or "airflow.sdk" in text:
        return "airflow"  # its scheduler, api-server, dag-processor and task supervisors"
    if "cwltool" in text:
        return "cwltool"
    return "other"


LEADER_KINDS = ("toil leader", "cwltool", "airflow")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def proc_table(skip: set[int] | None = None,
               alive: set[int] | None = None) -> dict[int, tuple[int, str, float, int, int]]:
    """pid -> (ppid, name, CPU s, RSS bytes, start in clock ticks) of every process but those
    in ``skip``, one read of /proc/PID/stat each: the sampler runs beside the measured run, on
    the same cores, and psutil's per-process calls cost several times more CPU. ``alive``, when
    given, receives every pid listed (skipped ones included)."""
    table: dict[int, tuple[int, str, float, int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if alive is not None:
            alive.add(pid)
        if skip and pid in skip:
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        head, _, tail = raw.rpartition(b")")
        fields = tail.split()
        # fields[0] is the state (stat field 3): ppid 4, utime 14, stime 15, starttime 22, rss 24
        table[pid] = (
            int(fields[1]), head.partition(b"(")[2].decode(errors="replace"),
            (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
            int(fields[21]) * PAGE_SIZE, int(fields[19]))
    return table


def descendants(root: int, table: dict[int, tuple[int, str, float, int, int]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, row in table.items():
        children.setdefault(row[0], []).append(pid)
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def read_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


@dataclass
class TreeSampler:
    """Samples the runner's process tree every ``interval`` s: the summed RSS (peak), the
    leader's RSS (peak: toil-cwl-runner's own process, cwltool's, or Airflow's scheduler and
    servers) and the CPU each process used as last seen (processes shorter than a sample are
    missed). With ``jobstores`` (a glob pattern), the size of the job store(s) it matches is
    sampled every ``jobstore_interval`` s in a second thread: its peak, not only its end."""

    interval: float = 0.5
    jobstores: str | None = None
    jobstore_interval: float = 5.0
    peak_rss: int = 0
    peak_leader_rss: int = 0
    peak_procs: int = 0
    samples: int = 0
    peak_jobstore: int = 0
    peak_jobstore_files: int = 0
    jobstore_samples: int = 0
    cpu_seen: dict[tuple[int, int], tuple[str, float]] = field(default_factory=dict)
    kinds: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    outside: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _js_thread: threading.Thread | None = None

    def sample_jobstore(self) -> None:
        import glob

        size = files = 0
        for d in glob.glob(self.jobstores or ""):
            s, n = dir_size_files(Path(d))
            size, files = size + s, files + n
        self.peak_jobstore = max(self.peak_jobstore, size)
        self.peak_jobstore_files = max(self.peak_jobstore_files, files)
        self.jobstore_samples += 1

    def _js_loop(self) -> None:
        while not self._stop.wait(self.jobstore_interval):
            self.sample_jobstore()

    def sample(self) -> None:
        rss = 0
        leader = 0
        procs = 0
        alive: set[int] = set()
        table = proc_table(self.outside, alive)
        tree = descendants(os.getpid(), table)
        # A process outside the tree stays outside (only a descendant is ever reparented to
        # the bench's subreaper): its stat is not read again while it lives.
        self.outside = (self.outside & alive) | (set(table) - set(tree))
        for pid in tree:
            _, comm, cpu, rss_bytes, start = table[pid]
            key = (pid, start)
            # Classified again when the process's name changes (an exec: a fresh fork still
            # shows its parent's cmdline); a zombie, whose cmdline is gone, keeps its kind.
            known = self.kinds.get(key)
            if known is None or known[0] != comm:
                cmdline = read_cmdline(pid)
                kind = (process_kind(cmdline, comm) if cmdline
                        else (known[1] if known else "other"))
                self.kinds[key] = (comm, kind)
            else:
                kind = known[1]
            rss += rss_bytes
            procs += 1
            self.cpu_seen[key] = (kind, cpu)
            if kind in LEADER_KINDS:
                leader += rss_bytes
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_leader_rss = max(self.peak_leader_rss, leader)
        self.peak_procs = max(self.peak_procs, procs)
        self.samples += 1

    def cpu_by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind, cpu in self.cpu_seen.values():
            out[kind] = out.get(kind, 0.0) + cpu
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def processes_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for kind, _ in self.cpu_seen.values():
            out[kind] = out.get(kind, 0) + 1
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        if self.jobstores:
            self._js_thread = threading.Thread(target=self._js_loop, daemon=True)
            self._js_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in (self._thread, self._js_thread):
            if t:
                t.join()


def children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def dir_size_files(path: Path) -> tuple[int, int]:
    """(bytes, files) under ``path``; a symlink counts as its own few bytes, not its target."""
    total = count = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
                count += 1
            except OSError:
                pass
    return total, count


def dir_size(path: Path) -> int:
    return dir_size_files(path)[0]


def children_written() -> int:
    """Bytes the reaped children (the runner's whole tree) sent to storage (rusage oublock)."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock * 512


# ---------------------------------------------------------------------------------------------
# Outputs


def science_figures(outdir: Path) -> dict[str, Any]:
    """Sum of science CPU (catalogue), per-module CPU per star (products' provenance)."""
    import h5py
    import numpy as np
    from astropy.table import Table

    t = Table.read(outdir / "catalogue.ecsv", format="ascii.ecsv")
    cpu = np.asarray(t["cpu_s"], dtype=float)
    stars = len(t)
    totals: dict[str, float] = {}
    for row in t:
        sid = str(row["star_id"])
        star_total = float(row["cpu_s"]) if math.isfinite(float(row["cpu_s"])) else 0.0
        upstream = 0.0
        try:
            with h5py.File(outdir / f"{sid}.product.h5", "r") as f:
                for stage in f.get("provenance", {}):
                    g = f["provenance"][stage]
                    module = g.attrs.get("module", stage)
                    module = module.decode() if isinstance(module, bytes) else str(module)
                    c = float(g.attrs.get("cpu_s", float("nan")))
                    if math.isfinite(c):
                        totals[module] = totals.get(module, 0.0) + c
                        upstream += c
        except OSError:
            continue
        # star_products adds its own CPU (writing the product, the figure) to the row's total.
        totals["star_products"] = totals.get("star_products", 0.0) + max(star_total - upstream,
                                                                         0.0)
    order = {m: i for i, m in enumerate(MODULES)}
    per_module = {m: totals[m] / stars for m in sorted(totals, key=lambda m: order.get(m, 99))}
    status = [str(s) for s in t["status"]]
    return {
        "stars": stars,
        "stars_ok": status.count("ok"),
        "stars_failed": status.count("failed"),
        "science_cpu_s": float(np.nansum(cpu)),
        "per_module_cpu_s": per_module,
    }


def run_figures(stars: int, wall: float, capacity: float, tree_cpu: float, written: int,
                sci: dict, sampler: Any) -> dict[str, Any]:
    """The figures every engine's run reports (wall, science, efficiency, process tree, RSS,
    bytes written, stars and per-module CPU); ``capacity`` is cores x wall."""
    return {
        "wall_per_star_s": wall / stars,
        "science_cpu_s": sci["science_cpu_s"],
        "science_cpu_per_star_s": sci["science_cpu_s"] / stars,
        "efficiency": sci["science_cpu_s"] / capacity,
        "overhead_per_star_s": (capacity - sci["science_cpu_s"]) / stars,
        "tree_cpu_s": tree_cpu,
        "science_share_of_tree_cpu": sci["science_cpu_s"] / tree_cpu if tree_cpu else None,
        "idle_share": max(capacity - tree_cpu, 0.0) / capacity,
        "sampled_cpu_by_process_kind_s": sampler.cpu_by_kind(),
        "processes_by_kind": sampler.processes_by_kind(),
        "peak_rss_mb": sampler.peak_rss / 2**20,
        "leader_peak_rss_mb": sampler.peak_leader_rss / 2**20,
        "peak_processes": sampler.peak_procs,
        "rss_samples": sampler.samples,
        "written_mb": written / 2**20,
        "written_per_star_mb": written / 2**20 / stars,
        "stars_ok": sci["stars_ok"],
        "stars_failed": sci["stars_failed"],
        "per_module_cpu_s": sci["per_module_cpu_s"],
    }


def output_figures(outdir: Path, stars: int) -> dict[str, Any]:
    """What the run leaves in its output folder: size, files, and both per star."""
    size, files = dir_size_files(outdir)
    pngs = len(list(outdir.glob("*.png")))
    return {"outputs_mb": size / 2**20, "output_files": files, "figures": pngs,
            "outputs_per_star_mb": size / 2**20 / max(stars, 1),
            "files_per_star": files / max(stars, 1)}


def toil_stats(jobstore: str, env: dict[str, str]) -> dict[str, Any]:
    """`toil stats --raw` of a finished run: job count, per job type count/wall/CPU."""
    proc = subprocess.run(["toil", "stats", "--raw", "--logOff", jobstore], capture_output=True,
                          text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["toil stats failed"])[-1]}
    raw = json.loads(proc.stdout[proc.stdout.index("{"):])
    types = {}
    for name, v in raw.get("job_types", {}).items():
        types[name] = {"count": int(v["total_number"]), "wall_s": float(v["total_time"]),
                       "cpu_s": float(v["total_clock"])}
    by_class: dict[str, int] = {}
    for name, v in types.items():
        cls = name.split(" ", 1)[0]
        by_class[cls] = by_class.get(cls, 0) + v["count"]
    top = sum(v["count"] for n, v in types.items() if TOP_LEVEL_JOBS.fullmatch(n))
    jobs = raw.get("jobs", {})
    workers = raw.get("worker", {})
    return {
        "toil_jobs": int(jobs.get("total_number", 0)),
        "top_level_jobs": top,
        "by_class": dict(sorted(by_class.items())),
        "job_wall_s": float(jobs.get("total_time", 0.0)),
        "job_cpu_s": float(jobs.get("total_clock", 0.0)),
        "workers": int(workers.get("total_number", 0)),
        "worker_wall_s": float(workers.get("total_time", 0.0)),
        "worker_cpu_s": float(workers.get("total_clock", 0.0)),
        # Toil's "total_clock": the leader's CPU including its local workers (its children).
        "leader_with_local_workers_cpu_s": float(raw.get("total_clock", 0.0)),
        "job_types": dict(sorted(types.items(), key=lambda kv: -kv[1]["wall_s"])),
    }


def step_span(run_dir: Path, began: _dt.datetime, ended: _dt.datetime) -> dict[str, float]:
    """How long the run took to start its first step and to end after its last one, from the
    step profiles (each step's start and end in its container): the run's fixed start and end,
    when at most one core works for it."""
    try:
        lines = profiling.load_lines(Path(run_dir))
    except InputError:  # a run without provenance has no step profiles
        return {}
    spans = [(profiling.parse_time(r.get("start_utc")), profiling.parse_time(r.get("end_utc")))
             for r in lines]
    spans = [(s, e) for s, e in spans if s is not None and e is not None]
    if not spans:
        return {}
    return {"before_first_step_s": (min(s for s, _ in spans) - began).total_seconds(),
            "after_last_step_s": (ended - max(e for _, e in spans)).total_seconds()}


# ---------------------------------------------------------------------------------------------
# One measured run


def measure(name: str, manifest: Path, outroot: Path, *, runner: str, chunk_size: int | None,
            cores: int, container: bool, keep: bool, interval: float,
            toil_args: list[str] | None = None, jobstore_interval: float = 5.0,
            run_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the manifest once; wall, tree RSS/CPU, science CPU, Toil stats, job store."""
    outdir = outroot / name
    if outdir.exists():
        shutil.rmtree(outdir)
    extra = (["--maxCores", str(cores), "--stats", *(toil_args or [])] if runner == "toil"
             else [])
    cpu0 = children_cpu()
    written0 = children_written()
    t0 = time.perf_counter()
    began = _dt.datetime.now(_dt.UTC)
    jobstores = str(outdir / ".stellarflow" / "runs" / "*" / "jobstore")
    with TreeSampler(interval=interval, jobstores=jobstores if runner == "toil" else None,
                     jobstore_interval=jobstore_interval) as sampler:
        result = run_mod.run_manifest(manifest, outdir, chunk_size=chunk_size,
                                      container=container, runner=runner, extra_args=extra,
                                      **(run_kwargs or {}))
    wall = time.perf_counter() - t0
    ended = _dt.datetime.now(_dt.UTC)
    tree_cpu = children_cpu() - cpu0
    written = children_written() - written0
    sci = science_figures(Path(result.outdir))
    stars = sci["stars"]
    # cwltool --parallel sizes itself from the machine (psutil.cpu_count()).
    used_cores = cores if runner == "toil" else (psutil.cpu_count() or cores)
    capacity = used_cores * wall
    rec: dict[str, Any] = {
        "runner": "toil-cwl-runner" if runner == "toil" else "cwltool --parallel",
        "stars": stars,
        # None asked for what `stellarflow run` chooses for these cores; the run says which.
        "chunk_size": result.chunk_size,
        "chunks": math.ceil(stars / result.chunk_size),
        "cores": used_cores,
        "runner_args": extra,
        "wall_s": wall,
        **run_figures(stars, wall, capacity, tree_cpu, written, sci, sampler),
        **output_figures(Path(result.outdir), stars),
        **step_span(Path(result.run_dir), began, ended),
        "run_dir": result.run_dir,
    }
    if runner == "toil":
        jobstore = Path(result.jobstore)
        rec["jobstore_mb"] = dir_size(jobstore) / 2**20 if jobstore.exists() else None
        sampler.sample_jobstore()  # the end counts too (a run shorter than one sample)
        rec["jobstore_peak_mb"] = sampler.peak_jobstore / 2**20
        rec["jobstore_peak_files"] = sampler.peak_jobstore_files
        rec["jobstore_samples"] = sampler.jobstore_samples
        rec["jobstore_interval_s"] = jobstore_interval
        env = dict(os.environ)
        env.update(sites.runner_path_env())
        st = toil_stats(str(jobstore), env)
        rec["toil_stats"] = st
        if "toil_jobs" in st:
            rec["toil_jobs"] = st["toil_jobs"]
            rec["jobs_per_chunk"] = (st["toil_jobs"] - st["top_level_jobs"]) / rec["chunks"]
            rec["overhead_per_job_s"] = (capacity - sci["science_cpu_s"]) / st["toil_jobs"]
        if not keep and jobstore.exists():
            shutil.rmtree(jobstore)  # --stats keeps the job store (clean: never)
    return rec


def measure_or_error(name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A comparison run that fails is reported (one line), not fatal to the benchmark."""
    try:
        return measure(name, *args, **kwargs)
    except RunError as exc:
        print(f"bench: {name} run failed: {exc}", file=sys.stderr)
        return {"error": str(exc)}


def bench_airflow_module() -> Any:
    """scripts/bench_airflow.py (Airflow side by side), imported by path."""
    import importlib.util

    if "stellarflow_bench_airflow" in sys.modules:
        return sys.modules["stellarflow_bench_airflow"]
    spec = importlib.util.spec_from_file_location("stellarflow_bench_airflow",
                                                  REPO / "scripts" / "bench_airflow.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = mod  # type: ignore[union-attr]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def measure_airflow(manifest: Path, outroot: Path, *, chunk_size: int | None, cores: int,
                    interval: float, figures: str | None = None) -> dict[str, Any]:
    """The same chunks with the same images as an Airflow 3 DAG (scripts/bench_airflow.py):
    wall from the trigger to the DAG's end (Airflow's services already up, as in a deployment;
    their start is ``start_s``), efficiency, overhead per task. The process tree's CPU includes
    Airflow's own start and idle loops."""
    from stellarflow import manifest as manifest_mod

    ba = bench_airflow_module()
    m = manifest_mod.load(manifest)
    # The chunks `stellarflow run` makes for the same cores (Toil's and cwltool's runs).
    size = run_mod.resolve_chunk_size(chunk_size, len(m.stars),
                                      extra_args=["--maxCores", str(cores)],
                                      bytes_per_star=run_mod.mean_lightcurve_bytes(m))
    folder = outroot / "airflow"
    if folder.exists():
        shutil.rmtree(folder)
    outdir = folder / m.observation_id
    plan = ba.sas_plan(m.cwl_job(size), ba.images_for_plan(), folder / "work", outdir,
                       figures=figures)
    cpu0 = children_cpu()
    written0 = children_written()
    with TreeSampler(interval=interval) as sampler:
        rec = ba.run_dag(plan, folder / "home", cores=cores,
                         wrap=[sys.executable, str(Path(__file__).resolve()), "--reap-exec", "--"])
    tree_cpu = children_cpu() - cpu0
    sci = science_figures(outdir)
    stars = sci["stars"]
    wall = rec["wall_s"]
    capacity = cores * wall
    ran = rec["task_states"].get("success", 0)
    rec.update({
        "stars": stars, "chunk_size": size, "chunks": math.ceil(stars / size), "cores": cores,
        "runner_args": [f"parallelism={cores}"],
        "tasks_run": ran, "overhead_per_task_s": (capacity - sci["science_cpu_s"]) / max(ran, 1),
        **run_figures(stars, wall, capacity, tree_cpu, children_written() - written0, sci,
                      sampler),
        **output_figures(outdir, stars),
    })
    return rec


def measure_chains(n: int, workdir: Path, *, cores: int, engines: tuple[str, ...]) -> dict:
    """A chain of n tiny tasks (``true``, no container) under each engine: per-task cost."""
    ba = bench_airflow_module()
    folder = workdir / "chain"
    if folder.exists():
        shutil.rmtree(folder)
    cwl = ba.chain_cwl(n, folder / "chain.cwl")
    env = dict(os.environ)
    env.update(sites.runner_path_env())
    out: dict[str, Any] = {"tasks": n}
    for engine in engines:
        print(f"bench: chain of {n} tiny tasks under {engine} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            if engine == "airflow":
                rec = ba.run_dag(ba.chain_plan(n), folder / "airflow-home", cores=cores)
                wall = rec["wall_s"]
                extra = {"start_s": rec["start_s"]}
            else:
                if engine == "toil":
                    argv = ["toil-cwl-runner", "--config", str(sites.profile_path("local")),
                            "--jobStore", str(folder / "jobstore"), "--workDir",
                            str(folder / "work"), "--maxCores", str(cores), "--no-container",
                            "--outdir", str(folder / "toil-out"), "--logLevel", "WARNING"]
                    (folder / "work").mkdir(parents=True, exist_ok=True)
                else:
                    argv = ["cwltool", "--parallel", "--no-container", "--outdir",
                            str(folder / "cwltool-out"), "--quiet"]
                p = subprocess.run([*argv, str(cwl)], capture_output=True, text=True, env=env,
                                   cwd=folder, check=False)
                wall = time.perf_counter() - t0
                if p.returncode != 0:
                    raise RunError((p.stderr.strip().splitlines() or ["failed"])[-1])
                extra = {}
            out[engine] = {"wall_s": wall, "per_task_s": wall / n, **extra}
        except RunError as exc:
            out[engine] = {"error": str(exc)}
    return out


# ---------------------------------------------------------------------------------------------
# Orchestration profile: process start + imports per module, container start


def import_profile(container: bool) -> dict[str, Any]:
    """`python -X importtime -m MODULE --version` per Python module (venv; a compiled module:
    its command), the heaviest imports, and the command's wall time in its image (container
    start)."""
    from stellarflow.images import module_image, read_module

    env = dict(os.environ)
    env.update(sites.runner_path_env())
    out: dict[str, Any] = {}
    for m in MODULES:
        python = read_module(REPO / "containers" / m)["language"] == "python"
        cmd = ([sys.executable, "-X", "importtime", "-m", m, "--version"] if python
               else [m, "--version"])
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - t0
        tops: dict[str, int] = {}
        total_us = 0
        for line in p.stderr.splitlines():
            mm = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if not mm:
                continue
            cum, depth, pkg = int(mm.group(2)), len(mm.group(3)), mm.group(4)
            if depth <= 1:  # a top-level import of the module's process
                root = pkg.split(".")[0]
                tops[root] = tops.get(root, 0) + cum
                total_us += cum
        rec: dict[str, Any] = {
            "venv_wall_s": wall,
            "import_s": total_us / 1e6,
            "heaviest_imports_s": {k: v / 1e6 for k, v in
                                   sorted(tops.items(), key=lambda kv: -kv[1])[:5]},
        }
        if container:
            img = module_image(REPO / "containers" / m)
            cmd = ["podman", "run", "--rm", "--network=none", img, m, "--version"]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            rec["container_wall_s"] = time.perf_counter() - t0 if p.returncode == 0 else None
        out[m] = rec
    return out


# ---------------------------------------------------------------------------------------------
# Report


def cores_needed(core_s_per_star: float, stars: int = STARS_PER_DAY_TARGET,
                 seconds: float = 86_400.0) -> float:
    return core_s_per_star * stars / seconds


def compare(variant: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
    """Per-star ratios of a variant against Toil-chunked (they may differ in star count)."""
    return {
        # CPU of the whole tree per star: the comparison other load on the machine cannot skew.
        "tree_cpu_per_star_ratio": ((variant["tree_cpu_s"] / variant["stars"])
                                    / (base["tree_cpu_s"] / base["stars"])),
        "wall_per_star_ratio": variant["wall_per_star_s"] / base["wall_per_star_s"],
        "efficiency_ratio": variant["efficiency"] / base["efficiency"],
        "overhead_per_star_ratio": (variant["overhead_per_star_s"] / base["overhead_per_star_s"]
                                    if base["overhead_per_star_s"] else float("nan")),
    }


def summarise(doc: dict[str, Any]) -> None:
    """Top-level keys (the main Toil-chunked run) and derived figures."""
    t = doc["toil"]
    for k in ("efficiency", "overhead_per_star_s", "science_cpu_per_star_s", "peak_rss_mb",
              "wall_s", "cores", "stars", "toil_jobs", "jobstore_mb", "per_module_cpu_s",
              "science_cpu_s", "tree_cpu_s", "jobs_per_chunk", "overhead_per_job_s"):
        doc[k] = t.get(k)
    core_s = t["cores"] * t["wall_s"] / t["stars"]  # = science CPU per star / efficiency
    doc["cores_for_200k_stars_24h"] = cores_needed(core_s)
    doc["cores_for_200k_stars_24h_at_efficiency_1"] = cores_needed(t["science_cpu_per_star_s"])
    for key in ("cwltool", "naive", "airflow"):
        if isinstance(doc.get(key), dict) and "wall_s" in doc[key]:
            doc[key].update(compare(doc[key], t))
    doc["engines"] = engines_table(doc)


def engines_table(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Toil, cwltool and Airflow on the same chunks: wall, efficiency, overhead per task (the
    tool steps that ran: Airflow's successful tasks, the same steps in the CWL runs; Toil's
    CWLJob count where Airflow did not run) and the chain's per-task cost."""
    af = doc.get("airflow") if isinstance(doc.get("airflow"), dict) else {}
    chain = doc.get("chain") if isinstance(doc.get("chain"), dict) else {}
    rows = []
    for key, name in (("toil", "Toil (stellarflow_single_machine)"),
                      ("cwltool", "cwltool --parallel"), ("airflow", "Airflow 3 LocalExecutor")):
        r = doc.get(key)
        if not isinstance(r, dict) or "wall_s" not in r:
            continue
        tasks = r.get("tasks_run") or af.get("tasks_run")
        if not tasks and key == "toil":
            tasks = r.get("toil_stats", {}).get("by_class", {}).get("CWLJob")
        spare = r["cores"] * r["wall_s"] - r["science_cpu_s"]
        c = chain.get(key) if isinstance(chain.get(key), dict) else {}
        rows.append({"engine": name, "key": key, "stars": r["stars"], "wall_s": r["wall_s"],
                     "efficiency": r["efficiency"], "tasks": tasks,
                     "overhead_per_task_s": spare / tasks if tasks else None,
                     "chain_per_task_s": c.get("per_task_s"),
                     "start_s": r.get("start_s"), "tree_cpu_s": r["tree_cpu_s"],
                     "leader_peak_rss_mb": r.get("leader_peak_rss_mb")})
    return rows


def fmt_run(r: dict[str, Any]) -> list[str]:
    lines = [
        f"  runner            {r['runner']} {' '.join(r['runner_args'])}".rstrip(),
        f"  stars             {r['stars']} ({r['stars_ok']} ok, {r['stars_failed']} failed) in "
        f"{r['chunks']} chunks of {r['chunk_size']}",
        f"  wall              {r['wall_s']:.1f} s ({r['wall_per_star_s']:.2f} s/star)"
        + (f"; {r['before_first_step_s']:.1f} s before the first step, "
           f"{r['after_last_step_s']:.1f} s after the last" if "before_first_step_s" in r else ""),
        f"  science CPU       {r['science_cpu_s']:.1f} s "
        f"({r['science_cpu_per_star_s']:.2f} s/star)",
        f"  efficiency        {r['efficiency']:.3f}  = science CPU / ({r['cores']} cores x wall)",
        f"  overhead/star     {r['overhead_per_star_s']:.2f} s = (cores x wall - science CPU) / "
        "stars",
        f"  process-tree CPU  {r['tree_cpu_s']:.1f} s (science "
        f"{100 * (r['science_share_of_tree_cpu'] or 0):.0f} %); cores x wall not used by the "
        f"tree (idle or taken by other load) {100 * r['idle_share']:.0f} %",
        f"  peak RSS (tree)   {r['peak_rss_mb']:.0f} MB ({r['peak_processes']} processes at most); "
        f"leader {r.get('leader_peak_rss_mb', 0):.0f} MB",
        f"  written           {r.get('written_mb', 0):.0f} MB by the tree "
        f"({r.get('written_per_star_mb', 0):.2f} MB/star); outputs {r.get('outputs_mb', 0):.0f} MB "
        f"in {r.get('output_files', 0)} files ({r.get('files_per_star', 0):.2f} per star, "
        f"{r.get('figures', 0)} figures)",
    ]
    kinds = r.get("sampled_cpu_by_process_kind_s")
    if kinds:
        counts = r.get("processes_by_kind", {})
        lines.append("  CPU by process    " + ", ".join(
            f"{k} {v:.1f} s ({counts.get(k, 0)})" for k, v in kinds.items())
            + f"; unsampled {max(r['tree_cpu_s'] - sum(kinds.values()), 0.0):.1f} s")
    if "toil_jobs" in r:
        st = r["toil_stats"]
        classes = ", ".join(f"{k} {v}" for k, v in st["by_class"].items())
        lines += [
            f"  Toil jobs         {r['toil_jobs']} ({classes}); {r['jobs_per_chunk']:.1f} per "
            f"chunk; {r['overhead_per_job_s']:.2f} s overhead per job",
            f"  job store         peak {r.get('jobstore_peak_mb', 0):.1f} MB "
            f"({r.get('jobstore_peak_files', 0)} files, sampled every "
            f"{r.get('jobstore_interval_s', 5):g} s); "
            f"{r['jobstore_mb']:.1f} MB at the end",
        ]
    return lines


def text_report(doc: dict[str, Any]) -> str:
    p = doc["params"]
    la0, la1 = doc["loadavg_before"], doc["loadavg_after"]
    out = [
        f"stellarflow bench {doc['utc']} on {doc['host']['name']} ({doc['host']['cpus']} CPUs)",
        f"observation: {p['stars']} stars x {p['days']:g} d at {p['cadence_s']:g} s "
        f"(seed {p['seed']}{', reused' if doc['observation_reused'] else ''}); containers "
        f"{'on' if p['container'] else 'off'}",
        f"load average before {la0[0]:.2f} {la0[1]:.2f} {la0[2]:.2f}; after "
        f"{la1[0]:.2f} {la1[1]:.2f} {la1[2]:.2f} (others' load inflates wall time)",
        "",
        f"Toil, chunked (chunk size {doc['toil']['chunk_size']}"
        f"{', automatic' if p['chunk_size'] is None else ''}):",
        *fmt_run(doc["toil"]),
        "  science CPU per star by module:",
    ]
    for m, c in doc["toil"]["per_module_cpu_s"].items():
        out.append(f"    {m:26s} {c:7.3f} s")
    for key, title in (("cwltool", "cwltool --parallel"),
                       ("airflow", "Airflow 3 (LocalExecutor, SQLite; scripts/bench_airflow.py)"),
                       ("naive", "naive one-star-per-job (Toil, chunk size 1)")):
        v = doc.get(key)
        if not isinstance(v, dict):
            continue
        if "wall_s" not in v:
            what = ("skipped" if "skipped" in v else "FAILED" if "error" in v
                    else "not run yet (interrupted?)")
            why = v.get("skipped") or v.get("error")
            out += ["", f"{title}: {what}" + (f" ({why})" if why else "")]
            continue
        out += ["", f"{title}:", *fmt_run(v),
                f"  vs Toil-chunked   tree CPU/star x{v['tree_cpu_per_star_ratio']:.2f}, wall/star "
                f"x{v['wall_per_star_ratio']:.2f}, efficiency x{v['efficiency_ratio']:.2f} "
                f"(per star; {v['stars']} vs {doc['toil']['stars']} stars)"]
    eng = doc.get("engines") or []
    if eng:
        out += ["", "engines side by side (same chunks, same images; overhead per task = "
                "(cores x wall - science CPU) / tool steps run):"]
        for e in eng:
            per = (f"{e['overhead_per_task_s']:.2f} s/task ({e['tasks']} tasks)"
                   if e["overhead_per_task_s"] is not None else "n/a")
            chain = (f"; chain {e['chain_per_task_s']:.2f} s/task"
                     if e["chain_per_task_s"] is not None else "")
            start = f"; services start {e['start_s']:.0f} s" if e.get("start_s") else ""
            out.append(f"  {e['engine']:34s} wall {e['wall_s']:7.1f} s, efficiency "
                       f"{e['efficiency']:.3f}, overhead {per}{chain}{start}")
    ch = doc.get("chain")
    if isinstance(ch, dict) and "tasks" in ch:
        errs = {k: v["error"] for k, v in ch.items() if isinstance(v, dict) and "error" in v}
        if errs:
            out.append(f"  chain failures: {errs}")
    out += [
        "",
        f"cores needed for 200 000 stars in 24 h: {doc['cores_for_200k_stars_24h']:.0f} at the "
        f"measured efficiency ({doc['science_cpu_per_star_s']:.2f} s science CPU/star / "
        f"{doc['efficiency']:.3f}); {doc['cores_for_200k_stars_24h_at_efficiency_1']:.0f} at "
        "efficiency 1",
    ]
    prof = doc.get("profile")
    if isinstance(prof, dict) and prof:
        out += ["", "process start per module (python -X importtime ... --version):"]
        for m, r in prof.items():
            heavy = ", ".join(f"{k} {v:.2f}" for k, v in r["heaviest_imports_s"].items())
            cont = (f"; in its image {r['container_wall_s']:.2f} s"
                    if r.get("container_wall_s") is not None else "")
            out.append(f"  {m:26s} {r['venv_wall_s']:.2f} s wall, imports {r['import_s']:.2f} s "
                       f"({heavy}){cont}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------


def git_describe() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "cwl",
                                "containers", "jobstore_config"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__.splitlines()[0])
    p.add_argument("--stars", type=int, default=240, help="stars in the observation (240)")
    p.add_argument("--days", type=float, default=60.0, help="observation length, days (60)")
    p.add_argument("--cadence-s", type=float, default=25.0, help="cadence, seconds (25)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="stars per chunk for the chunked runs (default: what `stellarflow run` "
                        "chooses, automatic for the cores)")
    p.add_argument("--cores", type=int, default=2, help="cores Toil may use: --maxCores (2)")
    p.add_argument("--no-container", action="store_true", help="run steps in the venv")
    p.add_argument("--skip-cwltool", action="store_true", help="no cwltool --parallel run")
    p.add_argument("--skip-naive", action="store_true", help="no one-star-per-job run")
    p.add_argument("--skip-profile", action="store_true", help="no import/container-start profile")
    p.add_argument("--skip-airflow", action="store_true",
                   help="no Airflow run (its venv is built on first use: scripts/tool-venv)")
    p.add_argument("--skip-chain", action="store_true",
                   help="no chain of tiny tasks (per-task overhead of each engine)")
    p.add_argument("--chain-tasks", type=int, default=100,
                   help="tasks in the chain of tiny tasks (100)")
    p.add_argument("--naive-stars", type=int, default=24,
                   help="stars of the naive one-star-per-job run (first N; 24; 0 = all)")
    p.add_argument("--cwltool-stars", type=int, default=0,
                   help="stars of the cwltool run (first N; 0 = all, the default)")
    p.add_argument("--workdir", type=Path, default=REPO / "build" / "bench",
                   help="observation and run folders (build/bench)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON result (WORKDIR/latest.json); <utc>.json/.txt are kept beside it")
    p.add_argument("--keep", action="store_true", help="keep the Toil job stores")
    p.add_argument("--toil-arg", action="append", default=[], dest="toil_args",
                   help="extra toil-cwl-runner option for the Toil runs (repeatable), e.g. "
                        "--toil-arg=--bypass-file-store")
    p.add_argument("--interval", type=float, default=0.5,
                   help="process-tree sampling interval, s (0.5; each sample costs ~3 ms of CPU)")
    p.add_argument("--debug", action="store_true", help="tracebacks")
    args = p.parse_args(argv)
    problems = []
    for name in ("stars", "chunk_size", "cores"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be >= 1")
    if args.chain_tasks < 1:
        problems.append("--chain-tasks must be >= 1")
    if args.naive_stars < 0 or args.cwltool_stars < 0:
        problems.append("--naive-stars/--cwltool-stars must be >= 0")
    if problems:
        p.error("; ".join(problems))
    return args


def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    out = (args.out or workdir / "latest.json").resolve()
    container = not args.no_container
    utc = _dt.datetime.now(_dt.UTC)
    wrap_runner_argv()
    os.environ.update(sites.runner_path_env())  # as `make` does: podman wrapper, venv first
    manifest, reused = ensure_observation(workdir, args.stars, args.days, args.cadence_s)
    naive_n = args.stars if args.naive_stars == 0 else min(args.naive_stars, args.stars)
    cwl_n = args.stars if args.cwltool_stars == 0 else min(args.cwltool_stars, args.stars)
    doc: dict[str, Any] = {
        "utc": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "params": {"stars": args.stars, "days": args.days, "cadence_s": args.cadence_s,
                   "seed": SEED, "chunk_size": args.chunk_size, "cores": args.cores,
                   "container": container, "naive_stars": None if args.skip_naive else naive_n,
                   "cwltool_stars": None if args.skip_cwltool else cwl_n,
                   "airflow_stars": None if args.skip_airflow else cwl_n,
                   "chain_tasks": None if args.skip_chain else args.chain_tasks,
                   "rss_interval_s": args.interval, "toil_args": args.toil_args},
        "host": {"name": socket.gethostname(), "cpus": psutil.cpu_count(),
                 "mem_gb": psutil.virtual_memory().total / 2**30,
                 "python": platform.python_version()},
        "git": git_describe(),
        "observation": str(manifest),
        "observation_reused": reused,
        "loadavg_before": list(os.getloadavg()),
    }
    runs = workdir / "runs"
    common = {"cores": args.cores, "container": container, "keep": args.keep,
              "interval": args.interval, "toil_args": args.toil_args}
    stamp = utc.strftime("%Y%m%dT%H%M%SZ")
    doc["complete"] = False
    doc["cwltool"] = {"skipped": "--skip-cwltool"} if args.skip_cwltool else {"pending": True}
    doc["naive"] = {"skipped": "--skip-naive"} if args.skip_naive else {"pending": True}
    doc["airflow"] = {"skipped": "--skip-airflow"} if args.skip_airflow else {"pending": True}
    doc["chain"] = {"skipped": "--skip-chain"} if args.skip_chain else {"pending": True}

    def save(final: bool = False) -> str:
        """Written after every measured run, so that an interrupted bench keeps its figures."""
        doc["loadavg_after"] = list(os.getloadavg())
        doc["complete"] = final
        summarise(doc)
        text = text_report(doc)
        payload = json.dumps(doc, indent=1, default=float) + "\n"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(payload)
        (out.parent / f"{stamp}.json").write_text(payload)
        (out.parent / f"{stamp}.txt").write_text(text + "\n")
        return text

    print(f"bench: Toil chunked, {args.stars} stars ...", file=sys.stderr, flush=True)
    doc["toil"] = measure("toil", manifest, runs, runner="toil", chunk_size=args.chunk_size,
                          **common)
    save()
    if not args.skip_profile:
        print("bench: process start/import profile ...", file=sys.stderr, flush=True)
        doc["profile"] = import_profile(container)
        save()
    if not args.skip_naive:
        print(f"bench: naive one star per job, {naive_n} stars ...", file=sys.stderr, flush=True)
        doc["naive"] = measure_or_error("naive", subset_manifest(manifest, naive_n), runs,
                                        runner="toil", chunk_size=1, **common)
        save()
    if not args.skip_cwltool:
        print(f"bench: cwltool --parallel, {cwl_n} stars ...", file=sys.stderr, flush=True)
        doc["cwltool"] = measure_or_error("cwltool", subset_manifest(manifest, cwl_n), runs,
                                          runner="cwltool", chunk_size=args.chunk_size, **common)
        save()
    if not args.skip_airflow:
        print(f"bench: Airflow (LocalExecutor, SQLite), {cwl_n} stars ...", file=sys.stderr,
              flush=True)
        try:
            doc["airflow"] = measure_airflow(subset_manifest(manifest, cwl_n), runs,
                                             chunk_size=args.chunk_size, cores=args.cores,
                                             interval=args.interval)
        except (RunError, InputError) as exc:
            print(f"bench: airflow run failed: {exc}", file=sys.stderr)
            doc["airflow"] = {"error": str(exc)}
        save()
    if not args.skip_chain:
        engines = ("toil", "cwltool") + (() if args.skip_airflow else ("airflow",))
        doc["chain"] = measure_chains(args.chain_tasks, workdir, cores=args.cores,
                                      engines=engines)
    text = save(final=True)
    doc["_text"] = text
    return doc


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["--reap-exec", "--"]:
        return reap_exec(argv[2:])
    args = parse_args(argv)
    try:
        doc = bench(args)
    except (InputError, RunError) as exc:
        if args.debug:
            raise
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    print(doc["_text"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
