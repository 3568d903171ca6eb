"""Where the repository's CWL, site profiles and scripts are.

The host package sits in scripts/stellarflow/, two levels below the root (never in an image).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import RunError


def repo_root() -> Path:
    env = os.environ.get("STELLARFLOW_HOME")
    root = Path(env) if env else Path(__file__).resolve().parents[2]
    if not (root / "cwl" / "workflows").is_dir():
        raise RunError(f"cannot find the stellarflow repository (cwl/workflows) at {root}; "
                       "set STELLARFLOW_HOME")
    return root


# Workflows a manifest may name (an allow-list: a manifest never names a path or a command).
ALLOWED_WORKFLOWS = {"sas": "cwl/workflows/sas.cwl"}


def workflow_path(name: str) -> Path:
    try:
        return repo_root() / ALLOWED_WORKFLOWS[name]
    except KeyError:
        allowed = ", ".join(ALLOWED_WORKFLOWS)
        raise RunError(f"unknown workflow {name!r}; allowed: {allowed}") from None
