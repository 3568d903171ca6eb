"""Real Grid Engine (scripts/sge-cluster, SGE 8.1.9 single-node cell): a workflow through
--site grid_engine, which works only with the DataBiosphere/toil#5577 plugin; qacct evidence."""

from __future__ import annotations

import subprocess

import pytest
from scheduler_support import (
    SCATTER,
    batch_ids_from_log,
    cluster_up,
    joined_indices,
    qacct,
    run_cwl,
    scatter_inputs,
)

from stellarflow import sites

from conftest import REPO, runner_env

pytestmark = pytest.mark.sge


@pytest.fixture(scope="session")
def sge_cell() -> str:
    """Start the local cell if it is not up (CI: `make test` needs nothing else)."""
    return cluster_up("sge-cluster")


def test_cell_status_and_settings(sge_cell):
    p = subprocess.run([str(REPO / "scripts" / "sge-cluster"), "status"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert sites.grid_engine_problem() is None
    conf = subprocess.run(["qconf", "-sconf"], capture_output=True, text=True, check=True).stdout
    conf = conf.replace("\\\n", "")
    assert "accounting_flush_time=00:00:00" in conf
    assert "login_shells" in conf and "none" in conf.split("login_shells", 1)[1].split("\n")[0]
    pe = subprocess.run(["qconf", "-sp", "smp"], capture_output=True, text=True, check=True).stdout
    assert "$pe_slots" in pe


def test_scatter_runs_as_sge_jobs(sge_cell, tmp_path):
    """4 scatter jobs + the gather, each an SGE job with exit status 0 in qacct."""
    run = run_cwl("grid_engine", tmp_path / "run", SCATTER, scatter_inputs(4))
    assert run.returncode == 0, run.stderr[-3000:] + run.log[-3000:]
    assert joined_indices(run) == [0, 1, 2, 3]
    ids = batch_ids_from_log(run)
    assert len(ids) == 5, ids
    for job_id in ids:
        rec = qacct(job_id)
        assert rec.get("jobname", "").startswith("toil_job_"), rec
        assert rec.get("exit_status") == "0" and rec.get("failed") == "0", rec
        assert "h_vmem" in rec.get("category", "")  # Toil's memory request, a hard limit here


def test_multicore_step_uses_the_parallel_environment(sge_cell, tmp_path):
    """A step asking for 2 cores goes through TOIL_GRIDENGINE_PE (smp, $pe_slots)."""
    wf = tmp_path / "two_cores.cwl"
    wf.write_text("cwlVersion: v1.2\nclass: CommandLineTool\nrequirements:\n"
                  "  ResourceRequirement: {coresMin: 2, ramMin: 256}\n"
                  "baseCommand: [echo, two]\ninputs: []\noutputs: {out: stdout}\n")
    run = run_cwl("grid_engine", tmp_path / "run", wf, [])
    assert run.returncode == 0, run.stderr[-3000:] + run.log[-3000:]
    (job_id,) = batch_ids_from_log(run)
    rec = qacct(job_id)
    assert rec.get("granted_pe") == "smp" and rec.get("slots") == "2", rec


def test_without_the_plugin_toil_9_6_fails_to_submit(sge_cell, tmp_path):
    """The bug the plugin fixes, on the real cell: with the fix turned off
    (STELLARFLOW_TOIL5577=off) every submission fails."""
    inv = sites.toil_invocation("grid_engine", jobstore=str(tmp_path / "js"),
                                workdir=tmp_path / "w", container=False)
    env = runner_env()
    env.update(inv.env)
    env["STELLARFLOW_TOIL5577"] = "off"
    proc = subprocess.Popen(inv.command + [str(SCATTER), *scatter_inputs(1)], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    seen = ""
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "prepareSubmission()" in line:
                seen = line
                break
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "positional arguments but 9 were given" in seen, seen
