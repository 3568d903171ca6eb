"""The step profile: what one run of a module used, measured inside its container.

Every module run through :func:`stellarflow_contracts.chunk.module_main` writes, after its
outputs, ``<prefix>.profile.json`` into its output folder (``<prefix>`` is its summary's, e.g.
``chunk-0000.rotation``; the module's name when it writes no summary). The CWL tool returns it
as its ``profile`` output, and the host turns the records of a run into the run's RO-Crate and
profile (docs/provenance.md). The C library writes the same record (sf_profile.c).

What it measures (Linux):
- ``start_utc``: when the process started (``/proc/self/stat``), so imports count;
  ``end_utc`` and ``wall_s`` (end - start);
- ``cpu_user_s``, ``cpu_system_s``, ``cpu_s``: getrusage of the process and its waited-for
  children; ``max_rss_bytes``: the larger of their ru_maxrss;
- ``read_bytes``, ``written_bytes``: ``/proc/self/io`` rchar/wchar (every byte through
  read/write, page cache included: what Slurm's MaxDiskRead/Write count), and
  ``storage_read_bytes``, ``storage_written_bytes`` (read_bytes/write_bytes: what reached the
  block layer);
- ``inputs`` (the option, file name and size of every input file on the command line) and
  ``outputs`` (name and size of every file it left in its output folder).

Timings live only here: the step summary stays free of them (the tests compare summaries).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import resource
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from . import __version__ as CONTRACTS_VERSION

RECORD = "stellarflow-step-profile"
RECORD_VERSION = 1
SUFFIX = ".profile.json"
SUMMARY_SUFFIX = ".summary.json"


def utc(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def process_start_time() -> float:
    """Epoch seconds at which this process started (falls back to now off Linux)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime since boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


def io_counters() -> dict[str, int | None]:
    """rchar/wchar/read_bytes/write_bytes of this process (and its waited-for children)."""
    fields: dict[str, int] = {}
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = int(value)
    except (OSError, ValueError):
        pass
    return {"read_bytes": fields.get("rchar"), "written_bytes": fields.get("wchar"),
            "storage_read_bytes": fields.get("read_bytes"),
            "storage_written_bytes": fields.get("write_bytes")}


def usage() -> dict[str, float | int]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime
    return {"cpu_user_s": round(user, 3), "cpu_system_s": round(system, 3),
            "cpu_s": round(user + system, 3),
            "max_rss_bytes": max(me.ru_maxrss, kids.ru_maxrss) * 1024}  # Linux: KiB


def _files(entries: Iterable[tuple]) -> list[dict]:
    """[{name, size, option?, star_id?}] for (option, path[, star_id]) entries."""
    out = []
    for option, path, *rest in entries:
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError:
            size = None
        item: dict[str, object] = {"name": path.name, "size": size}
        if option:
            item["option"] = option
        if rest and rest[0]:
            item["star_id"] = rest[0]
        out.append(item)
    return out


def record_name(outdir: Path, module: str) -> str:
    """``<prefix>.profile.json`` after the summary the module wrote (one per tool)."""
    summaries = sorted(p.name for p in outdir.glob(f"*{SUMMARY_SUFFIX}"))
    prefix = summaries[0][: -len(SUMMARY_SUFFIX)] if summaries else module
    return prefix + SUFFIX


def output_files(outdir: Path, exclude: str) -> list[Path]:
    """Every regular, visible file the step left in its output folder (top level)."""
    try:
        entries = sorted(outdir.iterdir())
    except OSError:
        return []
    return [p for p in entries if p.is_file() and not p.name.startswith(".")
            and p.name != exclude]


def build(*, module: str, version: str, exit_status: int, started: float, ended: float,
          inputs: Iterable[tuple], outdir: Path, name: str,
          extra: dict | None = None) -> dict:
    """The record (see the module docstring); ``extra``: more keys (e.g. a fake's fake_of)."""
    return {
        "record": RECORD, "record_version": RECORD_VERSION,
        "module": module, "module_version": version, "contracts_version": CONTRACTS_VERSION,
        "image": os.environ.get("STELLARFLOW_IMAGE", "none (no container)"),
        "image_digest": os.environ.get("STELLARFLOW_IMAGE_HASH", ""),
        "host": socket.gethostname(), "pid": os.getpid(),
        "start_utc": utc(started), "end_utc": utc(ended), "wall_s": round(ended - started, 3),
        **usage(), **io_counters(),
        "exit_status": int(exit_status),
        "inputs": _files(inputs),
        "outputs": _files((None, p) for p in output_files(outdir, name)),
        **(extra or {}),
    }


def write(*, module: str, version: str, exit_status: int, inputs: Iterable[tuple],
          outdir: Path, started: float | None = None, extra: dict | None = None) -> Path | None:
    """Write the step's profile into ``outdir``; None when the folder cannot be written (a
    profile never turns a finished step into a failed one)."""
    outdir = Path(outdir)
    name = record_name(outdir, module)
    rec = build(module=module, version=version, exit_status=exit_status,
                started=process_start_time() if started is None else started, ended=time.time(),
                inputs=list(inputs), outdir=outdir, name=name, extra=extra)
    path = outdir / name
    try:
        path.write_text(json.dumps(rec, indent=1) + "\n")
    except OSError:
        return None
    return path


def input_files(values: dict[str, object]) -> list[tuple[str | None, Path]]:
    """(option, path) for every argument value that is an existing file (argparse's dests)."""
    found: list[tuple[str | None, Path]] = []
    for key, value in values.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (str, Path)) and key != "outdir":
                p = Path(v)
                try:
                    if p.is_file():
                        found.append((key, p))
                except OSError:
                    continue
    return found


_NOTED: list[tuple[str | None, Path, str | None]] = []


def note_input(path: str | Path, option: str | None = None, star_id: str | None = None) -> None:
    """Record an input file the command line does not name (e.g. the light curves ingest reads
    from its chunk JSON), with the star it belongs to."""
    _NOTED.append((option, Path(path), star_id))


def noted_inputs() -> list[tuple[str | None, Path, str | None]]:
    return list(_NOTED)
