"""stellarflow.progress: steps per chunk and module from a Toil log, totals from the workflow, and
the plain lines `stellarflow run` prints when stderr is not a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

from stellarflow import progress

REPO = Path(__file__).resolve().parents[1]
SAS = REPO / "cwl" / "workflows" / "sas.cwl"


def line(t: str, text: str) -> str:
    return f"[2026-12-01T10:00:{t}+0000] [MainThread] [I] [toil.leader] {text}"


def issued(t: str, step: str, inst: str) -> str:
    return line(t, f"Issued job 'CWLJob' {step} kind-CWLJob/instance-{inst} v1 with job batch "
                   "system ID: 3 and disk: 1 Gi, memory: 1 Gi, cores: 1")


def done(t: str, step: str) -> str:
    return line(t, f"Got message from job at time x: CWL step complete: {step}")


LOG = "\n".join([
    issued("02", "sas_chunk.ingest.ingest", "aaa"),
    issued("02", "sas_chunk.ingest.ingest", "bbb"),
    done("04", "sas_chunk.ingest.ingest"),
    issued("05", "sas_chunk.msap1.msap1_preparation", "ccc"),
    line("09", "Job failed with exit value 1: 'CWLJob' sas_chunk.msap1.msap1_preparation "
               "kind-CWLJob/instance-ccc v1"),
    line("09", 'Log from job "kind-CWLJob/instance-ccc" follows:'),
    "=========>",
    "Traceback (most recent call last):",
    "ValueError: no finite flux",
    "<=========",
])


def test_parse_tasks_and_failures() -> None:
    p = progress.parse(LOG, total=16, now=1796119210.0)
    names = [(t.name, t.chunk, t.state) for t in p.tasks]
    assert names == [("ingest", 1, "COMPLETE"),
                     ("ingest", 2, "RUNNING"),
                     ("msap1_preparation", 1, "EXECUTOR_ERROR")]
    failed = p.tasks[-1]
    assert failed.exit_code == 1 and failed.end - failed.start == 4
    assert failed.stderr_tail[-1] == "ValueError: no finite flux"
    assert (p.done, p.failed, p.running, p.total) == (1, 1, 1, 16)
    assert p.eta_s is not None and p.eta_s > 0
    assert "steps 1/16 done, 1 running, 1 failed" in p.line()


def test_total_from_the_workflow() -> None:
    # the catalogue, and 7 tool steps per chunk (MSAP3 included)
    assert progress.count_steps(SAS, 1) == 8
    assert progress.count_steps(SAS, 3) == 22


def test_plain_lines_when_not_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "job.json").write_text(json.dumps({"chunk_size": 1, "stars": [{}, {}]}))
    (tmp_path / "runner.log").write_text(LOG)
    out = io.StringIO()
    with progress.Reporter(tmp_path, SAS, stream=out, tty=False, every=0) as rep:
        rep.update()
        rep.update()  # same counts: no second line
        (tmp_path / "runner.log").write_text(LOG + "\n" + done("10",
                                             "sas_chunk.ingest.ingest"))
        rep.update(finished=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("progress: steps 1/15 done, 1 running, 1 failed, ETA ")
    assert lines[1] == "progress: steps 2/3 done, 0 running, 1 failed"  # finished: no ETA
