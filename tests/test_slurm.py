"""Real Slurm (scripts/slurm-cluster, single node): workflows through --site slurm (one Slurm job
per Toil job) and --site slurm-pilot (one allocation), the accounting records (sacct through
slurmdbd) including a container's usage, the GPU routing on the sbatch line, and (slow) pilot vs
per-job on 100+ jobs, a job killed by its time limit, slurmd killed mid-run. Several nodes:
test_slurm_nodes.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from scheduler_support import (
    SCATTER,
    batch_ids_from_log,
    cluster_up,
    joined_indices,
    run_cwl,
    sacct_completion,
    scatter_inputs,
    slurm_jobs_in,
)

from stellarflow import sites, slurm_accounting

from conftest import REPO, containers_available, runner_env

pytestmark = pytest.mark.slurm
DATA = REPO / "tests" / "data" / "scheduler"


@pytest.fixture
def slurm_cluster() -> str:
    """Start the local cluster if it is not up (CI: `make test` needs nothing else). Per test: a
    test of test_slurm_nodes.py may have reshaped it in between (then this restores one node)."""
    return cluster_up("slurm-cluster")


def test_cluster_status(slurm_cluster):
    p = subprocess.run([str(REPO / "scripts" / "slurm-cluster"), "status"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "node localhost idle" in p.stdout or "node localhost mix" in p.stdout or \
        "node localhost alloc" in p.stdout
    assert "accounting: slurmdbd + MariaDB (sacct)" in p.stdout
    assert sites.slurm_problem() is None


def test_scatter_runs_as_slurm_jobs(slurm_cluster, tmp_path):
    """4 scatter jobs + the gather: each one a Slurm job, in the scheduler's own records."""
    run = run_cwl("slurm", tmp_path / "run", SCATTER, scatter_inputs(4))
    assert run.returncode == 0, run.stderr[-3000:]
    assert joined_indices(run) == [0, 1, 2, 3]
    jobs = slurm_jobs_in(run.run_dir)
    names = sorted(j["Name"] for j in jobs)
    assert len([n for n in names if n.endswith(".echo_one")]) == 4, names
    assert any(".gather." in n for n in names), names
    assert all(j["JobState"] == "COMPLETED" and j["ExitCode"] == "0:0" for j in jobs), jobs
    assert all(n.startswith("toil_job_") for n in names)
    # The same jobs through sacct (-c: the completion log; full accounting needs slurmdbd).
    ids = batch_ids_from_log(run)
    assert sorted(ids) == sorted(j["JobId"] for j in jobs)
    out = sacct_completion(ids)
    assert out.count("COMPLETED") >= len(ids), out
    # Real accounting (slurmdbd): request and usage of every job of the run.
    steps = slurm_accounting.steps(slurm_accounting.run_rows(run.run_dir))
    assert sorted(s["job_id"] for s in steps) == sorted(ids)
    for s in steps:
        assert s["state"] == "COMPLETED" and s["exit_code"] == "0:0", s
        assert s["node"] == "localhost" and s["req_cpus"] == 1, s
        assert s["req_mem_bytes"] == 256 * 2**20, s  # ramMin: 256 in the CWL
        assert s["time_limit_s"] == 2 * 3600, s  # slurmTime in jobstore_config/slurm.yaml
        # MaxRSS and bytes come from samples: a job this short may end before the first one.
        assert s["wall_s"] is not None and s["cpu_s"] is not None and s["cpu_s"] > 0, s
        assert s["toil_job"] is not None and s["name"] == f"toil_job_{s['toil_job']}_{s['step']}"
    assert sum(s["step"].endswith(".echo_one") for s in steps) == 4


