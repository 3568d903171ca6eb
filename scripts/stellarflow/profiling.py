"""Per-step profiling: requested (from the CWL, or what Slurm granted) against used.

One JSON line per step execution (``OUTDIR/<obs>/provenance/profile.jsonl`` and
``RUN_DIR/profile.jsonl``), flat enough for an ELK stack (``@timestamp`` is the step's end):
what the tool asked for (cores, RAM, tmpdir, outdir, time limit) and what it used (wall, CPU
seconds, CPU % of the cores requested, max RSS and its % of the RAM requested, bytes read and
written). Used values are measured in the container (the step profile of
stellarflow_contracts.profile) for local runs, and taken from Slurm's accounting (sacct, through
stellarflow.slurm_accounting) for Slurm runs, where the container's own figures stay beside them.

``stellarflow profile RUN...`` prints the table per tool over one or more runs and suggests
ResourceRequirement values (the 95th percentile of what was used plus a margin) for the tools
that ask for far more, or less, than they use.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import InputError

LINES = "profile.jsonl"
RECORD = "stellarflow-step-usage"
# key -> (unit, what); also the names of the crate's resourceUsage PropertyValues.
USAGE_FIELDS = {
    "wall_s": ("s", "wall time of the step's process"),
    "cpu_s": ("s", "CPU time, user + system"),
    "cpu_percent_of_request": ("%", "CPU time / (wall x cores requested)"),
    "max_rss_bytes": ("B", "largest resident memory"),
    "max_rss_percent_of_request": ("%", "largest resident memory / RAM requested"),
    "read_bytes": ("B", "bytes read (read/write system calls, page cache included)"),
    "written_bytes": ("B", "bytes written (read/write system calls, page cache included)"),
    "cores": ("", "cores"),
    "ram_bytes": ("B", "RAM"),
    "tmpdir_bytes": ("B", "temporary disk space"),
    "outdir_bytes": ("B", "output disk space"),
    "time_limit_s": ("s", "time limit"),
}
PERCENTILE = 95
MARGIN = 1.25        # suggested = percentile x margin
FAR_BELOW = 0.5      # used/requested under this: asks for far more than it uses
RAM_STEP = 64 * 2**20
MIN_TIME_LIMIT_S = 600


def parse_time(t: str | None) -> datetime | None:
    """A UTC timestamp of a step profile, or sacct's local time, as an aware datetime."""
    if not t or t in ("Unknown", "None"):
        return None
    try:
        d = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else d.astimezone()  # sacct prints the local time


SACCT_SLACK_S = 1.5  # sacct's whole seconds around the step's own clock readings


def match_sacct(steps: list[dict], sacct_steps: list[dict]) -> dict[int, dict]:
    """Step record index -> the Slurm job it ran in, each job used once: a job named after
    the step's tool (Toil names jobs after the CWL step) whose [Start, End] holds the step's
    process (a maximum matching, so concurrent chunks of one tool cannot take each other's
    job); then, for a step left over, the named job that overlaps it most; then the shortest
    unnamed job that holds it (a pilot's or another runner's job)."""
    from .provenance import step_tool

    def span(start: object, end: object) -> tuple[float, float] | None:
        s, e = parse_time(start), parse_time(end)  # type: ignore[arg-type]
        return None if s is None or e is None else (s.timestamp(), e.timestamp())

    recs = {i: span(r.get("start_utc"), r.get("end_utc")) for i, r in enumerate(steps)}
    jobs = [(job, span(job.get("start"), job.get("end"))) for job in sacct_steps]
    jobs = [(job, sp) for job, sp in jobs if sp is not None]

    def holds(j: tuple[float, float], r: tuple[float, float]) -> bool:
        return j[0] - SACCT_SLACK_S <= r[0] and r[1] <= j[1] + SACCT_SLACK_S

    named = {i: [k for k, (job, sp) in enumerate(jobs)
                 if step_tool(steps[i]) and step_tool(steps[i]) in job.get("name", "")]
             for i, r in recs.items() if r is not None}
    owner: dict[int, int] = {}  # job index -> step index

    def augment(i: int, seen: set[int]) -> bool:
        for k in named[i]:
            if k in seen or not holds(jobs[k][1], recs[i]):  # type: ignore[arg-type]
                continue
            seen.add(k)
            if k not in owner or augment(owner[k], seen):
                owner[k] = i
                return True
        return False

    for i in named:
        augment(i, set())
    found = {i: jobs[k][0] for k, i in owner.items()}
    for i in named:
        if i in found:
            continue
        r = recs[i]
        free = [(min(jobs[k][1][1], r[1]) - max(jobs[k][1][0], r[0]), k)  # type: ignore[index]
                for k in named[i] if k not in owner]
        free = [(ov, k) for ov, k in free if ov > 0]
        if free:
            k = max(free)[1]
            owner[k] = i
            found[i] = jobs[k][0]
    for i, r in recs.items():
        if i in found or r is None:
            continue
        cands = [(sp[1] - sp[0], k) for k, (job, sp) in enumerate(jobs)
                 if k not in owner and holds(sp, r)]
        if cands:
            k = min(cands)[1]
            owner[k] = i
            found[i] = jobs[k][0]
    return found


