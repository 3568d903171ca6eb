"""NATS as an intake: a real nats-server with JetStream (scripts/nats-server, on its own port and
folder), nats-py publishing, `stellarflow trigger nats` consuming into the ledger (--no-runs: the
runs themselves are the trigger's, tested elsewhere).

- duplicates dropped by Nats-Msg-Id (server) and by the ledger; hostile messages recorded with
  their reason and terminated, never redelivered;
- kill -9 between the ledger commit and the ack: after a restart, one manifest row, message acked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stellarflow_trigger import hostile
from stellarflow_trigger.nats_intake import CRASH_ENV

REPO = Path(__file__).resolve().parents[1]
SUBJECT = "sf.test.manifests"
nats = pytest.importorskip("nats")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    env = dict(os.environ, NATS_PORT=str(free_port()), NATS_HTTP_PORT=str(free_port()),
               NATS_DIR=str(tmp_path_factory.mktemp("nats")))
    up = subprocess.run([str(REPO / "scripts" / "nats-server"), "up"], env=env,
                        capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"scripts/nats-server up failed: {up.stderr or up.stdout}")
    yield f"nats://127.0.0.1:{env['NATS_PORT']}"
    subprocess.run([str(REPO / "scripts" / "nats-server"), "down"], env=env, check=True,
                   capture_output=True)


def intake(server: str, state: Path, data: Path, stream: str, *extra: str,
           env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    log = open(state.parent / f"nats-{stream}.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "stellarflow.cli", "trigger", "nats", "--server", server,
         "--subject", f"{SUBJECT}.{stream}", "--stream", stream, "--state", str(state),
         "--data-root", str(data), "--no-runs", "--ack-wait", "2", "-v", *extra],
        stdout=log, stderr=log, env=dict(os.environ, **(env_extra or {})))


def manifest(obs: str) -> bytes:
    return json.dumps({"manifest_version": 1, "observation_id": obs, "workflow": "sas",
                       "stars": [{"star_id": "s1", "lightcurve": "lc/ok.h5"}]}).encode()


async def publish(server: str, subject: str, bodies: list[bytes],
                  msg_ids: list[str | None] | None = None) -> list[tuple[int, bool]]:
    nc = await nats.connect(server)
    js = nc.jetstream()
    out = []
    for i, data in enumerate(bodies):
        mid = (msg_ids[i] if msg_ids else hashlib.sha256(data).hexdigest())
        ack = await js.publish(subject, data, headers={"Nats-Msg-Id": mid} if mid else None)
        out.append((ack.seq, bool(ack.duplicate)))
    await nc.close()
    return out


async def consumer(server: str, stream: str) -> tuple[int, int, int]:
    nc = await nats.connect(server)
    info = await nc.jetstream().consumer_info(stream, "stellarflow-trigger")
    await nc.close()
    return info.num_pending, info.num_ack_pending, info.num_redelivered


def rows(state: Path) -> list[tuple]:
    db = sqlite3.connect(state / "ledger.sqlite")
    try:
        return db.execute("SELECT id, name, state, reason FROM manifests ORDER BY id").fetchall()
    finally:
        db.close()


def wait(cond, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return
        time.sleep(0.3)
    raise AssertionError("timed out")


def settled(server: str, stream: str) -> bool:
    try:
        pending, ack_pending, _ = asyncio.run(consumer(server, stream))
    except Exception:
        return False
    return pending == 0 and ack_pending == 0


@pytest.fixture
def data(tmp_path: Path) -> Path:
    hostile.prepare(tmp_path / "data", tmp_path / "outside")
    return tmp_path / "data"


def test_duplicates_and_hostile_messages(server: str, tmp_path: Path, data: Path) -> None:
    state, stream = tmp_path / "state", "DUPS"
    proc = intake(server, state, data, stream)
    try:
        wait(lambda: (tmp_path / f"nats-{stream}.log").read_bytes().count(b"consuming") > 0)
        subj = f"{SUBJECT}.{stream}"
        good = manifest("n1")
        acks = asyncio.run(publish(server, subj, [good, good]))
        assert acks[1][1], "the server drops a repeated Nats-Msg-Id"
        # same bytes under another id (outside any window): the ledger drops it
        asyncio.run(publish(server, subj, [good], [None]))
        bodies = []
        for _, _, content in hostile.CASES.values():
            if content is None:
                continue  # file-system cases (symlink, fifo, directory): no message form
            body = json.dumps(content).encode() if isinstance(content, dict) else (
                content.encode() if isinstance(content, str) else content)
            if len(body) < 1024 * 1024:
                bodies.append(body)
        bodies.append(b"x" * 10)  # not a manifest at all
        mismatched = manifest("n2")
        asyncio.run(publish(server, subj, bodies))
        asyncio.run(publish(server, subj, [mismatched], ["not-its-sha"]))
        n_bad = len(set(bodies)) + 1  # every distinct hostile body, and the mismatched id
        wait(lambda: settled(server, stream))
        got = rows(state)
        good_rows = [r for r in got if r[2] == "queued"]
        bad_rows = [r for r in got if r[2] == "failed"]
        assert len(good_rows) == 1, got
        assert len(bad_rows) == n_bad and all(r[3] for r in bad_rows), bad_rows
        assert any("Nats-Msg-Id" in r[3] for r in bad_rows)
        assert all("\n" not in r[3] for r in bad_rows)
        time.sleep(3)  # longer than ack-wait: a terminated message would be back by now
        assert asyncio.run(consumer(server, stream))[2] == 0, "nothing redelivered"
        assert rows(state) == got
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_kill9_between_commit_and_ack(server: str, tmp_path: Path, data: Path) -> None:
    state, stream = tmp_path / "state", "KILL"
    proc = intake(server, state, data, stream, env_extra={CRASH_ENV: "1"})
    wait(lambda: (tmp_path / f"nats-{stream}.log").read_bytes().count(b"consuming") > 0)
    asyncio.run(publish(server, f"{SUBJECT}.{stream}", [manifest("k1")]))
    assert proc.wait(timeout=60) == -signal.SIGKILL  # died after the commit, before the ack
    assert [r[2] for r in rows(state)] == ["queued"]
    assert asyncio.run(consumer(server, stream))[1] == 1, "the message is still unacked"
    proc = intake(server, state, data, stream)  # restarted, no crash this time
    try:
        wait(lambda: settled(server, stream))
        assert [r[2] for r in rows(state)] == ["queued"], "exactly one manifest row"
        log = (tmp_path / f"nats-{stream}.log").read_text()
        assert "already in the ledger" in log
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
