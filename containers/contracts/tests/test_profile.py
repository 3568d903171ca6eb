"""The step profile (stellarflow_contracts.profile): written by module_main after the outputs,
also when the module fails on a bad input; the same keys as the C library's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stellarflow_contracts import chunk, profile
from stellarflow_contracts.errors import InputError

KEYS = {"record", "record_version", "module", "module_version", "contracts_version", "image",
        "image_digest", "host", "pid", "start_utc", "end_utc", "wall_s", "cpu_user_s",
        "cpu_system_s", "cpu_s", "max_rss_bytes", "read_bytes", "written_bytes",
        "storage_read_bytes", "storage_written_bytes", "exit_status", "inputs", "outputs"}


def _main(argv: list[str], fail: bool = False) -> int:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--prepared", type=Path, required=True)

    def run(args: argparse.Namespace) -> None:
        if fail:
            raise InputError(args.prepared, "not a chunk file")
        (args.outdir / "chunk-0007.probe.h5").write_bytes(b"x" * 10)
        (args.outdir / "chunk-0007.probe.summary.json").write_text("{}\n")
        profile.note_input(args.prepared, "lightcurve", "star1")

    return chunk.module_main(argv, module="probe", version="0.1.0", description="probe",
                             add_arguments=add, run=run)


def test_profile_after_outputs(tmp_path: Path) -> None:
    src = tmp_path / "chunk-0007.prepared.h5"
    src.write_bytes(b"y" * 123)
    out = tmp_path / "out"
    out.mkdir()
    assert _main(["--prepared", str(src), "--outdir", str(out)]) == 0
    rec = json.loads((out / "chunk-0007.probe.profile.json").read_text())
    assert set(rec) == KEYS
    assert rec["record"] == "stellarflow-step-profile" and rec["exit_status"] == 0
    assert rec["module"] == "probe" and rec["module_version"] == "0.1.0"
    assert rec["inputs"][0] == {"name": src.name, "size": 123, "option": "prepared"}
    assert {"name": src.name, "size": 123, "option": "lightcurve", "star_id": "star1"} in \
        rec["inputs"]
    assert [o["name"] for o in rec["outputs"]] == ["chunk-0007.probe.h5",
                                                   "chunk-0007.probe.summary.json"]
    assert rec["wall_s"] >= 0 and rec["cpu_s"] > 0 and rec["max_rss_bytes"] > 1 << 20
    assert rec["start_utc"] <= rec["end_utc"] and rec["read_bytes"] > 0


def test_profile_of_a_failed_step(tmp_path: Path, capsys) -> None:
    src = tmp_path / "bad.h5"
    src.write_bytes(b"")
    assert _main(["--prepared", str(src), "--outdir", str(tmp_path)], fail=True) == 2
    rec = json.loads((tmp_path / "probe.profile.json").read_text())
    assert rec["exit_status"] == 2 and rec["outputs"] == [
        {"name": "bad.h5", "size": 0}]
    assert "not a chunk file" in capsys.readouterr().err
