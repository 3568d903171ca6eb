"""Progress of a run from its runner's log: the steps (per chunk and module) issued, done, failed.

Toil logs each job it issues ("Issued job 'CWLJob' <step> kind-CWLJob/instance-<id> ...") and each
CWL step that completes ("CWL step complete: <step>"); cwltool logs "[step <name>] start" and
"[step <name>] completed <status>". Chunks are numbered by the order their step was issued; a
completion is matched to the oldest open task of that step (the log does not say which chunk
completed, so two chunks finishing out of order swap their end times). The total is counted from
the workflow: every tool step, those under a scatter once per chunk. A conditional step that is
skipped never runs, so a finished run is shown complete whatever the count said.
"""

from __future__ import annotations

import calendar
import functools
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STAMP = r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4})\]"
TOIL_ISSUED = re.compile(STAMP + r".*Issued job '[^']*' (\S+) kind-[^/\s]+/instance-(\S+)")
TOIL_DONE = re.compile(STAMP + r".*CWL step complete: (\S+)")
TOIL_FAILED = re.compile(STAMP + r".*Job failed with exit value (-?\d+): '[^']*' (\S+) "
                                 r"kind-[^/\s]+/instance-(\S+)")
TOIL_LOG_START = re.compile(r"Log from job \"?kind-[^/\s]+/instance-([\w-]+)")
CWLTOOL = re.compile(r"^(?:\S+ )?(?:INFO|WARNING|ERROR)?\s*\[step (\S+)\] (start|completed (\w+))")
TAIL_LINES = 20


@dataclass
class Task:
    id: str
    name: str             # the tool step, e.g. msap1_preparation
    step: str             # the full step path in the log
    chunk: int            # 1-based, by issue order of this step
    start: float | None = None
    end: float | None = None
    exit_code: int | None = None
    state: str = "RUNNING"  # RUNNING | COMPLETE | EXECUTOR_ERROR
    stderr_tail: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    done: int
    failed: int
    running: int
    total: int
    started: float | None
    eta_s: float | None
    tasks: list[Task]
    finished: bool = False

    def line(self) -> str:
        eta = "" if self.eta_s is None else f", ETA {fmt_duration(self.eta_s)}"
        bad = f", {self.failed} failed" if self.failed else ""
        return f"steps {self.done}/{self.total} done, {self.running} running{bad}{eta}"


