"""Shared fixtures: repository paths, the real light curves, generated observations, runner env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
REAL = REPO / "tests" / "data" / "real"  # public light curves (tests/data/real/README.md)


def runner_env() -> dict[str, str]:
    """PATH as `make` sets it: the podman wrapper and the venv's bin first."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(REPO / "scripts" / "bin"), str(VENV_BIN), env["PATH"]])
    return env


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def real_data() -> Path:
    return REAL


def generate(outdir: Path, *args: str) -> Path:
    """Run the synthetic observation generator; returns the manifest path."""
    subprocess.run([sys.executable, str(REPO / "scripts" / "generate_observation.py"),
                    str(outdir), *args], check=True, capture_output=True, text=True)
    return outdir / "manifest.yaml"


@pytest.fixture(scope="session")
def small_observation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six generated stars, 20 days at 25 s cadence: every kind of signal, quick to run."""
    out = tmp_path_factory.mktemp("small_obs")
    return generate(out, "--stars", "6", "--days", "20", "--seed", "7",
                    "--observation-id", "small")


@pytest.fixture(autouse=True)
def _slurm_cluster_shape(request: pytest.FixtureRequest):
    """Tests marked slurm share the local cluster; those marked slurm_nodes reshape it (up --nodes
    N) and so run alone (pytest-xdist workers wait on a file lock)."""
    if request.node.get_closest_marker("slurm") is None:
        yield
        return
    from scheduler_support import slurm_shape_lock

    with slurm_shape_lock(exclusive=request.node.get_closest_marker("slurm_nodes") is not None):
        yield


def containers_available() -> bool:
    """Whether podman runs and the SAS images exist (make images)."""
    try:
        from stellarflow.images import missing_images_error
    except ImportError:
        return False
    try:
        return not missing_images_error(REPO / "cwl" / "workflows" / "sas.cwl")
    except Exception:
        return False
