"""One attempt of one run, in its own process (``python -m stellarflow_trigger.runner``).

The daemon starts it in a new session holding the run's lock (an flock'd file descriptor it
inherits), so a daemon restarted after kill -9 sees at once whether the attempt is still alive
(lock held: adopt it) or died (lock free). The attempt calls stellarflow.run.run_job - the code
path of `stellarflow run` - then splits the outputs per manifest and publishes them. Every step is
idempotent; the outcome goes to RUN_DIR/attempt-<n>.json (atomic rename), which the daemon reads.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .batch import publish, split, write_json_atomic

# Toil's FailedJobsException: "The job store '...' contains 2 failed jobs: 'step' kind-..."
FAILED_JOB_RE = re.compile(r"contains \d+ failed jobs?: '([^']+)'")
STEP_RE = re.compile(r"(?:Job|job) '([^']+)' [^\n]*(?:failed|Failed)")


def failing_step(log_text: str) -> str | None:
    for rx in (FAILED_JOB_RE, STEP_RE):
        hits = rx.findall(log_text)
        if hits:
            name = hits[-1].split("#")[-1].rstrip("/")
            return name.rsplit("/", 1)[-1] or name
    return None


def log_tail(log_path: Path, lines: int = 12) -> str:
    try:
        text = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def outputs_complete(run_dir: Path, obs: str) -> bool:
    """Toil finished and run_job moved its outputs (or we already split/published them)."""
    return ((run_dir / "split").exists() or (run_dir / "split.tmp" / obs).exists()
            or ((run_dir / "final" / obs).exists() and not (run_dir / "out").exists()))


def split_and_publish(run_dir: Path, batch: dict[str, Any], outdir: Path,
                      replaced: Path) -> dict[str, str]:
    obs = batch["observation_id"]
    split_dir = run_dir / "split"
    if not split_dir.exists():
        final = run_dir / "final" / obs
        if len(batch["members"]) == 1:
            tmp = run_dir / "split.tmp"
            tmp.mkdir(exist_ok=True)
            if final.exists():
                os.replace(final, tmp / obs)
            os.replace(tmp, split_dir)
        else:
            split(batch, final, split_dir)
    return publish(split_dir, outdir, replaced)


def count(catalogue: Path) -> tuple[int, int]:
    from stellarflow.run import count_statuses

    return count_statuses(catalogue) if catalogue.exists() else (0, 0)


def attempt(args: argparse.Namespace) -> dict[str, Any]:
    from stellarflow.errors import InputError, RunError
    from stellarflow.run import run_job

    run_dir = Path(args.run_dir)
    batch = json.loads((run_dir / "batch.json").read_text())
    obs = batch["observation_id"]
    started = time.time()
    if not outputs_complete(run_dir, obs):
        restart = args.mode == "restart"
        if not restart and (run_dir / "jobstore").exists():
            shutil.rmtree(run_dir / "jobstore")  # a clean start needs a fresh job store
        kwargs = dict(observation_id=obs, outdir=run_dir / "final",
                      workflow=batch.get("workflow", "sas"), site=args.site,
                      container=not args.no_container, run_dir=run_dir, restart=restart,
                      extra_args=list(args.toil_arg or []))
        try:
            try:
                run_job(batch["job"], **kwargs)
            except RunError as exc:
                # toil-cwl-runner 9.6 wants WORKFLOW and JOB positionals even with --restart;
                # give them when the runner asked for them (run_job omits them on restart).
                if not (restart and "arguments are required" in str(exc)):
                    raise
                from stellarflow.paths import workflow_path

                kwargs["extra_args"] += [str(workflow_path(kwargs["workflow"])),
                                         str(run_dir / "job.json")]
                run_job(batch["job"], **kwargs)
        except (RunError, InputError) as exc:
            log = run_dir / "runner.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            launched = (run_dir / "command.json").exists()
            return {"ok": False, "error": str(exc), "transient": launched,
                    "exit_code": _exit_code(str(exc)), "failing_step": failing_step(text),
                    "stderr_tail": log_tail(log), "started_at": started}
    published = split_and_publish(run_dir, batch, Path(args.outdir), Path(args.replaced))
    stars = {o: count(Path(d) / "catalogue.ecsv") for o, d in published.items()}
    return {"ok": True, "outputs": published, "stars": stars, "started_at": started,
            "exit_code": 0}


def _exit_code(msg: str) -> int | None:
    m = re.search(r"\(exit (-?\d+)\)", msg)
    return int(m.group(1)) if m else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stellarflow_trigger.runner")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--attempt", type=int, required=True)
    p.add_argument("--mode", choices=("fresh", "restart"), required=True)
    p.add_argument("--lock-fd", type=int, required=True)
    p.add_argument("--outdir", required=True)
    p.add_argument("--replaced", required=True)
    p.add_argument("--site", default="local")
    p.add_argument("--no-container", action="store_true")
    p.add_argument("--toil-arg", action="append")
    p.add_argument("--nice", type=int, default=0,
                   help="niceness added to this run (Toil, its workers and containers inherit it)")
    args = p.parse_args(argv)
    if args.nice > 0:
        os.nice(args.nice)
    # The lock fd stays open (and locked) for this process's whole life; never closed here.
    out = Path(args.run_dir) / f"attempt-{args.attempt}.json"
    try:
        result = attempt(args)
    except Exception as exc:  # a bug or a broken file system: report it as a failed attempt
        result = {"ok": False, "transient": True, "error": f"runner error: "
                  f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500],
                  "stderr_tail": traceback.format_exc()[-2000:], "exit_code": None,
                  "failing_step": None}
    result["ended_at"] = time.time()
    write_json_atomic(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