def test_sub_workflow_intermediates_leave_the_job_store(slurm_cluster, tmp_path):
    """Toil's workers on Slurm (and its local jobs on the leader's host) do not load plugins:
    they apply toil_batch_system_cwl_intermediates because the workflow jobs it made name it.
    Each sub-workflow's intermediate file leaves the job store; what it returns stays."""
    gc = REPO / "tests" / "data" / "cwl_intermediates"
    run = run_cwl("slurm", tmp_path / "run", gc / "outer.cwl", [str(gc / "job.yml")],
                  extra=["--clean", "never"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.read_text() for p in run.outdir.glob("result.txt*")) == ["200000\n"] * 3
    stored = list((run.run_dir / "jobstore").rglob("intermediate.bin"))
    assert stored and sum(p.stat().st_size for p in stored) == 0  # tombstones only


def test_sacct_counts_the_container_of_a_step(slurm_cluster, tmp_path):
    """A step in its image burning 3 s of CPU with ~300 MB resident: sacct has both. podman
    detaches conmon (and the container under it) from the job; the podman wrapper keeps them in
    the job's process tree, else Slurm would see only the podman client (~0.3 s, ~40 MB)."""
    if not containers_available():
        pytest.skip("podman or the stellarflow images are missing (make images)")
    image = re.search(r"dockerPull:\s*(\S+)",
                      next((REPO / "cwl" / "tools").glob("ingest*.cwl")).read_text()).group(1)
    tool = tmp_path / "burn.cwl"
    tool.write_text(BURN_STEP.replace("IMAGE", image))
    run = run_cwl("slurm", tmp_path / "run", tool, [], container=True)
    assert run.returncode == 0, run.stderr[-3000:]
    (step,) = [s for s in slurm_accounting.steps(slurm_accounting.run_rows(run.run_dir))
               if s["step"].endswith("burn_step")]
    assert step["state"] == "COMPLETED", step
    assert step["cpu_s"] >= 2.5, step
    assert step["max_rss_bytes"] >= 250 * 2**20, step


BURN_STEP = """cwlVersion: v1.2
class: CommandLineTool
id: burn_step
requirements:
  DockerRequirement: {dockerPull: IMAGE}
  ResourceRequirement: {coresMin: 1, ramMin: 1024}
baseCommand: [python, -c]
arguments:
  - |
    import time
    block = b"x" * (300 << 20)
    t = time.process_time()
    while time.process_time() - t < 3:
        pass
    print(len(block))
inputs: []
outputs: []
"""


def test_pilot_runs_everything_in_one_allocation(slurm_cluster, tmp_path):
    run = run_cwl("slurm-pilot", tmp_path / "run", SCATTER, scatter_inputs(4))
    assert run.returncode == 0, run.stderr[-3000:]
    assert joined_indices(run) == [0, 1, 2, 3]
    jobs = slurm_jobs_in(run.run_dir)
    assert [j["Name"] for j in jobs] == ["stellarflow-pilot"], jobs
    assert jobs[0]["JobState"] == "COMPLETED" and jobs[0]["ProcCnt"] == "2"
    assert "pilot: Slurm job" in run.stderr
    # Toil ran single_machine inside it: no job of its own went to Slurm.
    assert batch_ids_from_log(run) == []
    # Accounting finds the pilot by its working directory (the run folder).
    (pilot,) = slurm_accounting.steps(slurm_accounting.run_rows(run.run_dir))
    assert pilot["name"] == "stellarflow-pilot" and pilot["state"] == "COMPLETED", pilot
    assert pilot["req_cpus"] == 2 and pilot["req_mem_bytes"] == 8 * 2**30, pilot


def test_pilot_failure_exit_code_comes_back(slurm_cluster, tmp_path):
    p = subprocess.run(["python", "-m", "stellarflow.pilot", "--chdir", str(tmp_path),
                        "--time=2", "--", "sh", "-c", "echo out; echo oops >&2; exit 3"],
                       env=runner_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 3
    assert p.stdout == "out\n" and "oops" in p.stderr


def test_gpu_step_sbatch_line_carries_gres(slurm_cluster, tmp_path):
    """A CUDARequirement step goes to the profile's GPU partition with --gres=gpu:1. This cluster
    has no GPU, so Slurm refuses the submission: the refused sbatch line is the evidence."""
    inv = sites.toil_invocation("slurm", jobstore=str(tmp_path / "js"), workdir=tmp_path / "w",
                                container=False)
    env = runner_env()
    env.update(sites.runner_path_env())
    env.update(inv.env)
    proc = subprocess.Popen(inv.command + [str(DATA / "gpu_step.cwl")], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    line, deadline = "", time.monotonic() + 240
    try:
        assert proc.stderr is not None
        for text in proc.stderr:
            if "'sbatch'" in text and "gpu_step" in text:
                line = text
                break
            if time.monotonic() > deadline:
                break
    finally:
        # Toil keeps retrying the refused submission (and ignores SIGTERM while it waits).
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "'--gres=gpu:1'" in line and "'--partition=gpu'" in line, line


# --- slow: pilot vs per-job, failures -----------------------------------------------------------


@pytest.mark.slow
def test_pilot_vs_per_job_on_100_jobs(slurm_cluster, tmp_path):
    n = 100
    per_job = run_cwl("slurm", tmp_path / "per-job", SCATTER, scatter_inputs(n), timeout=3600)
    assert per_job.returncode == 0, per_job.stderr[-3000:]
    pilot = run_cwl("slurm-pilot", tmp_path / "pilot", SCATTER, scatter_inputs(n), timeout=3600)
    assert pilot.returncode == 0, pilot.stderr[-3000:]
    assert joined_indices(per_job) == joined_indices(pilot) == list(range(n))
    slurm_jobs = slurm_jobs_in(per_job.run_dir)
    assert len(slurm_jobs) == n + 1
    assert [j["Name"] for j in slurm_jobs_in(pilot.run_dir)] == ["stellarflow-pilot"]
    figures = {"jobs": n + 1, "per_job_wall_s": round(per_job.wall_s, 1),
               "pilot_wall_s": round(pilot.wall_s, 1),
               "per_job_s_per_job": round(per_job.wall_s / (n + 1), 2),
               "pilot_s_per_job": round(pilot.wall_s / (n + 1), 2),
               "slurm_jobs_per_job_mode": len(slurm_jobs), "slurm_jobs_pilot_mode": 1}
    out = REPO / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pilot_vs_per_job.json").write_text(json.dumps(figures, indent=1))
    print("pilot vs per-job:", json.dumps(figures))


@pytest.mark.slow
def test_job_killed_by_time_limit_is_retried_then_reported(slurm_cluster, tmp_path):
    """A 1-minute Slurm time limit, a step sleeping 5 min: Slurm signals the job 30 s before the
    limit (Toil's --signal=B:USR2@30), Toil records TIMELIMIT, retries (retryCount 1: two Slurm
    jobs), then fails the run naming the step, with the step's stderr in the log."""
    run = run_cwl("slurm", tmp_path / "run", DATA / "sleep_step.cwl", ["--seconds", "300"],
                  extra=["--slurmTime", "0:1:00", "--retryCount", "1"], timeout=1200)
    assert run.returncode != 0
    attempts = [j for j in slurm_jobs_in(run.run_dir) if "sleepy_step" in j["Name"]]
    assert len(attempts) == 2, attempts
    assert all(j["JobState"] in ("TIMEOUT", "FAILED", "CANCELLED") for j in attempts), attempts
    assert all(j["TimeLimit"] == "1" for j in attempts), attempts
    assert run.log.count("Exit reason: TIMELIMIT") == 2
    assert "Failed jobs at end of the run: 'CWLJob' sleepy_step" in run.log
    assert "sleepy_step starting, will sleep 300 s" in run.log  # the step's stderr tail
    summary = sites.failure_summary(run.run_dir / "toil.log") or ""
    assert summary.startswith("step sleepy_step failed; ended by the batch system: TIMELIMIT x2")
    assert "stderr: sleepy_step starting" in summary


@pytest.mark.slow
def test_run_survives_slurmd_restart(slurm_cluster, tmp_path):
    """Kill slurmd while jobs run, start it again: running steps finish, the run completes."""
    pidfile = REPO / "build" / "slurm" / "run" / "slurmd.pid"
    inv_dir = tmp_path / "run"
    env = runner_env()
    env.update(sites.runner_path_env())
    inv = sites.toil_invocation("slurm", jobstore=str(inv_dir / "jobstore"),
                                workdir=inv_dir / "work", container=False)
    inv_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(inv.command + ["--outdir", str(inv_dir / "out"), "--logFile",
                                           str(inv_dir / "toil.log"), str(SCATTER),
                                           *scatter_inputs(8)],
                            cwd=inv_dir, env={**env, **inv.env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "queued as job" not in _read(inv_dir / "toil.log"):
        time.sleep(1)
    if not pidfile.exists():
        proc.kill()
        pytest.skip("slurmd was not started by this checkout's scripts/slurm-cluster")
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    time.sleep(5)
    cluster_up("slurm-cluster")  # restarts slurmd
    assert proc.wait(timeout=1200) == 0, _read(inv_dir / "toil.log")[-3000:]
    assert sorted(int(x.split()[1]) for x in (inv_dir / "out" / "joined.txt").read_text()
                  .splitlines()) == list(range(8))


def _read(p: Path) -> str:
    return p.read_text(errors="replace") if p.exists() else ""