def fmt_duration(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else \
        (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


def _t(stamp: str) -> float:
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - _offset(stamp[19:])


def _offset(tz: str) -> float:
    sign = -1 if tz.startswith("-") else 1
    return sign * (int(tz[1:3]) * 3600 + int(tz[3:5]) * 60)


def count_steps(cwl: Path, n_chunks: int) -> int:
    """Tool steps a run of ``cwl`` has; steps under a scatter count once per chunk."""
    p = Path(cwl)
    try:
        mtime = p.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _count_steps(str(p), n_chunks, mtime)


@functools.lru_cache(maxsize=256)
def _count_steps(cwl_path: str, n_chunks: int, _mtime: float) -> int:
    from ruamel.yaml import YAML

    cwl = Path(cwl_path)

    def walk(path: Path, mult: int, depth: int) -> int:
        if depth > 8:
            return 0
        try:
            doc = YAML(typ="safe", pure=True).load(path.read_text())
        except Exception:
            return 0
        if not isinstance(doc, dict) or doc.get("class") != "Workflow":
            return mult
        steps = doc.get("steps") or {}
        items = steps.items() if isinstance(steps, dict) else \
            ((s.get("id"), s) for s in steps if isinstance(s, dict))
        n = 0
        for _, st in items:
            run = st.get("run") if isinstance(st, dict) else None
            m = mult * (n_chunks if isinstance(st, dict) and st.get("scatter") else 1)
            if isinstance(run, str):
                n += walk((path.parent / run).resolve(), m, depth + 1)
            elif isinstance(run, dict) and run.get("class") == "Workflow":
                n += m * len(run.get("steps") or ())
            else:
                n += m
        return n

    return walk(Path(cwl), 1, 0)


def n_chunks(job: dict[str, Any]) -> int:
    stars = len(job.get("stars") or ())
    size = int(job.get("chunk_size") or 12)
    return max(1, math.ceil(stars / max(size, 1)))


def parse(log_text: str, total: int, finished: bool = False,
          now: float | None = None) -> Progress:
    tasks: dict[str, Task] = {}
    order: list[str] = []
    issued_per_step: dict[str, int] = {}
    open_by_step: dict[str, list[str]] = {}
    capture: str | None = None
    started = None
    for line in log_text.splitlines():
        if capture is not None:
            if "<=========" in line:
                capture = None
            elif capture in tasks:
                tail = tasks[capture].stderr_tail
                tail.append(line.rstrip()[-300:])
                del tail[:-TAIL_LINES]
            continue
        m = TOIL_ISSUED.match(line)
        if m:
            stamp, step, inst = m.groups()
            t = _t(stamp)
            started = started or t
            k = issued_per_step.get(step, 0) + 1
            issued_per_step[step] = k
            if inst not in tasks:
                tasks[inst] = Task(id=inst, name=step.rsplit(".", 1)[-1], step=step, chunk=k,
                                   start=t)
                order.append(inst)
                open_by_step.setdefault(step, []).append(inst)
            continue
        m = TOIL_DONE.match(line)
        if m:
            stamp, step = m.groups()
            t = _t(stamp)
            started = started or t
            queue = open_by_step.get(step) or []
            if queue:
                task = tasks[queue.pop(0)]
            else:  # completed without an issue line (e.g. run inside another job)
                k = issued_per_step.get(step, 0) + 1
                issued_per_step[step] = k
                inst = f"{step}-{k}"
                task = tasks[inst] = Task(id=inst, name=step.rsplit(".", 1)[-1], step=step,
                                          chunk=k, start=t)
                order.append(inst)
            task.end, task.exit_code, task.state = t, 0, "COMPLETE"
            continue
        m = TOIL_FAILED.match(line)
        if m:
            stamp, code, step, inst = m.groups()
            task = tasks.get(inst)
            if task is not None:
                task.end, task.exit_code, task.state = _t(stamp), int(code), "EXECUTOR_ERROR"
                q = open_by_step.get(task.step) or []
                if inst in q:
                    q.remove(inst)
            continue
        m = TOIL_LOG_START.search(line)
        if m:
            capture = m.group(1)
            continue
        m = CWLTOOL.match(line)
        if m:
            name, what, status = m.groups()
            if what == "start":
                k = issued_per_step.get(name, 0) + 1
                issued_per_step[name] = k
                inst = f"{name}-{k}"
                tasks[inst] = Task(id=inst, name=name, step=name, chunk=k, start=None)
                order.append(inst)
                open_by_step.setdefault(name, []).append(inst)
            else:
                q = open_by_step.get(name) or []
                if q:
                    task = tasks[q.pop(0)]
                    ok = status == "success"
                    task.exit_code = 0 if ok else 1
                    task.state = "COMPLETE" if ok else "EXECUTOR_ERROR"
    listed = [tasks[i] for i in order]
    done = sum(t.state == "COMPLETE" for t in listed)
    failed = sum(t.state == "EXECUTOR_ERROR" for t in listed)
    running = sum(t.state == "RUNNING" for t in listed)
    total = max(total, done + failed + running)
    if finished:
        total = done + failed
        running = 0
    eta = None
    now = time.time() if now is None else now
    if started is not None and 0 < done < total and not finished:
        eta = (now - started) / done * (total - done)
    return Progress(done=done, failed=failed, running=running, total=total, started=started,
                    eta_s=eta, tasks=listed, finished=finished)


def read(run_dir: Path, cwl: Path | None = None, finished: bool = False) -> Progress:
    """Progress of the run in ``run_dir`` (runner.log, job.json; the workflow for the total)."""
    import json

    run_dir = Path(run_dir)
    try:
        text = (run_dir / "runner.log").read_text(errors="replace")
    except OSError:
        text = ""
    total = 0
    if cwl is not None:
        try:
            job = json.loads((run_dir / "job.json").read_text())
            total = count_steps(cwl, n_chunks(job))
        except (OSError, ValueError):
            total = 0
    return parse(text, total, finished=finished)


class Reporter:
    """Shows a run's progress while it runs: a rich bar on a terminal, plain lines otherwise
    (one when the count changes, at most one every ``every`` seconds)."""

    def __init__(self, run_dir: Path, cwl: Path, stream: Any = None, every: float = 10.0,
                 tty: bool | None = None) -> None:
        import sys

        self.run_dir, self.cwl = Path(run_dir), Path(cwl)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every
        self._last: tuple[int, int] | None = None
        self._last_t = 0.0
        self._bar: Any = None
        self._task: Any = None
        self._total: int | None = None

    def __enter__(self) -> Reporter:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("steps"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(),
                                 console=Console(file=self.stream), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task("run", total=None)
        return self

    def update(self, finished: bool = False) -> Progress:
        if self._total is None:
            import json

            try:
                job = json.loads((self.run_dir / "job.json").read_text())
                self._total = count_steps(self.cwl, n_chunks(job))
            except (OSError, ValueError):
                self._total = 0
        try:
            text = (self.run_dir / "runner.log").read_text(errors="replace")
        except OSError:
            text = ""
        p = parse(text, self._total, finished=finished)
        if self._bar is not None:
            self._bar.update(self._task, total=p.total or None, completed=p.done,
                             description=f"run ({p.running} running"
                                         f"{f', {p.failed} failed' if p.failed else ''})")
        else:
            key = (p.done, p.failed)
            t = time.monotonic()
            started = p.done + p.failed + p.running > 0  # nothing before the first step
            if started and key != self._last and (t - self._last_t >= self.every or finished):
                print(f"progress: {p.line()}", file=self.stream, flush=True)
                self._last, self._last_t = key, t
        return p

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
