"""The module kit: every module passes `stellarflow check-module`; `new-module` writes a module that
does; each check fails with one line naming the module, the check and what was expected."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from stellarflow import modulekit
from stellarflow.images import image_exists, module_dirs

from conftest import REPO, runner_env

MODULES = [d.name for d in module_dirs()]


@pytest.mark.containers
@pytest.mark.parametrize("name", MODULES)
def test_every_module_passes_check_module(name: str) -> None:
    os.environ["PATH"] = runner_env()["PATH"]
    results = modulekit.check_module(name, log=lambda line: None)
    failed = [r.line() for r in results if not r.ok]
    assert not failed, "\n".join(failed)
    assert [r.check for r in results] == list(modulekit.CHECKS)


@pytest.fixture
def scratch_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository to write new modules into: the real one's shared parts, linked."""
    root = tmp_path / "repo"
    for d in ("cwl/tools", "cwl/workflows", "containers"):
        (root / d).mkdir(parents=True)
    for shared in ("containers/contracts", "scripts", "requirements.lock", "pyproject.toml"):
        (root / shared).parent.mkdir(parents=True, exist_ok=True)
        (root / shared).symlink_to(REPO / shared)
    monkeypatch.setenv("STELLARFLOW_HOME", str(root))
    return root


@pytest.mark.parametrize("language", ["python", "c"])
def test_new_module_writes_the_layout_and_its_code_passes_its_tests(
        scratch_repo: Path, language: str) -> None:
    name = f"rms_{language}"
    written = modulekit.new_module(name, language)
    mdir = scratch_repo / "containers" / name
    assert mdir / "module.yml" in written and (mdir / "tests" / "data").is_dir()
    for beside in (".cwl", ".job.yml", ".cwltest.yml"):
        assert (scratch_repo / "cwl" / "tools" / f"{name}{beside}").exists()
    text = "\n".join(p.read_text() for p in written if p.suffix != ".h5")
    assert "{{" not in text  # every placeholder filled
    from stellarflow.images import read_module

    meta = read_module(mdir)
    assert meta["language"] == language and meta["stage"] == name
    assert modulekit.cwl_conventions(scratch_repo / "cwl" / "tools" / f"{name}.cwl", meta) == []
    if language == "python":
        from stellarflow_contracts import __version__ as contracts_version

        lock = (mdir / "requirements.lock").read_text()
        assert f"stellarflow-contracts=={contracts_version}" in lock
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "-c", os.devnull, "--rootdir", str(mdir), str(mdir / "tests")],
                           capture_output=True, text=True,
                           env={**runner_env(), "PYTHONPATH": str(mdir)}, cwd=mdir)
        assert r.returncode == 0, r.stdout[-2000:]


def test_new_module_refuses_a_bad_or_taken_name(scratch_repo: Path) -> None:
    from stellarflow.errors import InputError

    for bad, why in (("Bad-Name", r"use \[a-z\]"), ("json", "importable Python package")):
        with pytest.raises(InputError, match=why):
            modulekit.new_module(bad, "python")
    modulekit.new_module("taken_one", "python")
    with pytest.raises(InputError, match="is taken"):
        modulekit.new_module("taken_one", "python")


# ---- one line per failing check ---------------------------------------------------------------

def check_of(name: str) -> modulekit.ModuleCheck:
    check = modulekit.ModuleCheck(name, log=lambda line: None)
    check.meta = modulekit.read_module(check.mdir)
    return check


def test_layout_failure_names_what_is_missing(scratch_repo: Path) -> None:
    modulekit.new_module("half_done", "python")
    (scratch_repo / "containers" / "half_done" / "README.md").unlink()
    results = modulekit.check_module("half_done", log=lambda line: None)
    assert results[0].line() == ("FAIL layout     check-module half_done: layout: missing "
                                 "README.md (expected the module layout of docs/modules.md)")
    assert all(r.detail.startswith("not run:") for r in results[1:3])


def test_cwl_failure_names_the_convention(scratch_repo: Path) -> None:
    modulekit.new_module("loose_cwl", "python")
    tool = scratch_repo / "cwl" / "tools" / "loose_cwl.cwl"
    tool.write_text(tool.read_text().replace("localhost/stellarflow/loose_cwl:1.0.0",
                                             "localhost/elsewhere:1"))
    check = check_of("loose_cwl")
    with pytest.raises(modulekit.CheckFailed, match="dockerPull is 'localhost/elsewhere:1', "
                                                    "expected 'localhost/stellarflow/loose_cwl"):
        check.check_cwl()


