"""The scaling bench, the Airflow side of the bench and the sizing: their arithmetic, plans and
argument checks (the runs themselves are the lead's measurements; one Airflow run is slow)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, runner_env


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"sf_{name}", REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_sizes_are_parsed_and_bad_ones_are_one_line(tmp_path: Path) -> None:
    bs = load("bench_scale")
    assert bs.parse_sizes("240x60, 2400x10") == [(240, 60.0), (2400, 10.0)]
    for bad in ("240", "0x5", "10xfoo", "5x2000"):
        with pytest.raises(ValueError, match="size"):
            bs.parse_sizes(bad)
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_scale.py"), "--sizes",
                        "12", "--workdir", str(tmp_path)], capture_output=True, text=True,
                       env=runner_env())
    assert p.returncode == 2 and "is not STARSxDAYS" in p.stderr.splitlines()[-1]
    assert not list(tmp_path.iterdir())


def test_scale_report_from_a_json(tmp_path: Path) -> None:
    bs = load("bench_scale")
    run = {"stars": 240, "days": 60, "chunks": 2, "chunk_size": 120, "wall_s": 400.0,
           "efficiency": 0.9, "overhead_per_star_s": 0.3, "leader_peak_rss_mb": 300.0,
           "peak_rss_mb": 1400.0, "jobstore_peak_mb": 900.0, "outputs_mb": 500.0,
           "inputs_mb": 300.0, "written_per_star_mb": 6.0, "outputs_per_star_mb": 2.1,
           "files_per_star": 2.01}
    run.update(bs.derive(run))
    assert run["jobstore_target_mb"] == 650.0 and run["jobstore_peak_over_target"] == 900 / 650
    doc = {"utc": "t", "host": "h", "git": "g", "params": {"cores": 2},
           "loadavg_before": [0.1, 0.2, 0.3], "sizes": {"240x60": run,
                                                        "2400x10": {"error": "boom"}}}
    out = tmp_path / "scale.json"
    out.write_text(json.dumps(doc))
    png = tmp_path / "scale.png"
    assert bs.main(["--report-only", "--out", str(out), "--plot", str(png)]) == 0
    md = out.with_suffix(".md").read_text()
    assert "| 240 x 60 d | 2 x 120 | 400 s | 0.900 |" in md and "900 MB (650 MB)" in md
    assert "| 2400x10 | boom |" in md and png.stat().st_size > 10_000


def test_airflow_plan_mirrors_the_chunk_workflow(tmp_path: Path) -> None:
    ba = load("bench_airflow")
    assert ba.chunk_spans(5, 2) == [("chunk-0000", 0, 2), ("chunk-0001", 2, 4),
                                    ("chunk-0002", 4, 5)]
    lc = tmp_path / "obs" / "lightcurves"
    stars = [{"star_id": f"s{i}", "lightcurve": {"class": "File",
                                                 "location": (lc / f"s{i}.h5").as_uri()}}
             for i in range(3)] + [{"star_id": "bad", "input_error": "x: not found"}]
    images = {m: f"img/{m}:1" for m in (*ba.MODULES, "catalogue")}
    plan = ba.sas_plan({"observation_id": "o", "chunk_size": 2, "stars": stars}, images,
                       tmp_path / "work", tmp_path / "out", figures="notable")
    ids = [t["task_id"] for t in plan["tasks"]]
    assert len(ids) == 2 * 7 + 1 and ids[-1] == "catalogue"
    tasks = {t["task_id"]: t for t in plan["tasks"]}
    seis = tasks["chunk-0000.msap3_seismology"]
    assert "exit 99" in seis["bash_command"] and "img/msap3_seismology:1" in seis["bash_command"]
    assert tasks["chunk-0000.msap5_stellar_parameters"]["trigger_rule"] == "none_failed"
    assert set(tasks["chunk-0001.star_products"]["upstream"]) == {
        "chunk-0001.transit_search", "chunk-0001.msap4_rotation", "chunk-0001.msap3_seismology"}
    assert "--figures notable" in tasks["chunk-0001.star_products"]["bash_command"]
    assert f"--volume={lc}:{lc}:ro" in tasks["chunk-0000.ingest"]["bash_command"]
    assert "--chunk-file" in tasks["chunk-0000.ingest"]["bash_command"]
    chunk = json.loads((tmp_path / "work" / "chunk-0001" / "chunk.json").read_text())
    assert [s["star_id"] for s in chunk["stars"]] == ["s2", "bad"]
    assert chunk["stars"][0]["lightcurve"]["path"] == str(lc / "s2.h5")
    assert len(tasks["catalogue"]["upstream"]) == 2
    chain = ba.chain_plan(3)
    assert [t["upstream"] for t in chain["tasks"]] == [[], ["t000"], ["t001"]]


def test_chain_workflow_is_valid_cwl(tmp_path: Path) -> None:
    ba = load("bench_airflow")
    cwl = ba.chain_cwl(5, tmp_path / "chain.cwl")
    p = subprocess.run(["cwltool", "--validate", str(cwl)], capture_output=True, text=True,
                       env=runner_env())
    assert p.returncode == 0, p.stderr[-800:]
    assert len(json.loads(cwl.read_text())["steps"]) == 5


def test_sizing_arithmetic(tmp_path: Path) -> None:
    sz = load("sizing")
    scale = {"params": {"cadence_s": 25.0}, "sizes": {
        "a": {"stars": 100, "days": 10, "wall_s": 1, "efficiency": 0.9,
              "science_cpu_per_star_s": 1.0, "per_module_cpu_s": {"transit_search": 1.0},
              "jobstore_peak_mb": 100.0, "outputs_per_star_mb": 0.5},
        "b": {"stars": 1000, "days": 20, "wall_s": 1, "efficiency": 0.8,
              "science_cpu_per_star_s": 4.0, "per_module_cpu_s": {"transit_search": 4.0},
              "jobstore_peak_mb": 2000.0, "outputs_per_star_mb": 1.0, "inputs_mb": 600.0}}}
    f = tmp_path / "scale.json"
    f.write_text(json.dumps(scale))
    out = tmp_path / "sizing.json"
    assert sz.main(["--bench", str(f), "--days", "40", "--stars", "100000", "--hours", "1",
                    "--per-job-s", "0", "--node-start-s", "0", "--run-start-s", "0",
                    "--cores-per-node", "1", "--in-flight", "cores",
                    "--out", str(out)]) == 0
    s = json.loads(out.read_text())
    # CPU ~ samples^2 through (10 d, 1 s) and (20 d, 4 s): 16 s at 40 d; efficiency of the
    # largest run (0.8): 100 000 x 16 / 0.8 core-s in one hour.
    assert s["cpu_per_star_s"] == pytest.approx(16.0)
    assert s["cores"] == int(-(-100_000 * 16 / 0.8 // 3600))
    # Job store at 20 d: 2 MB per star at the peak, 1 MB of it outputs; x2 at 40 d. A run keeps
    # its outputs, and the intermediates of the chunks in flight (one per core it has).
    assert s["outputs_per_star_mb"] == pytest.approx(2.0)
    assert s["intermediates_per_star_mb"] == pytest.approx(2.0)
    runs, in_flight = s["concurrent_runs"], s["stars_in_flight_per_run"]
    assert in_flight == min(10_000, -(-s["cores"] // runs) * 50) < 10_000
    assert s["jobstore_peak_gb"] == pytest.approx(runs * (10_000 * 2.0 + in_flight * 2.0) / 1024)
    # The budget: outputs + half the inputs (0.6 MB per star at 20 d, 1.2 at 40 d).
    assert s["inputs_per_star_mb"] == pytest.approx(1.2)
    assert s["jobstore_budget_gb"] == pytest.approx(runs * 10_000 * (2.0 + 0.6) / 1024)
    assert sz.main(["--bench", str(f), "--days", "40", "--stars", "100000", "--hours", "1",
                    "--per-job-s", "0", "--node-start-s", "0", "--run-start-s", "0",
                    "--cores-per-node", "1",
                    "--keep-intermediates", "--out", str(out)]) == 0
    kept = json.loads(out.read_text())
    assert kept["stars_in_flight_per_run"] == 10_000
    assert kept["jobstore_peak_gb"] == pytest.approx(runs * 10_000 * 4.0 / 1024)
    # On a scheduler (the default) every chunk of a run is in flight.
    assert sz.main(["--bench", str(f), "--days", "40", "--stars", "100000", "--hours", "1",
                    "--per-job-s", "0", "--node-start-s", "0", "--run-start-s", "0",
                    "--cores-per-node", "1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["jobstore_peak_gb"] == kept["jobstore_peak_gb"]
    assert "EXTRAPOLATED" in s["sources"]["cpu_per_star"]
    # Each run's start (10 runs of 10 000 stars) keeps the cores its 200 chunks use waiting.
    assert sz.main(["--bench", str(f), "--days", "40", "--stars", "100000", "--hours", "1",
                    "--per-job-s", "0", "--node-start-s", "0", "--run-start-s", "36",
                    "--cores-per-node", "1", "--out", str(out)]) == 0
    started = json.loads(out.read_text())
    waited = 10 * 36 * min(started["cores"], 200) / 3600
    assert started["run_start_core_h"] == pytest.approx(waited)
    assert started["cores"] == int(-(-(100_000 * 16 / 0.8 / 3600 + waited) // 1))
    assert sz.main(["--bench", str(tmp_path / "none.json"), "--out", str(out)]) == 1


@pytest.mark.slow
def test_airflow_runs_a_chain_of_tiny_tasks(tmp_path: Path) -> None:
    """Builds Airflow's venv (minutes, once) and runs 3 chained tasks under the LocalExecutor."""
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_airflow.py"), "chain",
                        "--tasks", "3", "--home", str(tmp_path / "home")], capture_output=True,
                       text=True, env=runner_env(), timeout=1800)
    assert p.returncode == 0, p.stderr[-2000:]
    rec = json.loads(p.stdout)
    assert rec["task_states"] == {"success": 3} and rec["wall_s"] > 0
