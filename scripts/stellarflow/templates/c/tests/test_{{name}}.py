"""{{name}} (C) on its fixture: values against numpy, the broken star failed alone, the star
failed upstream carried, the contract, the summary Python would write, the command line.

The program is built with make into a temporary folder when this host has a C compiler and
libhdf5-dev; else it runs in its image (localhost/stellarflow/{{name}}:<version>) with podman;
with neither the tests skip. STELLARFLOW_C_TEST_RUNNER=host|image forces one of the two.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from stellarflow_contracts.chunk import summarise
from stellarflow_contracts.conform import check_chunk

NAME = "{{name}}"
STAGE = "{{stage}}"
MODULE_DIR = Path(__file__).resolve().parents[1]
REPO = MODULE_DIR.parents[1]
DATA = MODULE_DIR / "tests" / "data"
VERSION = re.search(r"^version:\s*([^\s#]+)", (MODULE_DIR / "module.yml").read_text(),
                    re.M).group(1).strip("'\"")
IMAGE = f"localhost/stellarflow/{NAME}:{VERSION}"


@dataclass
class Runner:
    kind: str  # "host" (a build of this checkout) or "image" (podman)
    exe: str
    env: dict[str, str]

    def run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        argv = [self.exe, *args] if self.kind == "host" else [
            self.exe, "run", "--rm", "--network=none", "-v", f"{cwd}:{cwd}", "-w", str(cwd),
            IMAGE, NAME, *args]
        return subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=120)


def _host_can_build() -> str | None:
    """Why this host cannot build the program, or None."""
    if not (shutil.which("make") and (shutil.which("cc") or shutil.which("gcc"))):
        return "no make or C compiler"
    if not Path("/usr/include/hdf5/serial/hdf5.h").exists() and not (
            shutil.which("pkg-config") and subprocess.run(
                ["pkg-config", "--exists", "hdf5-serial"]).returncode == 0):
        return "no HDF5 headers (libhdf5-dev)"
    return None


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    want = os.environ.get("STELLARFLOW_C_TEST_RUNNER", "")
    why_not_host = _host_can_build()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLARFLOW_IMAGE")}
    env["PATH"] = os.pathsep.join([str(REPO / "scripts" / "bin"), env.get("PATH", "")])
    if want != "image" and why_not_host is None:
        build = tmp_path_factory.mktemp(f"{NAME}_build")
        r = subprocess.run(["make", "-C", str(MODULE_DIR), f"BUILD={build}"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "warning" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
        return Runner("host", str(build / NAME), env)
    if want == "host":
        pytest.skip(f"STELLARFLOW_C_TEST_RUNNER=host but this host cannot build it: "
                    f"{why_not_host}")
    podman = shutil.which("podman", path=env["PATH"])
    if podman and subprocess.run([podman, "image", "exists", IMAGE], env=env,
                                 capture_output=True).returncode == 0:
        return Runner("image", podman, env)
    pytest.skip(f"cannot build {NAME} here ({why_not_host}) and no image {IMAGE} "
                f"(scripts/build-images {NAME})")


def run_chunk(program: Runner, src: Path, outdir: Path) -> Path:
    r = program.run(["--prepared", str(src), "--outdir", str(outdir)], outdir)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r.stderr
    with h5py.File(src) as f:
        return outdir / f"{f.attrs['chunk_id']}.{STAGE}.h5"


def expected(flux: np.ndarray) -> tuple[int, float] | None:
    """(n_points, rms_ppm) the program must write, None if it must fail (not numbers)."""
    if flux.dtype.kind not in "iuf":
        return None
    good = flux[np.isfinite(flux)]
    return good.size, float(np.std((good - 1.0) * 1e6)) if good.size else float("nan")


def check_against_input(src: Path, out: Path) -> dict[str, str]:
    """Every star of the output against numpy on its input; the statuses by star."""
    statuses = {}
    with h5py.File(src) as f_in, h5py.File(out) as f:
        assert list(f.attrs["star_ids"]) == list(f_in.attrs["star_ids"])
        for sid in f_in.attrs["star_ids"]:
            g_in, g = f_in["stars"].get(sid), f["stars"][sid]
            statuses[sid] = g.attrs["status"]
            if g_in is not None and g_in.attrs["status"] == "failed":  # carried, not re-run
                assert (g.attrs["status"], g.attrs["error"], g.attrs["cpu_s"]) == (
                    "failed", g_in.attrs["error"], 0.0), sid
            elif (g_in is None or "prepared/flux" not in g_in
                  or expected(g_in["prepared/flux"][()]) is None):
                assert g.attrs["status"] == "failed", sid
                assert g.attrs["error"].startswith(f"{NAME}: prepared: star {sid}: "), sid
                assert "\n" not in g.attrs["error"]
            else:
                n, rms = expected(g_in["prepared/flux"][()])
                assert (g.attrs["status"], g.attrs["error"]) == ("ok", ""), sid
                assert isinstance(g.attrs["n_points"], np.int64)
                assert g.attrs["n_points"] == n, sid
                assert isinstance(g.attrs["rms_ppm"], np.float64)
                np.testing.assert_allclose(g.attrs["rms_ppm"], rms, rtol=1e-9)
    summary = out.with_name(f"{out.name[:-3]}.summary.json").read_text()
    with h5py.File(out) as f:
        assert summary == json.dumps(summarise(f), indent=1, ensure_ascii=False) + "\n"
    return statuses


def test_fixture_chunk(program: Runner, tmp_path: Path) -> None:
    src = tmp_path / "chunk-0000.prepared.h5"
    shutil.copy(DATA / src.name, src)
    out = run_chunk(program, src, tmp_path)
    assert out.name == f"chunk-0000.{STAGE}.h5"
    contract = json.loads((MODULE_DIR / "contract.json").read_text())
    assert check_chunk(out, contract=contract) == []
    with h5py.File(out) as f:
        assert {k: f.attrs[k] for k in ("stage", "module", "module_version")} == {
            "stage": STAGE, "module": NAME, "module_version": VERSION}
        if program.kind == "image":
            assert f.attrs["image"] == IMAGE and f.attrs["image_digest"]
    statuses = check_against_input(src, out)
    assert statuses["broken"] == "failed" and "ok" in statuses.values()
    with h5py.File(out) as f:
        assert f["stars/broken"].attrs["error"] == \
            f"{NAME}: prepared: star broken: no dataset prepared/flux"


def test_nan_and_odd_light_curves(program: Runner, tmp_path: Path) -> None:
    src = tmp_path / "chunk-0001.prepared.h5"
    rng = np.random.default_rng(1)
    curves = {"with_nan": np.where(rng.random(500) < 0.1, np.nan, 1 + rng.normal(0, 1e-4, 500)),
              "all_nan": np.full(10, np.nan), "empty": np.zeros(0), "ints": np.arange(5),
              "text": np.array([b"a", b"b"])}
    with h5py.File(src, "w") as f:
        f.attrs.update({"chunk_id": "chunk-0001", "observation_id": "t", "stage": "prepared",
                        "contracts_version": "1.0.0"})
        f.attrs["star_ids"] = np.array([*curves, "no_group"], dtype=h5py.string_dtype())
        for sid, flux in curves.items():
            g = f.create_group(f"stars/{sid}")
            g.attrs.update({"status": "ok", "error": "", "cpu_s": 0.0})
            g["prepared/flux"] = flux
    out = run_chunk(program, src, tmp_path)
    statuses = check_against_input(src, out)
    assert statuses == {"with_nan": "ok", "all_nan": "ok", "empty": "ok", "ints": "ok",
                        "text": "failed", "no_group": "failed"}
    with h5py.File(out) as f:
        assert f["stars/all_nan"].attrs["n_points"] == 0
        assert np.isnan(f["stars/all_nan"].attrs["rms_ppm"])


def test_command_line(program: Runner, tmp_path: Path) -> None:
    r = program.run(["--version"], tmp_path)
    assert (r.returncode, r.stdout) == (0, f"{NAME} {VERSION}\n")
    r = program.run([], tmp_path)
    assert (r.returncode, r.stderr) == (
        2, f"{NAME}: error: the following arguments are required: --prepared (see --help)\n")
    r = program.run(["--prepared", str(tmp_path / "none.h5")], tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"{NAME}: {tmp_path / 'none.h5'}: unreadable chunk HDF5")
