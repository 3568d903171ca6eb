"""The SAS pipeline on the real schedulers: a small generated observation through
`stellarflow run --site slurm` and `--site grid_engine` gives the same catalogue as `--site local`
(science columns equal), and every step ran as a Slurm job / an SGE job (their own records).

The three runs go concurrently (three different batch systems), so the test costs about one run.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from scheduler_support import cluster_up, qacct, slurm_jobs_in

from conftest import generate, runner_env

pytestmark = [pytest.mark.slurm, pytest.mark.sge]

# Everything except bookkeeping that legitimately differs between runs.
NOT_SCIENCE = {"cpu_s"}


def _run(manifest: Path, outdir: Path, site: str) -> subprocess.CompletedProcess:
    return subprocess.run(["stellarflow", "run", str(manifest), "--outdir", str(outdir),
                           "--site", site, "--no-container", "--json"], env=runner_env(),
                          capture_output=True, text=True, timeout=3000)


def _run_dir(outdir: Path) -> Path:
    (run,) = (outdir / ".stellarflow" / "runs").iterdir()
    return run


def test_small_observation_same_catalogue_on_slurm_and_grid_engine(tmp_path):
    cluster_up("slurm-cluster")
    cluster_up("sge-cluster")
    manifest = generate(tmp_path / "obs", "--stars", "4", "--days", "10", "--seed", "11",
                        "--observation-id", "sched4")
    sites = ["local", "slurm", "grid_engine"]
    with ThreadPoolExecutor(len(sites)) as pool:
        runs = dict(zip(sites, pool.map(lambda s: _run(manifest, tmp_path / s, s), sites),
                        strict=True))
    for site, p in runs.items():
        assert p.returncode == 0, f"{site}: {p.stderr[-3000:]}"

    from astropy.table import Table

    cats = {s: Table.read(tmp_path / s / "sched4" / "catalogue.ecsv", format="ascii.ecsv")
            for s in sites}
    ref = cats["local"]
    assert len(ref) == 4
    for site in ("slurm", "grid_engine"):
        cat = cats[site]
        assert cat.colnames == ref.colnames
        for col in ref.colnames:
            if col in NOT_SCIENCE:
                continue
            a, b = np.asarray(ref[col]), np.asarray(cat[col])
            if a.dtype.kind == "f":
                np.testing.assert_array_equal(a, b, err_msg=f"{site}: column {col}")
            else:
                assert list(a) == list(b), f"{site}: column {col}"

    # Scheduler evidence: the science steps were Slurm jobs / SGE jobs.
    slurm_run = _run_dir(tmp_path / "slurm")
    names = [j["Name"] for j in slurm_jobs_in(slurm_run)]
    for step in ("ingest", "msap1_preparation", "msap4_rotation", "transit_search",
                 "catalogue"):
        assert any(step in n for n in names), (step, names)
    assert all(j["JobState"] == "COMPLETED" for j in slurm_jobs_in(slurm_run))
    sge_log = (_run_dir(tmp_path / "grid_engine") / "toil.log").read_text(errors="replace")
    queued = re.findall(r"Job (\S+) with batch system ID \d+ queued as job (\d+)", sge_log)
    assert any("msap4_rotation" in name for name, _ in queued), queued
    for _, job_id in queued:
        rec = qacct(job_id)
        assert rec.get("exit_status") == "0", rec
