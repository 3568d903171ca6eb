"""Site profiles: jobstore_config/<name>.yaml (Toil --config files) -> a toil-cwl-runner command."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RunError
from .paths import repo_root


def profile_dir() -> Path:
    return repo_root() / "jobstore_config"


def available() -> list[str]:
    return sorted(p.stem for p in profile_dir().glob("*.yaml"))


def profile_path(site: str) -> Path:
    p = profile_dir() / f"{site}.yaml"
    if not p.is_file():
        raise RunError(f"unknown site profile {site!r}; available: {', '.join(available())}")
    return p


@dataclass
class Invocation:
    """How to start the runner for a site: argv (runner + options), extra environment."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def toil_invocation(site: str, *, jobstore: str, workdir: Path, container: bool,
                    restart: bool = False) -> Invocation:
    cfg = profile_path(site)
    workdir.mkdir(parents=True, exist_ok=True)
    argv = ["toil-cwl-runner", "--config", str(cfg), "--jobStore", jobstore,
            "--workDir", str(workdir)]
    argv.append("--podman" if container else "--no-container")
    if restart:
        argv.append("--restart")
    return Invocation(argv=argv, env={})


def runner_path_env() -> dict[str, str]:
    """PATH with the project's podman wrapper and the venv's bin first (Toil finds its worker
    and cwltool finds `python` through PATH)."""
    import sys

    root = repo_root()
    first = [str(root / "scripts" / "bin"), str(Path(sys.executable).parent)]
    path = os.pathsep.join(first + [os.environ.get("PATH", "/usr/bin:/bin")])
    return {"PATH": path}
