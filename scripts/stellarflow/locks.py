"""A Python module's lock: containers/<module>/requirements.lock, every package its image installs.

The module's direct dependencies are its pyproject.toml's; pip's resolver (`pip install --dry-run
--report`, on this host, whose Python 3.11 and glibc the images share) chooses the rest. Unless
module.yml says `project_lock: false`, the project's requirements.lock constrains the versions, so
a module gives the same numbers in its image and in the venv; a module that says false (the fake
module, on numpy 1.x) resolves its own pins. stellarflow-contracts is pinned to the checkout's
containers/contracts.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from .errors import RunError
from .images import read_module
from .paths import repo_root


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def local_packages() -> dict[str, Path]:
    return {"stellarflow-contracts": repo_root() / "containers" / "contracts"}


def _project(path: Path) -> dict:
    return tomllib.loads((path / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return norm(re.split(r"[<>=!~ \[;]", requirement)[0])


def resolve(mdir: Path, *, within_own_lock: bool = False) -> str:
    """The text of the module's lock, freshly resolved (RunError if pip cannot).

    within_own_lock: also constrained by the module's present lock, so that the result equals it
    while it still resolves the module's dependencies. A check asks that, not whether a package
    the module leaves unpinned has had a release since (a free resolve moves with the index)."""
    meta = read_module(mdir)
    local = local_packages()
    deps = _project(mdir)["dependencies"]
    third = [d for d in deps if _name(d) not in local]
    mine = sorted(_name(d) for d in deps if _name(d) in local)
    for name in mine:  # the local libraries' own dependencies come in with them
        third += _project(local[name])["dependencies"]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
               "--quiet", "--report", str(report), "--only-binary=:all:", *third]
        if meta.get("project_lock", True):
            cmd += ["-c", str(repo_root() / "requirements.lock")]
        if within_own_lock and (mdir / "requirements.lock").exists():
            cmd += ["-c", str(mdir / "requirements.lock")]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            errs = [ln for ln in r.stderr.splitlines() if ln.startswith("ERROR")] or [r.stderr]
            raise RunError(f"{mdir.name}: pip could not resolve its dependencies: {errs[-1]}")
        pins = sorted((norm(i["metadata"]["name"]), i["metadata"]["version"])
                      for i in json.loads(report.read_text())["install"])
    lines = [f"# {mdir.name}: every package its image installs (scripts/lock-module {mdir.name})"]
    lines += [f"{name}=={version}" for name, version in pins]
    lines += [f"{name}=={_project(local[name])['version']}" for name in mine]
    return "\n".join(lines) + "\n"


def write_lock(mdir: Path) -> Path:
    lock = mdir / "requirements.lock"
    lock.write_text(resolve(mdir))
    return lock
