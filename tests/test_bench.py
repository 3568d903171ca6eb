"""scripts/bench.py: argument checks, observation reuse, arithmetic, and a tiny real run (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, runner_env

BENCH = REPO / "scripts" / "bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("stellarflow_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(BENCH), "--stars", "0", "--workdir", str(tmp_path)],
                       capture_output=True, text=True, env=runner_env())
    assert p.returncode == 2
    assert "--stars must be >= 1" in p.stderr.splitlines()[-1]
    assert not (tmp_path / "obs").exists()


def test_observation_is_reused_while_parameters_match(tmp_path: Path) -> None:
    bench = load_bench()
    manifest, reused = bench.ensure_observation(tmp_path, 2, 1.0, 60.0)
    assert not reused and manifest.is_file()
    params = json.loads((tmp_path / "obs.params.json").read_text())
    assert params["stars"] == 2 and params["seed"] == bench.SEED
    assert bench.ensure_observation(tmp_path, 2, 1.0, 60.0) == (manifest, True)
    _, reused = bench.ensure_observation(tmp_path, 3, 1.0, 60.0)
    assert not reused
    first = bench.subset_manifest(manifest, 1)
    assert first != manifest and first.parent == manifest.parent
    assert "star00001" not in first.read_text() and "star00000" in first.read_text()
    assert bench.subset_manifest(manifest, 99) == manifest


def test_derived_figures() -> None:
    bench = load_bench()
    # 8 s of core time per star: 200 000 stars in 86 400 s need 18.5 cores.
    assert bench.cores_needed(8.0) == pytest.approx(200_000 * 8.0 / 86_400)
    base = {"wall_per_star_s": 2.0, "efficiency": 0.8, "overhead_per_star_s": 1.0,
            "tree_cpu_s": 240.0, "stars": 240}
    naive = {"wall_per_star_s": 6.0, "efficiency": 0.2, "overhead_per_star_s": 10.0,
             "tree_cpu_s": 48.0, "stars": 12}
    r = bench.compare(naive, base)
    assert r == {"tree_cpu_per_star_ratio": 4.0, "wall_per_star_ratio": 3.0,
                 "efficiency_ratio": 0.25, "overhead_per_star_ratio": 10.0}


def test_step_span_from_the_step_profiles(tmp_path: Path) -> None:
    import datetime as dt

    bench = load_bench()
    lines = [{"step": "ingest", "start_utc": "2026-12-03T10:00:04.5Z",
              "end_utc": "2026-12-03T10:00:20Z"},
             {"step": "catalogue", "start_utc": "2026-12-03T10:01:00Z",
              "end_utc": "2026-12-03T10:01:01.25Z"}]
    (tmp_path / "profile.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    began = dt.datetime(2026, 12, 3, 10, 0, 0, tzinfo=dt.UTC)
    ended = dt.datetime(2026, 12, 3, 10, 1, 3, tzinfo=dt.UTC)
    assert bench.step_span(tmp_path, began, ended) == {"before_first_step_s": 4.5,
                                                       "after_last_step_s": 1.75}
    assert bench.step_span(tmp_path / "none", began, ended) == {}


@pytest.mark.slow
def test_tiny_benchmark_writes_the_figures(tmp_path: Path) -> None:
    out = tmp_path / "result" / "latest.json"
    p = subprocess.run([sys.executable, str(BENCH), "--stars", "4", "--days", "5",
                        "--chunk-size", "2", "--skip-naive", "--skip-cwltool", "--no-container",
                        "--skip-airflow", "--skip-chain",
                        "--skip-profile", "--workdir", str(tmp_path / "bench"), "--out", str(out)],
                       capture_output=True, text=True, env=runner_env(), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(out.read_text())
    for key in ("efficiency", "overhead_per_star_s", "science_cpu_per_star_s", "peak_rss_mb",
                "wall_s", "cores", "stars", "toil_jobs", "jobstore_mb", "per_module_cpu_s",
                "cwltool", "naive", "params", "loadavg_before", "loadavg_after",
                "cores_for_200k_stars_24h"):
        assert key in doc, key
    assert doc["stars"] == 4 and doc["cores"] == 2 and doc["params"]["days"] == 5
    assert 0 < doc["efficiency"] <= 1.0
    assert doc["toil_jobs"] > 2 * 6  # at least the six tools of each of the two chunks
    assert doc["peak_rss_mb"] > 0 and doc["jobstore_mb"] > 0
    toil = doc["toil"]
    assert 0 < toil["leader_peak_rss_mb"] <= toil["peak_rss_mb"]
    assert toil["jobstore_peak_mb"] >= toil["jobstore_mb"] > 0
    assert toil["output_files"] >= 2 * 4 + 2 and toil["figures"] == 4
    assert 0 < toil["before_first_step_s"] < toil["wall_s"]
    assert 0 < toil["after_last_step_s"] < toil["wall_s"]
    assert {"ingest", "msap1_preparation", "msap4_rotation", "transit_search",
            "star_products"} <= set(doc["per_module_cpu_s"])
    assert sum(doc["per_module_cpu_s"].values()) == pytest.approx(
        doc["science_cpu_per_star_s"], rel=1e-6)
    assert doc["cwltool"] == {"skipped": "--skip-cwltool"}
    # Every run is kept beside latest.json; the job store (kept by --stats) is cleaned.
    assert len(list(out.parent.glob("20*.json"))) == 1
    assert not list((tmp_path / "bench" / "runs").glob("toil/.stellarflow/runs/*/jobstore"))
    assert "efficiency" in p.stdout and "cores needed for 200 000 stars in 24 h" in p.stdout


def test_process_kinds() -> None:
    kind = load_bench().process_kind
    assert kind(["/opt/module/bin/python", "/opt/module/bin/msap4_rotation", "--outdir", "x"],
                "python") == "module processes"
    assert kind(["/v/bin/python3", "/v/bin/_toil_worker", "CWLJob", "file:js"],
                "_toil_worker") == "toil workers"
    assert kind(["/v/bin/python3", "/v/bin/toil-cwl-runner", "--config", "c"],
                "toil-cwl-runne") == "toil leader"
    assert kind(["/v/bin/python3", "-m", "stellarflow.toil_runner", "--config", "c"],
                "python3") == "toil leader"
    assert kind(["/usr/bin/conmon", "--api-version", "1"], "conmon") == "podman/conmon/crun"
    assert kind(["/usr/bin/podman", "run", "-i", "img", "python", "-m",
                 "ingest"], "podman") == "podman/conmon/crun"
    assert kind(["nodejs", "--eval", "x"], "nodejs") == "nodejs (CWL expressions)"
    assert kind(["python", "scripts/bench.py", "--reap-exec", "--", "cwltool"],
                "python") == "bench wrapper"
    assert kind(["/b/tools/airflow/bin/python3", "/b/tools/airflow/bin/airflow", "scheduler"],
                "airflow") == "airflow"


def test_tree_sampler_sees_descendants_their_cpu_and_execs(tmp_path: Path) -> None:
    """The sampler reads /proc once per process: grandchildren are in the tree, a process is
    classified again after an exec, and what is not a descendant is left out."""
    bench = load_bench()
    go = tmp_path / "go"
    nodejs = tmp_path / "nodejs"  # `sleep` under the name of the CWL expression engine
    shutil.copy("/bin/sleep", nodejs)
    # A child shell that burns a little CPU, then waits for `go`, then execs into "nodejs".
    script = (f"i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; "
              f"while [ ! -e {go} ]; do sleep 0.05; done; "
              f"exec {nodejs} 30")
    child = subprocess.Popen(["bash", "-c", f"bash -c '{script}' & wait"])
    # Another process's child (here init's, once its shell has exited) is not in the tree.
    outsider = int(subprocess.run(["bash", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"],
                                  capture_output=True, text=True, check=True).stdout)
    sampler = bench.TreeSampler()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sampler.sample()
            if sampler.peak_procs >= 3 and sum(c for _, c in sampler.cpu_seen.values()) > 0:
                break
        outsider_kids = bench.descendants(outsider, bench.proc_table())
        go.touch()
        for _ in range(100):
            sampler.sample()
            if "nodejs (CWL expressions)" in sampler.cpu_by_kind():
                break
            time.sleep(0.05)
    finally:
        child.kill()
        os.kill(outsider, signal.SIGKILL)
        subprocess.run(["pkill", "-f", str(tmp_path)], check=False)
    assert sampler.peak_procs >= 2  # the shell and its child shell (grandchild of the test)
    assert sampler.peak_rss > 0
    assert sum(cpu for _, cpu in sampler.cpu_seen.values()) > 0
    assert "nodejs (CWL expressions)" in sampler.cpu_by_kind()  # the exec was seen
    assert outsider_kids == []
    assert all(pid != outsider for pid, _ in sampler.cpu_seen)
    assert outsider in sampler.outside


def test_bench_start_reads_the_runner_log_marks() -> None:
    spec = importlib.util.spec_from_file_location("stellarflow_bench_start",
                                                  REPO / "scripts" / "bench_start.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    log = ("[2026-12-03T13:34:10+0000] [MainThread] [I] [toil.cwl.cwltoil] Creating root job\n"
           "[2026-12-03T13:34:23+0000] [MainThread] [I] [toil.cwl.cwltoil] Starting workflow\n")
    assert mod.find_marks(log) == {"loaded": True, "imported": True, "first_step": False}
    log += ("[2026-12-03T13:34:45+0000] [MainThread] [I] [toil.leader] Issued job 'CWLJob' "
            "sas_chunk.ingest.ingest kind-CWLJob/instance-y7knjxwq v1 with job batch system ID: 3")
    assert mod.find_marks(log)["first_step"]
