"""Several Slurm nodes on this machine (`scripts/slurm-cluster up --nodes 3`): each slurmd in its
own UTS namespace with its own hostname. Jobs spread over the nodes; (slow) the SAS runs across
them, and a node killed mid-run (its slurmd and its jobs' processes) costs the run nothing: Slurm
marks the node down, Toil retries what was lost, the catalogue equals a clean run's.

Each test here reshapes the cluster, so it runs alone among the Slurm tests (marker slurm_nodes)
and leaves the one-node cluster behind."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scheduler_support import (
    SCATTER,
    batch_ids_from_log,
    cluster_up,
    run_cwl,
    scatter_inputs,
    slurm_nodes_state,
)

from stellarflow import slurm_accounting

from conftest import REPO, containers_available, generate, runner_env

pytestmark = [pytest.mark.slurm, pytest.mark.slurm_nodes]
NODES = ["sf-node1", "sf-node2", "sf-node3"]
NOT_SCIENCE = {"cpu_s"}  # bookkeeping that legitimately differs between runs
CLUSTER = str(REPO / "scripts" / "slurm-cluster")


@pytest.fixture
def three_nodes() -> Iterator[str]:
    msg = cluster_up("slurm-cluster", "--nodes", "3")
    yield msg
    cluster_up("slurm-cluster")  # back to the one-node cluster the other tests expect


def test_jobs_spread_over_three_nodes(three_nodes, tmp_path):
    """Six scatter jobs: each writes the hostname it ran on, which is its node's name."""
    assert slurm_nodes_state() == {n: "idle" for n in NODES}
    run = run_cwl("slurm", tmp_path / "run", SCATTER, scatter_inputs(6))
    assert run.returncode == 0, run.stderr[-3000:]
    hosts = {line.split()[-1] for line in (run.outdir / "joined.txt").read_text().splitlines()}
    assert hosts == set(NODES), hosts
    steps = slurm_accounting.steps(slurm_accounting.run_rows(run.run_dir))
    assert sorted(s["job_id"] for s in steps) == sorted(batch_ids_from_log(run))
    assert {s["node"] for s in steps} == set(NODES)
    assert all(s["state"] == "COMPLETED" for s in steps), steps


@pytest.mark.slow
def test_sas_survives_losing_a_node(three_nodes, tmp_path):
    """A clean 3-node run, then the same observation with sf-node2 killed mid-run (slurmd and
    every process of its jobs, as when a machine dies): the run completes, sacct shows the lost
    job(s) NODE_FAIL on sf-node2, sinfo shows the node down, the catalogues agree."""
    if not containers_available():
        pytest.skip("podman or the stellarflow images are missing (make images)")
    manifest = generate(tmp_path / "obs", "--stars", "12", "--days", "10", "--seed", "3",
                        "--observation-id", "three-nodes")

    clean = _run(manifest, tmp_path / "clean")
    assert clean.wait(timeout=1800) == 0, _tail(clean)
    clean_steps = slurm_accounting.steps(slurm_accounting.run_rows(_run_dir(tmp_path / "clean")))
    assert {s["node"] for s in clean_steps} == set(NODES)
    assert all(s["state"] == "COMPLETED" for s in clean_steps)

    lossy = _run(manifest, tmp_path / "lossy")
    # Mid-run: a science step past ingest (MSAP*, transit search), on sf-node2 for 2 s already.
    victim = _wait_for_running_job(lossy, "sf-node2", ("msap", "transit"), min_seconds=2)
    kill = subprocess.run([CLUSTER, "kill-node", "sf-node2"], capture_output=True, text=True,
                          timeout=60)
    assert kill.returncode == 0, kill.stderr
    assert lossy.wait(timeout=1800) == 0, _tail(lossy)
    states = slurm_nodes_state()
    assert states["sf-node2"].startswith("down"), states

    steps = slurm_accounting.steps(slurm_accounting.run_rows(_run_dir(tmp_path / "lossy")))
    lost = [s for s in steps if s["state"] == "NODE_FAIL"]
    assert victim in [s["job_id"] for s in lost], (victim, lost)
    assert all(s["node"] == "sf-node2" for s in lost), lost
    # Every lost step ran again, elsewhere, to completion.
    done = {s["step"] for s in steps if s["state"] == "COMPLETED"}
    assert {s["step"] for s in lost} <= done
    assert "Exit reason: LOST" in (_run_dir(tmp_path / "lossy") / "toil.log").read_text()
    print("\nnodes after the run:", states)
    for name, run in (("clean", clean_steps), ("lost a node", steps)):
        print(f"{name}: {len(run)} Slurm jobs,", json.dumps(dict(Counter(
            f"{s['node']} {s['state']}" for s in run))))
    print("lost:", json.dumps([{k: s[k] for k in ("job_id", "step", "node", "state")}
                               for s in lost]))

    _same_science(tmp_path / "clean" / "three-nodes" / "catalogue.ecsv",
                  tmp_path / "lossy" / "three-nodes" / "catalogue.ecsv")


def _run(manifest: Path, outdir: Path) -> subprocess.Popen:
    outdir.mkdir(parents=True)
    with open(outdir / "stdout", "w") as out, open(outdir / "stderr", "w") as err:
        return subprocess.Popen(["stellarflow", "run", str(manifest), "--outdir", str(outdir),
                                 "--site", "slurm", "--chunk-size", "2", "--json"],
                                env=runner_env(), stdout=out, stderr=err)


def _tail(p: subprocess.Popen) -> str:
    outdir = Path(p.args[4])
    return (outdir / "stderr").read_text(errors="replace")[-3000:]


def _run_dir(outdir: Path) -> Path:
    (run,) = (outdir / ".stellarflow" / "runs").iterdir()
    return run


def _wait_for_running_job(proc: subprocess.Popen, node: str, tools: tuple[str, ...],
                          min_seconds: int) -> str:
    """The id of a job running a tool whose name starts with one of ``tools`` (the last part of
    Toil's job name) on ``node`` for ``min_seconds`` (its processes are there to kill)."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-w", node, "-o", "%i %M %j"],
                             capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            job, elapsed, name = line.split(maxsplit=2)
            if name.rsplit(".", 1)[-1].startswith(tools) and _seconds(elapsed) >= min_seconds:
                return job
        time.sleep(0.5)
    pytest.fail(f"no job ran on {node} (run exit code {proc.poll()})")


def _seconds(elapsed: str) -> int:
    parts = [int(x) for x in elapsed.replace("-", ":").split(":")]
    return sum(v * m for v, m in zip(reversed(parts), (1, 60, 3600, 86400), strict=False))


def _same_science(a_path: Path, b_path: Path) -> None:
    from astropy.table import Table

    a, b = Table.read(a_path, format="ascii.ecsv"), Table.read(b_path, format="ascii.ecsv")
    assert len(a) == 12 and a.colnames == b.colnames
    for col in a.colnames:
        if col in NOT_SCIENCE:
            continue
        x, y = np.asarray(a[col]), np.asarray(b[col])
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=f"column {col}")
        else:
            assert list(x) == list(y), f"column {col}"