def _pct(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 1)


def step_line(rec: dict, req: dict, slurm: dict | None, *, info: Any, step: Any) -> dict:
    """The profile line of one step execution (see the module doc)."""
    from .provenance import step_chunk, step_tool

    container = {k: rec.get(k) for k in ("wall_s", "cpu_s", "cpu_user_s", "cpu_system_s",
                                         "max_rss_bytes", "read_bytes", "written_bytes",
                                         "storage_read_bytes", "storage_written_bytes")}
    requested = dict(req)
    if slurm:
        source = "slurm"
        requested.update({"cores": slurm.get("req_cpus") or req.get("cores"),
                          "ram_bytes": slurm.get("req_mem_bytes") or req.get("ram_bytes"),
                          "time_limit_s": slurm.get("time_limit_s") or req.get("time_limit_s")})
        used = {k: slurm.get(k) for k in ("wall_s", "cpu_s", "max_rss_bytes", "read_bytes",
                                          "written_bytes")}
    else:
        source = "container"
        used = {k: container[k] for k in ("wall_s", "cpu_s", "max_rss_bytes", "read_bytes",
                                          "written_bytes")}
    wall, cores = used.get("wall_s"), requested.get("cores")
    used["cpu_percent_of_request"] = (_pct(used.get("cpu_s"), wall * cores)
                                      if wall and cores else None)
    used["max_rss_percent_of_request"] = _pct(used.get("max_rss_bytes"),
                                              requested.get("ram_bytes"))
    line = {
        "@timestamp": rec.get("end_utc"), "record": RECORD,
        "run": info.run_dir.name, "observation_id": info.observation_id,
        "workflow": info.workflow, "runner": info.runner, "site": info.site,
        "step": step.name if step is not None else step_tool(rec), "tool": step_tool(rec),
        "chunk": step_chunk(rec), "module": rec.get("module"),
        "module_version": rec.get("module_version"), "image": rec.get("image"),
        "image_digest": rec.get("image_digest"), "host": rec.get("host"),
        "start_utc": rec.get("start_utc"), "end_utc": rec.get("end_utc"),
        "exit_status": rec.get("exit_status"), "source": source,
        "requested": requested, "used": used, "container": container,
    }
    if rec.get("fake_of"):
        line["fake_of"] = rec["fake_of"]
    if slurm:
        line["slurm"] = {k: slurm.get(k) for k in (
            "job_id", "name", "node", "state", "exit_code", "req_cpus", "req_mem_bytes",
            "time_limit_s", "wall_s", "cpu_s", "cpu_percent_of_request", "max_rss_bytes",
            "read_bytes", "written_bytes", "start", "end")}
    return line


def write_lines(lines: list[dict], *paths: Path) -> None:
    text = "".join(json.dumps(ln, separators=(",", ":")) + "\n" for ln in lines)
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


# ------------------------------------------------------------------ stellarflow profile

def find_lines(path: Path) -> Path:
    """profile.jsonl of a run folder, an output folder (OUTDIR/<obs>) or the file itself."""
    path = Path(path)
    for cand in (path, path / LINES, path / "provenance" / LINES):
        if cand.is_file():
            return cand
    raise InputError(path, "no step profile here (expected a run folder "
                           "OUTDIR/.stellarflow/runs/<run>, an output folder OUTDIR/<obs> or "
                           f"a {LINES}; a run made with {'STELLARFLOW_PROVENANCE=0'} has none)")


