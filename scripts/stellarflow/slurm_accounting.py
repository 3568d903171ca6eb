"""Slurm's accounting records (sacct, from slurmdbd) of the jobs of one Toil run, for per-step
profiling: what each step asked for (cores, memory, time limit) and what it used (CPU time, max
RSS, bytes read and written, wall), on which node, how it ended.

Toil names its Slurm jobs ``toil_job_<N>_<step>`` and logs "... queued as job <ID>" for each one
in the run's toil.log; a pilot run (``--site slurm-pilot``) is one job whose working directory is
the run folder. ``sacct_rows`` returns sacct's own rows (``--parsable2``), ``steps`` one record
per Slurm job with the batch step's usage and the numbers parsed.

Usage is sampled by jobacct_gather/linux (JobAcctGatherFrequency in slurm.conf): MaxRSS is the
largest sampled sum of the job's processes' RSS; MaxDiskRead/Write are /proc/PID/io rchar/wchar
(all bytes through read/write, page cache included) of the processes alive at a sample; a job
that ends before the first sample has them empty (None here). TotalCPU is exact (the rusage of
every process the job waited for).
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from stellarflow.errors import RunError

FIELDS = ("JobIDRaw", "JobID", "JobName", "State", "ExitCode", "ReqCPUS", "AllocCPUS", "ReqMem",
          "Timelimit", "TimelimitRaw", "Elapsed", "ElapsedRaw", "TotalCPU", "UserCPU",
          "SystemCPU", "MaxRSS", "MaxDiskRead", "MaxDiskWrite", "NodeList", "WorkDir", "Submit",
          "Start", "End")

_QUEUED = re.compile(r"queued as job (\d+)")
_TOIL_NAME = re.compile(r"^toil_job_(\d+)_(.+)$")
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


def toil_job_ids(toil_log: Path) -> list[str]:
    """Slurm job ids Toil logged for a run ("... queued as job N"), in order, without repeats."""
    try:
        text = Path(toil_log).read_text(errors="replace")
    except OSError as e:
        raise RunError(f"{toil_log}: cannot read the Toil log ({e.strerror})") from None
    return list(dict.fromkeys(_QUEUED.findall(text)))


def sacct_rows(job_ids: list[str] | None = None, *, fields: tuple[str, ...] = FIELDS,
               start: str | None = None, sacct: str = "sacct") -> list[dict[str, str]]:
    """sacct's rows (one per job and one per job step, e.g. ``123`` and ``123.batch``) as dicts
    keyed by field name. ``job_ids``: those jobs; else every user's jobs since ``start``."""
    argv = [sacct, "--parsable2", "--noheader", "--noconvert", "--allusers",
            "--format", ",".join(fields)]
    if job_ids is not None:
        if not job_ids:
            return []
        argv += ["--jobs", ",".join(job_ids)]
    if start:
        argv += ["--starttime", start]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise RunError(f"{sacct}: command not found (Slurm's client commands are not "
                       "installed: scripts/install-system)") from None
    except subprocess.TimeoutExpired:
        raise RunError(f"{sacct}: no answer in 120 s (is slurmdbd up? scripts/slurm-cluster "
                       "status)") from None
    if p.returncode != 0:
        msg = " ".join(p.stderr.split()) or f"exit code {p.returncode}"
        raise RunError(f"sacct failed: {msg} (accounting needs slurmdbd: scripts/slurm-cluster up)")
    rows = []
    for line in p.stdout.splitlines():
        values = line.split("|")
        if len(values) == len(fields):
            rows.append(dict(zip(fields, values, strict=True)))
    return rows


def run_rows(run_dir: Path) -> list[dict[str, str]]:
    """sacct rows of every Slurm job of the Toil run whose record folder is ``run_dir`` (the
    ids its toil.log names; for a pilot run, the jobs whose working directory was ``run_dir``)."""
    run_dir = Path(run_dir)
    ids = toil_job_ids(run_dir / "toil.log") if (run_dir / "toil.log").exists() else []
    if ids:
        return sacct_rows(ids)
    since = datetime.fromtimestamp(run_dir.stat().st_mtime) - timedelta(days=1)
    rows = sacct_rows(start=since.strftime("%Y-%m-%dT%H:%M:%S"))
    jobs = {r["JobIDRaw"] for r in rows if r.get("WorkDir") == str(run_dir)}
    return [r for r in rows if r["JobIDRaw"].split(".")[0] in jobs]


def steps(rows: list[dict[str, str]]) -> list[dict]:
    """One record per Slurm job: the job row's request, state and node, the batch step's usage,
    numbers parsed (seconds, bytes); ``step`` is Toil's step name, ``toil_job`` its job number."""
    jobs: dict[str, dict[str, str]] = {}
    batch: dict[str, dict[str, str]] = {}
    for r in rows:
        job, _, step = r["JobIDRaw"].partition(".")
        if not step:
            jobs[job] = r
        elif step == "batch":
            batch[job] = r
    out = []
    for job_id, r in jobs.items():
        b = batch.get(job_id, {})
        m = _TOIL_NAME.match(r.get("JobName", ""))
        cpus = _int(r.get("ReqCPUS"))
        wall = _int(r.get("ElapsedRaw"))
        cpu_s = _duration_s(b.get("TotalCPU") or r.get("TotalCPU"))
        out.append({
            "job_id": job_id,
            "name": r.get("JobName", ""),
            "toil_job": int(m.group(1)) if m else None,
            "step": m.group(2) if m else r.get("JobName", ""),
            "state": r.get("State", ""),
            "exit_code": r.get("ExitCode", ""),
            "node": r.get("NodeList", ""),
            "req_cpus": cpus,
            "req_mem_bytes": _bytes(r.get("ReqMem")),
            "time_limit_s": _limit_s(r.get("TimelimitRaw")),
            "wall_s": wall,
            "cpu_s": cpu_s,
            "cpu_percent_of_request": (round(100 * cpu_s / (wall * cpus), 1)
                                       if cpu_s is not None and wall and cpus else None),
            "max_rss_bytes": _bytes(b.get("MaxRSS")),
            "read_bytes": _bytes(b.get("MaxDiskRead")),
            "written_bytes": _bytes(b.get("MaxDiskWrite")),
            "submit": r.get("Submit", ""), "start": r.get("Start", ""), "end": r.get("End", ""),
            "workdir": r.get("WorkDir", ""),
        })
    return out


def _int(v: str | None) -> int | None:
    return int(v) if v and v.isdigit() else None


def _bytes(v: str | None) -> int | None:
    """'381394944', '66.65M', '1024M', '2Gn' (older per-node suffix) -> bytes; '' -> None."""
    m = re.fullmatch(r"([0-9.]+)([KMGTP]?)[nc]?", (v or "").strip())
    return round(float(m.group(1)) * _UNITS[m.group(2)]) if m else None


def _duration_s(v: str | None) -> float | None:
    """sacct's [D-][HH:]MM:SS[.mmm] -> seconds; '' -> None."""
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", (v or "").strip())
    if not m:
        return None
    d, h, mi, s = m.groups()
    return round(int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi) * 60 + float(s), 3)


def _limit_s(v: str | None) -> int | None:
    """TimelimitRaw is in minutes ('UNLIMITED', 'Partition_Limit' -> None)."""
    n = _int(v)
    return None if n is None else n * 60
