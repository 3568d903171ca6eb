"""pytest plugin (addopts -p cwltest_toil): cwltest's hook runs each cwl/tools/*.cwltest.yml case
under toil-cwl-runner, in-process, in the tool's image (--podman) as `stellarflow run` does, unless
STELLARFLOW_TEST_CONTAINERS=0 (then the modules' commands from the venv, --no-container)."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def pytest_cwl_execute_test(config, processfile: str, jobfile: str | None):
    from toil.cwl import cwltoil

    bins = [str(REPO / "scripts" / "bin"), str(Path(sys.executable).parent)]
    os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "/usr/bin:/bin")])
    engine = "--no-container" if os.environ.get("STELLARFLOW_TEST_CONTAINERS") == "0" \
        else "--podman"
    stdout = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="cwltest-toil-") as tmp:
        args = [engine, "--logLevel", "WARNING", "--jobStore", f"{tmp}/jobstore",
                "--workDir", tmp, f"--outdir={config.outdir}", processfile]
        if jobfile:
            args.append(jobfile)
        try:
            rc = cwltoil.main(args, stdout=stdout)
        except Exception:
            return 1, None
    out = stdout.getvalue()
    return rc, (json.loads(out) if out else {})