def load_lines(path: Path) -> list[dict]:
    p = find_lines(path)
    out = []
    for n, text in enumerate(p.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            out.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InputError(p, f"line {n}: not JSON ({exc.msg})") from None
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0-100) of the values (None when there are none)."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    k = max(math.ceil(q / 100 * len(vals)) - 1, 0)
    return vals[k]


def per_tool(lines: list[dict]) -> dict[str, dict]:
    tools: dict[str, dict] = {}
    for ln in lines:
        t = tools.setdefault(ln.get("tool") or "?", {"n": 0, "lines": []})
        t["n"] += 1
        t["lines"].append(ln)
    for t in tools.values():
        ls = t["lines"]
        req = ls[-1].get("requested") or {}
        t["requested"] = req
        t["source"] = ",".join(sorted({ln.get("source", "?") for ln in ls}))
        for key in ("wall_s", "cpu_s", "max_rss_bytes", "read_bytes", "written_bytes",
                    "cpu_percent_of_request"):
            vals = [(ln.get("used") or {}).get(key) for ln in ls]
            t[f"p{PERCENTILE}_{key}"] = percentile(vals, PERCENTILE)
            t[f"max_{key}"] = max((v for v in vals if v is not None), default=None)
            t[f"sum_{key}"] = sum(v for v in vals if v is not None)
        cores_used = [(ln.get("used") or {}).get("cpu_s", 0) / ln["used"]["wall_s"]
                      for ln in ls if (ln.get("used") or {}).get("wall_s")]
        t[f"p{PERCENTILE}_cores_used"] = percentile(cores_used, PERCENTILE)
    return tools


def suggest(tools: dict[str, dict]) -> list[dict]:
    """ResourceRequirement values for tools that ask far more (or less) than they use."""
    out = []
    for name, t in sorted(tools.items()):
        req = t["requested"]
        rss = t.get(f"p{PERCENTILE}_max_rss_bytes")
        ram = req.get("ram_bytes")
        if rss and ram:
            want = max(math.ceil(rss * MARGIN / RAM_STEP) * RAM_STEP, RAM_STEP)
            ratio = t["max_max_rss_bytes"] / ram
            if ratio < FAR_BELOW or ratio > 1.0:
                out.append({"tool": name, "key": "ramMin", "requested": round(ram / 2**20),
                            "suggested": round(want / 2**20),
                            "why": f"p{PERCENTILE} max RSS {rss / 2**20:.0f} MiB, at most "
                                   f"{100 * ratio:.0f} % of the {ram / 2**20:.0f} MiB asked"})
        cores_used = t.get(f"p{PERCENTILE}_cores_used")
        cores = req.get("cores")
        if cores_used is not None and cores:
            want_c = max(math.ceil(cores_used * MARGIN - 0.05), 1)
            # A process a little over its core (threads, GC: 1.02 of 1) is not asking for two.
            if want_c != cores and (cores_used / cores < FAR_BELOW or cores_used > cores * MARGIN):
                out.append({"tool": name, "key": "coresMin", "requested": cores,
                            "suggested": want_c,
                            "why": f"p{PERCENTILE} CPU use {cores_used:.2f} cores of the "
                                   f"{cores} asked"})
        wall = t.get(f"p{PERCENTILE}_wall_s")
        limit = req.get("time_limit_s")
        if wall and limit and (t["max_wall_s"] / limit < FAR_BELOW / 10 or
                               t["max_wall_s"] > limit):
            # On Slurm the limit is the site profile's slurmTime, else the CWL's ToolTimeLimit.
            key = "slurmTime" if "slurm" in t["source"] else "ToolTimeLimit"
            out.append({"tool": name, "key": key, "requested": limit,
                        "suggested": max(math.ceil(wall * 3 / 60) * 60, MIN_TIME_LIMIT_S),
                        "why": f"p{PERCENTILE} wall {wall:.0f} s against a {limit:.0f} s limit"
                               f" (3x the wall, at least {MIN_TIME_LIMIT_S} s: runs vary more "
                               "in time than in memory)"})
    return out


