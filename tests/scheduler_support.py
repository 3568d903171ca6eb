"""Helpers for the scheduler tests (test_slurm.py, test_sge.py): start the local clusters, run a
workflow through a site profile exactly as `stellarflow run` does, read the schedulers' records."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from stellarflow import sites

from conftest import REPO, runner_env

SCATTER = REPO / "tests" / "data" / "scheduler" / "scatter.cwl"


def cluster_up(script: str, *args: str) -> str:
    """`scripts/<script> up [args]` (idempotent; parallel callers serialise on its lock). For
    Slurm, plain `up` is the one-node cluster (`localhost`); `"--nodes", "3"` three nodes."""
    path = REPO / "scripts" / script
    needed = {"slurm-cluster": "slurmctld", "sge-cluster": "sge_qmaster"}[script]
    if shutil.which(needed) is None and not Path(f"/usr/sbin/{needed}").exists():
        pytest.fail(f"{needed} not installed: run scripts/install-system (make install)")
    t0 = time.monotonic()
    p = subprocess.run([str(path), "up", *args], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        pytest.fail(f"{script} up failed: {p.stderr.strip()}")
    return f"{p.stderr.strip()} ({time.monotonic() - t0:.1f} s)"


@contextmanager
def slurm_shape_lock(exclusive: bool) -> Iterator[None]:
    """Tests on the local Slurm cluster share it (shared lock); a test that changes its shape
    (`up --nodes N`) holds the lock alone, so no other test finds its cluster reshaped."""
    path = REPO / "build" / "slurm-tests.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class SiteRun:
    run_dir: Path
    outdir: Path
    returncode: int
    wall_s: float
    stderr: str

    @property
    def log(self) -> str:
        p = self.run_dir / "toil.log"
        return p.read_text(errors="replace") if p.exists() else ""


def run_cwl(site: str, run_dir: Path, workflow: Path, inputs: list[str],
            extra: list[str] | None = None, timeout: float = 900,
            container: bool = False) -> SiteRun:
    """Run ``workflow`` through ``site`` like stellarflow.run does: the profile's invocation (and
    pilot wrapper), its environment, cwd = the run folder (shared storage), --no-container
    unless ``container``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    inv = sites.toil_invocation(site, jobstore=str(run_dir / "jobstore"),
                                workdir=run_dir / "work", container=container)
    argv = inv.command + ["--outdir", str(run_dir / "out"), "--logFile",
                          str(run_dir / "toil.log"), *(extra or []), str(workflow), *inputs]
    env = runner_env()
    env.update(sites.runner_path_env())
    env.update(inv.env)
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, cwd=run_dir, capture_output=True, text=True,
                       timeout=timeout)
    return SiteRun(run_dir, run_dir / "out", p.returncode, time.monotonic() - t0, p.stderr)


def scatter_inputs(n: int) -> list[str]:
    out: list[str] = []
    for i in range(n):
        out += ["--indices", str(i)]
    return out


def joined_indices(run: SiteRun) -> list[int]:
    text = (run.outdir / "joined.txt").read_text()
    return sorted(int(m) for m in re.findall(r"^index (\d+) host", text, re.M))


# --- Slurm's records -----------------------------------------------------------------------------


def slurm_jobcomp_path() -> Path:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    m = re.search(r"^JobCompLoc\s*=\s*(\S+)", out, re.M)
    assert m, "JobCompLoc not set: the cluster has no job completion log"
    return Path(m.group(1))


def slurm_jobs_in(run_dir: Path) -> list[dict[str, str]]:
    """Completed Slurm jobs whose working directory was ``run_dir`` (the job completion log)."""
    jobs = []
    for line in slurm_jobcomp_path().read_text(errors="replace").splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("WorkDir") == str(run_dir):
            jobs.append(fields)
    return jobs


def slurm_nodes_state() -> dict[str, str]:
    """Node name -> state as slurmctld sees it (`sinfo -N`)."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return dict(line.split() for line in sorted(set(out.splitlines())) if line.strip())


def sacct_completion(job_ids: list[str]) -> str:
    """`sacct -c` (reads the job completion log; full sacct needs slurmdbd)."""
    return subprocess.run(["sacct", "-c", "-j", ",".join(job_ids), "-o",
                           "jobid,jobname%40,state,exitcode"], capture_output=True, text=True,
                          timeout=30).stdout


# --- Grid Engine's records -----------------------------------------------------------------------


def batch_ids_from_log(run: SiteRun) -> list[str]:
    """Batch-system job ids Toil logged ("... queued as job N") for a run."""
    return re.findall(r"queued as job (\d+)", run.log)


def qacct(job_id: str) -> dict[str, str]:
    """The accounting record of one finished SGE job (`qacct -j ID`)."""
    p = subprocess.run(["qacct", "-j", job_id], capture_output=True, text=True, timeout=60)
    return dict(re.findall(r"^(\w+)\s+(.*?)\s*$", p.stdout, re.M))


def env_without(*names: str) -> dict[str, str]:
    env = dict(os.environ)
    for n in names:
        env.pop(n, None)
    return env