def outputs_of(tmp_path: Path, src: Path, fmt: str) -> dict:
    dest = tmp_path / src.name
    shutil.copy(src, dest)
    return {"chunk": {"class": "File", "path": str(dest), "format": fmt}}


def test_contract_failure_names_the_dataset_and_the_units(tmp_path: Path) -> None:
    check = check_of("msap4_rotation")
    data = REPO / "containers" / "star_products" / "tests" / "data" / "chunk-0000.rotation.h5"
    check.outputs = outputs_of(tmp_path, data, modulekit.CHUNK_FORMAT)
    with h5py.File(check.outputs["chunk"]["path"], "a") as f:
        del f["stars/star00000/periodogram/power"].attrs["units"]
    with pytest.raises(modulekit.CheckFailed, match=r"star star00000: dataset "
                       r"'periodogram/power' has no units attribute, expected ''"):
        check.check_contract()


def test_contract_of_a_product_linking_its_light_curve(tmp_path: Path) -> None:
    """star_products --lightcurve link: the links are checked as links while the chunk file is
    not beside the product (a tool's outputs), and followed once it is."""
    check = check_of("star_products")
    prepared = REPO / "containers" / "star_products" / "tests" / "data" / "chunk-0000.prepared.h5"
    product = tmp_path / "star00000.product.h5"
    with h5py.File(product, "w") as f:
        f.attrs.update(star_id="star00000", status="ok", error="", lightcurve_file=prepared.name)
        f.create_group("provenance")
        f.create_dataset("lightcurve/quality", data=[0]).attrs["units"] = ""
        for k in ("time", "flux", "flux_err"):
            f[f"lightcurve/{k}"] = h5py.ExternalLink(prepared.name,
                                                     f"/stars/star00000/prepared/{k}")
    check.outputs = {"p": {"class": "File", "path": str(product),
                           "format": modulekit.PRODUCT_FORMAT}}
    assert check.check_contract() == "1 files conform"
    shutil.copy(prepared, tmp_path)
    assert check.check_contract() == "1 files conform"
    with h5py.File(product, "a") as f:
        del f["lightcurve/flux"]
        f["lightcurve/flux"] = h5py.ExternalLink(prepared.name, "/stars/star00001/prepared/flux")
    with pytest.raises(modulekit.CheckFailed, match=r"lightcurve/flux links to chunk-0000\."
                       r"prepared\.h5:/stars/star00001/prepared/flux, expected"):
        check.check_contract()


def test_bad_star_failure_when_no_star_fails_here(tmp_path: Path) -> None:
    check = check_of("msap4_rotation")
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps({"star": {"a": {"status": "ok", "attrs": {"error": ""}}}}))
    check.outputs = {"summary": {"class": "File", "path": str(summary)}}
    with pytest.raises(modulekit.CheckFailed, match="no star failed in this module"):
        check.check_bad_star()


@pytest.mark.slow
@pytest.mark.containers
def test_new_python_module_passes_check_module_end_to_end(scratch_repo: Path) -> None:
    """new-module, build, record the expected values, every check passes (the walk-through)."""
    os.environ["PATH"] = runner_env()["PATH"]
    name = "walkthrough_rms"
    modulekit.new_module(name, "python")
    try:
        results = modulekit.check_module(name, record=True, log=lambda line: None)
        assert [r.line() for r in results if not r.ok] == []
    finally:
        image = f"localhost/stellarflow/{name}:1.0.0"
        if image_exists(image):
            subprocess.run(["podman", "rmi", "-f", image], capture_output=True)


def test_no_module_imports_another_module_or_host_code() -> None:
    """A module's code imports the contracts library, its own package and third-party code only
    (an institute's module cannot lean on another institute's)."""
    import ast

    others = set(MODULES) | {"stellarflow", "stellarflow_trigger", "stellarflow_dummy", "toil"}
    for name in MODULES:
        pkg = REPO / "containers" / name / name
        for py in pkg.rglob("*.py") if pkg.is_dir() else []:
            for node in ast.walk(ast.parse(py.read_text())):
                if isinstance(node, ast.Import):
                    roots = {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    roots = {(node.module or "").split(".")[0]}
                else:
                    continue
                assert not (roots & (others - {name})), f"{py.relative_to(REPO)} imports {roots}"