def _mib(v: float | None) -> str:
    return "-" if v is None else f"{v / 2**20:.0f}"


def _num(v: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def render(tools: dict[str, dict], runs: list[str]) -> str:
    head = ("tool", "n", "source", "cores", "cpu_s", f"cpu%req p{PERCENTILE}", "ram_MiB",
            f"rss_MiB p{PERCENTILE}", "rss_MiB max", "read_MiB", "written_MiB",
            f"wall_s p{PERCENTILE}", "limit_s")
    rows = [head]
    for name, t in sorted(tools.items()):
        req = t["requested"]
        rows.append((name, str(t["n"]), t["source"], _num(req.get("cores"), "{:g}"),
                     _num(t["sum_cpu_s"]), _num(t[f"p{PERCENTILE}_cpu_percent_of_request"]),
                     _mib(req.get("ram_bytes")), _mib(t[f"p{PERCENTILE}_max_rss_bytes"]),
                     _mib(t["max_max_rss_bytes"]), _mib(t["sum_read_bytes"]),
                     _mib(t["sum_written_bytes"]), _num(t[f"p{PERCENTILE}_wall_s"]),
                     _num(req.get("time_limit_s"), "{:.0f}")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"profile of {', '.join(runs)}: {sum(t['n'] for t in tools.values())} step runs"]
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stellarflow profile", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="run folder (OUTDIR/.stellarflow/runs/<run>), output folder "
                        "(OUTDIR/<obs>) or profile.jsonl; several pool their steps")
    p.add_argument("--json", action="store_true", help="the per-tool figures and suggestions")
    p.add_argument("--steps", action="store_true", help="also one row per step execution")
    p.add_argument("--sacct", action="store_true",
                   help="also the sacct rows a Slurm run's figures came from (RUN_DIR/sacct.json)")
    args = p.parse_args(argv)
    lines: list[dict] = []
    for r in args.runs:
        lines += load_lines(r)
    tools = per_tool(lines)
    advice = suggest(tools)
    if args.json:
        print(json.dumps({"tools": {k: {kk: vv for kk, vv in v.items() if kk != "lines"}
                                    for k, v in tools.items()}, "suggestions": advice},
                         indent=1))
        return 0
    print(render(tools, [str(r) for r in args.runs]))
    if args.steps:
        print("\nsteps:")
        for ln in lines:
            u, q = ln.get("used") or {}, ln.get("requested") or {}
            print(f"  {ln.get('step', '?'):<14} {ln.get('chunk') or '-':<11} "
                  f"{ln.get('source', '?'):<9} wall {_num(u.get('wall_s'))} s  cpu "
                  f"{_num(u.get('cpu_s'))} s ({_num(u.get('cpu_percent_of_request'))} % of "
                  f"{_num(q.get('cores'), '{:g}')})  rss {_mib(u.get('max_rss_bytes'))} MiB "
                  f"({_num(u.get('max_rss_percent_of_request'))} % of "
                  f"{_mib(q.get('ram_bytes'))})  exit {ln.get('exit_status')}")
    if args.sacct:
        for r in args.runs:
            rows = sacct_file_rows(r)
            print(f"\nsacct rows used for {r}: " + ("none (not a Slurm run)" if not rows else ""))
            for row in rows:
                print("  " + "|".join(row.values()))
    print("\nsuggested ResourceRequirement values (p95 of used x "
          f"{MARGIN}; tools asking for < {FAR_BELOW:.0%} or > 100 % of what they use):")
    if not advice:
        print("  none: every tool asks for about what it uses")
    for a in advice:
        print(f"  {a['tool']}: {a['key']} {a['requested']} -> {a['suggested']}  ({a['why']})")
    return 0


def sacct_file_rows(run: Path) -> list[dict]:
    """The sacct rows saved with a Slurm run (RUN_DIR/sacct.json)."""
    run = Path(run)
    for cand in (run / "sacct.json", run / "provenance" / "sacct.json"):
        if cand.is_file():
            return json.loads(cand.read_text())
    return []


if __name__ == "__main__":
    sys.exit(main())
