"""Pilot job: run one command inside a single Slurm allocation, as if it ran here.

    python -m stellarflow.pilot [--chdir DIR] [SBATCH OPTIONS...] -- COMMAND [ARGS...]

Submits ``sbatch --wait`` (the allocation: cores, memory, walltime from the options), follows the
job's stderr onto ours while it runs, then copies its stdout to ours and exits with its exit code.
``stellarflow run --site slurm-pilot`` puts this in front of toil-cwl-runner (single_machine
inside the allocation), so a workflow's many small jobs never queue one by one.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def _follow(path: Path, done: threading.Event) -> None:
    """Copy ``path`` to our stderr as it grows, until ``done`` and the file is drained."""
    pos = 0
    while True:
        finished = done.is_set()
        if path.exists():
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
                pos += len(chunk)
            if chunk:
                sys.stderr.buffer.write(chunk)
                sys.stderr.buffer.flush()
        if finished:
            return
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -m stellarflow.pilot [--chdir DIR] [SBATCH OPTIONS] -- COMMAND ...",
              file=sys.stderr)
        return 2
    cut = argv.index("--")
    opts, command = argv[:cut], argv[cut + 1:]
    chdir = Path.cwd()
    if "--chdir" in opts:
        i = opts.index("--chdir")
        chdir = Path(opts[i + 1]).resolve()
        del opts[i:i + 2]
    chdir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out, err = chdir / f"pilot-{stamp}.out", chdir / f"pilot-{stamp}.err"
    sbatch = ["sbatch", "--wait", "--parsable", "--chdir", str(chdir), "--output", str(out),
              "--error", str(err), *opts, "--wrap", "exec " + shlex.join(command)]
    print(f"pilot: {shlex.join(sbatch)}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.Popen(sbatch, stdout=subprocess.PIPE, text=True)
    except FileNotFoundError:
        print("pilot: sbatch not found (Slurm client not installed)", file=sys.stderr)
        return 127
    job_id = (proc.stdout.readline() if proc.stdout else "").strip().split(";")[0]
    print(f"pilot: Slurm job {job_id or '?'} (the whole workflow runs in this allocation)",
          file=sys.stderr, flush=True)
    done = threading.Event()
    follower = threading.Thread(target=_follow, args=(err, done), daemon=True)
    follower.start()

    def cancel(signum: int, _frame: object) -> None:
        if job_id:
            subprocess.run(["scancel", job_id], check=False)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, cancel)
    try:
        rc = proc.wait()
    except KeyboardInterrupt:
        if job_id:
            subprocess.run(["scancel", job_id], check=False)
        rc = 130
    done.set()
    follower.join()
    if out.exists():
        sys.stdout.buffer.write(out.read_bytes())
        sys.stdout.flush()
    print(f"pilot: Slurm job {job_id} ended with exit code {rc}", file=sys.stderr, flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
