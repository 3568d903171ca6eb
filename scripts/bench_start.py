"""How long a run takes to start: from `stellarflow run` to the first science step issued.

Runs ``stellarflow run`` on a manifest under Toil, reads its runner log until the first chunk's
ingest is issued, then stops the run and removes its folder. Prints where the time went (from the
command's start, seconds):

- ``loaded``: Toil has loaded the CWL and the job ("Creating root job");
- ``imported``: the light curves are imported into the job store ("Starting workflow");
- ``first_step``: the first ingest is issued (the workflow, the scatter over the chunks and each
  chunk's sub-workflow are set up).

A run's start is paid once per run while its cores wait; with many chunks per run it is what the
chunking costs (docs/performance.md, "A run's start at 10 000 stars").

    .venv/bin/python scripts/bench_start.py build/bench/scale/10000x5/obs/manifest.yaml \\
        --chunk-size 50
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKS = {"loaded": "Creating root job", "imported": "Starting workflow",
         "first_step": re.compile(r"Issued job 'CWLJob' \S*ingest")}


def find_marks(log_text: str) -> dict[str, bool]:
    """Which of MARKS the runner log shows so far."""
    found = {}
    for name, mark in MARKS.items():
        found[name] = bool(mark.search(log_text)) if isinstance(mark, re.Pattern) \
            else mark in log_text
    return found


def count_stars(manifest: Path) -> int:
    from ruamel.yaml import YAML

    return len(YAML(typ="safe").load(manifest.read_text()).get("stars") or [])


def measure(manifest: Path, chunk_size: int, *, container: bool, timeout_s: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-start-"))
    cmd = [sys.executable, "-m", "stellarflow.cli", "run", str(manifest), "--outdir",
           str(workdir), "--chunk-size", str(chunk_size)]
    if not container:
        cmd.append("--no-container")
    seen: dict[str, float] = {}
    err_path = workdir / "stderr.txt"
    t0 = time.monotonic()
    with open(err_path, "wb") as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file,
                                start_new_session=True)
    last_error = ""
    try:
        while proc.poll() is None and time.monotonic() - t0 < timeout_s:
            logs = list(workdir.glob(".stellarflow/runs/*/runner.log"))
            if logs:
                now = time.monotonic() - t0
                for name, hit in find_marks(logs[0].read_text(errors="replace")).items():
                    if hit and name not in seen:
                        seen[name] = round(now, 1)
                if "first_step" in seen:
                    break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        lines = err_path.read_text(errors="replace").strip().splitlines()
        last_error = lines[-1] if lines else ""
        shutil.rmtree(workdir, ignore_errors=True)
    if "first_step" not in seen:
        raise RuntimeError(f"no step issued within {timeout_s:g} s"
                           + (f": {last_error}" if last_error else ""))
    return {"chunk_size": chunk_size, "container": container, **seen}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("manifest", type=Path)
    p.add_argument("--chunk-size", type=int, default=50)
    p.add_argument("--container", action="store_true",
                   help="run the tools in their images (default: --no-container; the start "
                        "does not depend on it)")
    p.add_argument("--timeout", type=float, default=1800.0, help="give up after this, s")
    p.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "start.json",
                   help="the result as JSON (read by scripts/sizing.py)")
    args = p.parse_args(argv)
    if not args.manifest.is_file():
        print(f"bench_start: {args.manifest}: no such manifest", file=sys.stderr)
        return 2
    try:
        result = measure(args.manifest, args.chunk_size, container=args.container,
                         timeout_s=args.timeout)
    except RuntimeError as exc:
        print(f"bench_start: {exc}", file=sys.stderr)
        return 1
    result["stars"] = count_stars(args.manifest)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    result["git"] = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                   capture_output=True, text=True).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
