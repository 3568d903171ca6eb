"""The release (docs/provenance.md, "Release"): packed workflows pinned by image id, validated,
run under toil-cwl-runner and cwltool from the release folder alone; its Workflow RO-Crate
validated offline; import on a fresh clone (checksums, image ids, pins), a damaged copy refused;
.dockstore.yml. The full one (image archive, make import-release and validate-site on a fresh
clone) is slow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from test_pipeline_e2e import use_containers

from stellarflow import release
from stellarflow.errors import RunError

from conftest import REPO, runner_env


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not use_containers():
        pytest.skip("a release pins the images: needs podman and the images (make images)")
    return release.build(tmp_path_factory.mktemp("release") / "rel", images=False)


def test_release_folder(rel: Path) -> None:
    info = json.loads((rel / "release.json").read_text())
    paths = {w["path"] for w in info["workflows"]}
    assert "workflows/sas.cwl" in paths and \
        "workflows/dummy_pipeline/features/scatter_gather.cwl" in paths
    sas = json.loads((rel / "workflows" / "sas.cwl").read_text())
    pins = dict(release.pinned_ids(sas))
    assert len(pins) == 8 and pins == {r: i for r, i in info["images"].items() if r in pins}
    # the shared record types travel inside the packed file
    assert any(t.get("name") == "#stellarflow.yml/Star" for p in sas["$graph"]
               for r in p.get("requirements") or [] for t in r.get("types") or [])
    assert release.check_sums(rel) == len((rel / release.SUMS).read_text().splitlines())
    p = subprocess.run(["git", "status", "--porcelain", "cwl"], cwd=REPO, capture_output=True,
                       text=True)
    assert p.stdout == ""  # cwl/ is never edited in place
    v = subprocess.run([str(REPO / "scripts" / "rocrate-validate"), str(rel),
                        "workflow-ro-crate-1.0"], capture_output=True, text=True, timeout=600)
    assert v.returncode == 0 and "is a valid workflow-ro-crate-1.0" in v.stdout, v.stdout[-3000:]


@pytest.mark.parametrize("runner", ["cwltool", "toil"])
def test_packed_workflow_runs(rel: Path, runner: str, tmp_path: Path) -> None:
    """From a copy of the release folder alone (no repository paths), in the pinned images."""
    copy = tmp_path / "copy"
    shutil.copytree(rel, copy)
    wf, job = copy / "workflows" / "sas.cwl", copy / "tests" / "sas.job.yml"
    if runner == "cwltool":
        argv = ["cwltool", "--podman", "--outdir", str(tmp_path / "out"), str(wf), str(job)]
    else:
        argv = ["toil-cwl-runner", "--config", str(REPO / "jobstore_config" / "local.yaml"),
                "--jobStore", str(tmp_path / "js"), "--podman", "--outdir",
                str(tmp_path / "out"), str(wf), str(job)]
    p = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=runner_env(),
                       timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert len([f for chunk in out["products"] for f in chunk]) == 3
    if runner == "cwltool":  # cwltool prints the podman command: the image by its id
        assert "sha256:" in p.stderr


def test_import_on_a_fresh_clone(rel: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {**runner_env(), "STELLARFLOW_HOME": str(clone)}
    p = subprocess.run([sys.executable, "-m", "stellarflow.release", "import", str(rel)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "checksums match" in p.stdout and "pinned steps agree" in p.stdout
    record = json.loads((clone / "build" / release.IMPORTED).read_text())
    assert record["pins"] > 8 and record["release"] == str(rel)
    # a damaged copy is refused with one line naming the file
    bad = tmp_path / "bad"
    shutil.copytree(rel, bad)
    target = bad / "workflows" / "sas.cwl"
    target.write_text(target.read_text().replace("sha256:", "sha256:0", 1))
    p = subprocess.run([sys.executable, "-m", "stellarflow.release", "import", str(bad)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "sas.cwl: SHA-256 differs" in \
        p.stderr
    with pytest.raises(RunError, match="pinned to"):
        (bad / release.SUMS).write_text("")  # checksums out of the way: the pin check speaks
        env_home = os.environ.get("STELLARFLOW_HOME")
        os.environ["STELLARFLOW_HOME"] = str(clone)
        try:
            release.import_release(bad)
        finally:
            os.environ.pop("STELLARFLOW_HOME")
            if env_home:
                os.environ["STELLARFLOW_HOME"] = env_home


def test_dockstore_file() -> None:
    doc = YAML(typ="safe").load((REPO / ".dockstore.yml").read_text())
    assert doc["version"] == 1.2
    for wf in doc["workflows"]:
        assert wf["subclass"] == "CWL" and (REPO / wf["primaryDescriptorPath"][1:]).is_file()
        for job in wf.get("testParameterFiles", []):
            assert (REPO / job[1:]).is_file()


@pytest.mark.slow
def test_make_release_and_import_on_a_fresh_clone(tmp_path: Path) -> None:
    """make release (with the image archive) here; on a fresh clone make import-release, then
    make validate-site RELEASE=... against the released files."""
    out = tmp_path / "release"
    env = runner_env()
    p = subprocess.run(["make", "-s", "release", f"RELEASE_DIR={out}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=3600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "images" / release.ARCHIVE).is_file()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "STELLARFLOW_HOME")}
    for target in (["import-release", f"DIR={out}"],
                   ["validate-site", f"RELEASE={out}"]):
        p = subprocess.run(["make", "-s", *target], cwd=clone, env=env, capture_output=True,
                           text=True, timeout=3600)
        assert p.returncode == 0, (target, p.stdout[-3000:], p.stderr[-3000:])
    assert "-> OK" in p.stdout
