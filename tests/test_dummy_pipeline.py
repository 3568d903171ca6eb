"""Dummy Pipeline: fake modules, their generated CWL, the Euclid example, validate-site.

The default run checks the parts in-process (seconds) and runs validate-site once under the
local profile with a smaller fan-out and one feature broken on purpose: every other feature
must PASS (GPU: SKIP here) and the broken one must FAIL with a useful reason. The full suite
(200-job fan-out, exit 0) is marked slow; Slurm and the container image have their own markers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from fake_module import dummy as fake_module
from fake_module import euclid

from stellarflow_contracts.errors import InputError
from stellarflow_dummy import IMAGE, checks, euclid_inputs, generate, spec
from stellarflow_dummy.validate import FEATURES, failure_reason, gpu_status

REPO = Path(__file__).resolve().parents[1]
DP = REPO / "dummy_pipeline"
VENV_BIN = Path(sys.executable).parent


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = os.pathsep.join([str(REPO / "scripts" / "bin"), str(VENV_BIN), e["PATH"]])
    return e


def validate_site(tmp: Path, *args: str, timeout: int = 1800) -> tuple[int, dict, str]:
    r = subprocess.run([str(VENV_BIN / "stellarflow"), "validate-site", "--outdir", str(tmp),
                        "--quiet", *args], capture_output=True, text=True, env=env(),
                       timeout=timeout, cwd=tmp)
    reports = sorted(tmp.glob("*.json"))
    assert reports, f"no report written:\n{r.stdout}\n{r.stderr}"
    return r.returncode, json.loads(reports[-1].read_text()), r.stdout


def by_feature(report: dict) -> dict[str, dict]:
    return {f["feature"]: f for f in report["features"]}


# ---- declarations and generated CWL -------------------------------------------------------

def test_generated_tools_are_up_to_date() -> None:
    assert generate.generate(check=True) == [], "run: python -m stellarflow_dummy.generate"


def test_every_declaration_has_a_tool_and_back() -> None:
    names = {s["name"] for s in spec.load_all()}
    tools = {p.stem.removeprefix("fake_") for p in (DP / "cwl" / "tools").glob("fake_*.cwl")}
    assert names == tools


def test_bad_declaration_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\nversion: '0.1'\ndoc: x\noutputs:\n  - {name: out, file: x.txt}\n")
    with pytest.raises(InputError) as exc:
        spec.load(bad)
    msg = str(exc.value)
    assert msg.startswith(str(bad)) and "outputs/0/file" in msg and "\n" not in msg


def test_an_institute_registers_a_module_before_its_code_exists(tmp_path: Path) -> None:
    decl = {"name": "msap2_activity", "version": "0.0.1", "doc": "activity indexes, to come",
            "inputs": [{"name": "prepared", "datasets": ["/data/flux"]}],
            "outputs": [{"name": "activity", "file": "activity.h5",
                         "datasets": {"/activity/sph": {"dtype": "float64", "shape": [4]}},
                         "attributes": {"stage": "activity"}}],
            "resources": {"cores": 2, "ram_mb": 1024, "walltime_s": 120}}
    tool = generate.tool(spec.normalise(decl))
    assert tool["hints"]["DockerRequirement"]["dockerPull"] == IMAGE
    assert tool["inputs"]["prepared"]["type"] == "File"
    assert tool["inputs"]["cores"]["default"] == 2
    assert tool["requirements"]["ToolTimeLimit"]["timelimit"] == "$(inputs.walltime_s)"
    assert tool["outputs"]["activity"]["outputBinding"]["glob"] == "activity.h5"


def test_all_dummy_pipeline_cwl_validates() -> None:
    from cwltool.main import main as cwltool_main

    files = sorted((DP / "features").glob("*.cwl")) + [DP / "cwl" / "euclid.cwl"]
    bad = []
    for f in files:
        rc = cwltool_main(["--quiet", "--enable-ext", "--validate", str(f)],
                          stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
        if rc != 0:
            bad.append(f.name)
    assert not bad, f"invalid CWL: {bad}"


# ---- the fake-module program --------------------------------------------------------------

def spec_file(name: str) -> str:
    return str(DP / "modules" / f"{name}.yaml")


def run_fake(cwd: Path, *argv: str) -> tuple[int, str]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = fake_module.main(list(argv))
        return rc, err.getvalue()
    finally:
        os.chdir(old)


def test_fake_modules_chain_records_lineage_and_load(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    assert run_fake(a, "--spec", spec_file("producer"), "--index", "7", "--label", "first")[0] == 0
    rc, _ = run_fake(b, "--spec", spec_file("transform"), "--in-upstream", str(a / "product.h5"),
                     "--io-mb", "2", "--tmpdir", str(tmp_path), "--memory-mb", "20",
                     "--cpu-seconds", "0.2")
    assert rc == 0
    rc, _ = run_fake(c, "--spec", spec_file("indexed_writer"), "--in-upstream",
                     str(b / "product.h5"))
    assert rc == 0
    recs = checks.records(c / "indexed.h5")
    assert [r["module"] for r in recs] == ["producer", "transform", "indexed_writer"]
    first, mid, last = recs
    assert first["param_index"] == 7 and first["inputs"] == []
    assert mid["io_mb"] == 2 and mid["io_verified"] == 1 and mid["cpu_s_burned"] >= 0.2
    assert mid["max_rss_mb"] >= 20
    assert mid["inputs"] == [("upstream", "product.h5", fake_module.sha256(a / "product.h5"))]
    assert last["start_utc"] >= mid["end_utc"]
    for key in ("host", "module_version", "image", "start_utc", "end_utc"):
        assert last[key]
    with h5py.File(c / "indexed.h5") as f:
        assert f["/data/flux"].shape == (256,) and f.attrs["product_type"] == "fake_indexed"
    side = (c / "indexed.h5.sha256").read_text().split()[0]
    assert side == fake_module.sha256(c / "indexed.h5")


def test_fake_module_fails_first_attempts_then_passes(tmp_path: Path) -> None:
    run_fake(tmp_path, "--spec", spec_file("producer"))
    args = ("--spec", spec_file("flaky_transform"), "--in-upstream", str(tmp_path / "product.h5"),
            "--fail-first-n-attempts", "2", "--attempt-dir", str(tmp_path / "att"),
            "--outdir", str(tmp_path / "o"))
    assert run_fake(tmp_path, *args) == (1, "fake_module: failing attempt 1 of the first 2 on "
                                            "purpose (--fail-first-n-attempts)\n")
    assert run_fake(tmp_path, *args)[0] == 1
    assert run_fake(tmp_path, *args)[0] == 0
    assert checks.records(tmp_path / "o" / "product.h5")[-1]["attempt"] == 3


def test_fake_module_bad_inputs_are_one_line(tmp_path: Path) -> None:
    h = tmp_path / "empty.h5"
    with h5py.File(h, "w") as f:
        f["x"] = np.zeros(2)
    rc, err = run_fake(tmp_path, "--spec", spec_file("transform"), "--in-upstream", str(h))
    assert rc == 1 and err.count("\n") == 1
    assert f"{h}: missing dataset(s) /data/flux declared for input upstream" in err
    rc, err = run_fake(tmp_path, "--spec", spec_file("indexed_reader"), "--in-indexed", str(h))
    assert rc == 1 and "missing dataset" in err
    run_fake(tmp_path, "--spec", spec_file("producer"))
    run_fake(tmp_path, "--spec", spec_file("indexed_writer"), "--in-upstream",
             str(tmp_path / "product.h5"), "--outdir", str(tmp_path / "w"))
    (tmp_path / "w" / "indexed.h5.sha256").write_text("0" * 64 + "  indexed.h5\n")
    rc, err = run_fake(tmp_path, "--spec", spec_file("indexed_reader"), "--in-indexed",
                       str(tmp_path / "w" / "indexed.h5"))
    assert rc == 1 and "checksum does not match" in err
    rc, err = run_fake(tmp_path, "--spec", spec_file("transform"), "--in-upstream",
                       str(tmp_path / "product.h5"), "--fail-with", "boom: on purpose")
    assert (rc, err) == (1, "fake_module: boom: on purpose\n")


# ---- the Euclid example, in-process -------------------------------------------------------

def test_euclid_example_steps_correct_dark_and_flat_and_record_lineage(tmp_path: Path,
                                                                         monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    inp = euclid_inputs.make_inputs(tmp_path / "in")
    euclid.split(inp["raw"], 2)
    for piece in sorted(tmp_path.glob("piece_*.fits")):
        euclid.correct("correct_dark", piece, inp["dark"], "dark")
    for piece in sorted(tmp_path.glob("dark_*.fits")):
        euclid.correct("correct_flat", piece, inp["flat"], "flat")
    euclid.combine(sorted(tmp_path.glob("flat_*.fits")))
    euclid.extract(tmp_path / "combined.fits", inp["spec"])
    euclid.lineage(sorted(tmp_path.glob("*.lineage.json")),
                   {"catalogue": tmp_path / "catalogue.ecsv"},
                   {k: inp[k] for k in ("raw", "dark", "flat")} | {"catalog_spec": inp["spec"]})
    out = {k: {"class": "File", "path": str(tmp_path / n)} for k, n in (
        ("catalogue", "catalogue.ecsv"), ("quality", "quality.json"),
        ("lineage", "lineage.json"))}
    ctx = checks.Ctx(expect=checks.Expect(set()), inputs=inp)
    v = checks.check_euclid_example(out, ctx)
    assert v.ok and "recovered" in v.note
    assert v.note.count("correct_flat") == 1 and "4x" in v.note
    # Without the dark/flat correction the same check must fail on the background.
    from astropy.io import fits

    fits.writeto(tmp_path / "combined.fits", fits.getdata(inp["raw"]), overwrite=True)
    euclid.extract(tmp_path / "combined.fits", inp["spec"])
    with pytest.raises(checks.Mismatch):
        checks.check_euclid_example(out, ctx)


def test_broken_expectation_turns_into_a_clear_mismatch() -> None:
    e = checks.Expect({"scatter_gather"})
    assert e.value("scatter_gather", 5) == 6 and e.value("tmpdir", 5) == 5
    with pytest.raises(checks.Mismatch, match="parts: expected 6, got 5"):
        checks.equal("parts", e.value("scatter_gather", 5), 5)


def test_failure_reason_prefers_the_step_stderr() -> None:
    log = ("[2026] [I] issued\n\tfake_module: failing attempt 1 of the first 1 on purpose\n"
           "\tfake_module: input upstream is required\nJob failed with exit value 1\n")
    assert failure_reason(log) == "fake_module: input upstream is required"


def test_gpu_detection_is_honest() -> None:
    present, why = gpu_status("single_machine")
    has_gpu = shutil.which("nvidia-smi") and list(Path("/dev").glob("nvidia[0-9]*"))
    assert present == bool(has_gpu)
    if not present:
        assert why.startswith("no GPU on this site")


# ---- validate-site under Toil -------------------------------------------------------------

def test_validate_site_local_passes_and_reports_a_broken_feature(tmp_path: Path) -> None:
    """One real run: every feature PASSes except the one broken on purpose (GPU SKIP here)."""
    rc, report, stdout = validate_site(tmp_path, "--site", "local", "--fan-out", "12",
                                       "--break", "scatter_gather")
    res = by_feature(report)
    assert set(res) == set(FEATURES)
    assert rc == 1 and report["ok"] is False
    sg = res.pop("scatter_gather")
    assert sg["status"] == "FAIL" and "expected 6, got 5" in sg["reason"]
    gpu = res.pop("gpu")
    assert gpu["status"] in ("SKIP", "PASS")
    if gpu["status"] == "SKIP":
        assert "no GPU on this site" in gpu["reason"]
    not_passed = {k: v["reason"] for k, v in res.items() if v["status"] != "PASS"}
    assert not not_passed, not_passed
    assert "DUMMY-PIPELINE-EXPECTED-FAILURE" in res["expected_failure"]["details"]["stderr"]
    # One line per feature in the text report, FAIL with its reason.
    lines = [ln for ln in stdout.splitlines() if ln[:4] in ("PASS", "FAIL", "SKIP")]
    assert len(lines) == len(FEATURES)
    assert any(ln.startswith("FAIL  scatter_gather") and "expected 6, got 5" in ln
               for ln in lines)
    # The Euclid catalogue's lineage: catalogue <- extract(image <- combine ..., catalog_spec).
    lin = res["euclid_example"]["details"]["catalogue_lineage"]
    assert lin["step"] == "extract" and set(lin["inputs"]) == {"image", "catalog_spec"}
    assert lin["inputs"]["image"][0]["step"] == "combine_images"
    # Steps ran in the fake-module image when it is built (make images), else said so.
    in_image = subprocess.run(["podman", "image", "exists", IMAGE], env=env(),
                              check=False).returncode == 0 if shutil.which("podman") else False
    images = res["euclid_example"]["details"]["images"]
    if in_image:
        assert report["containers"].startswith(IMAGE) and images == [IMAGE]
    else:
        assert "fell back to --no-container" in report["containers"]
        assert images == ["none (no container)"]


@pytest.mark.slow
def test_validate_site_local_full_suite_exit_0(tmp_path: Path) -> None:
    rc, report, stdout = validate_site(tmp_path, "--site", "local")
    assert rc == 0, stdout
    assert report["fan_out_jobs"] == 200
    assert by_feature(report)["fan_out"]["details"]["jobs"] == 200


def slurm_ready() -> None:
    if not (REPO / "jobstore_config" / "slurm.yaml").exists():
        pytest.skip("no jobstore_config/slurm.yaml")
    from scheduler_support import cluster_up

    cluster_up("slurm-cluster")  # CI: `make test` needs nothing else started


@pytest.mark.slurm
def test_validate_site_slurm_retry_failure_gpu(tmp_path: Path) -> None:
    """Through the Slurm profile: a retried step, a must-fail step, honest GPU detection."""
    slurm_ready()
    rc, report, stdout = validate_site(tmp_path, "--site", "slurm", "--only",
                                       "retry,expected_failure,gpu")
    assert rc == 0, stdout
    assert report["batch_system"] == "slurm"
    res = by_feature(report)
    assert res["retry"]["status"] == "PASS" and res["expected_failure"]["status"] == "PASS"
    assert res["gpu"]["status"] in ("SKIP", "PASS")


@pytest.mark.slurm
@pytest.mark.slow
def test_validate_site_slurm_full_suite(tmp_path: Path) -> None:
    slurm_ready()
    rc, report, stdout = validate_site(tmp_path, "--site", "slurm")
    assert rc == 0, stdout
