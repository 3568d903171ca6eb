"""`stellarflow trigger nats`: manifests from a NATS JetStream subject into the ledger.

A durable pull consumer with explicit acks. Each message is a manifest (YAML or JSON) whose
light-curve paths resolve under the data root. The message is acked only after the ledger has
committed it; a message seen again (redelivered after a crash between commit and ack, or
published twice outside the stream's duplicate window) finds its content already in the ledger
and is acked without a second row. Publishers set ``Nats-Msg-Id`` to the manifest's SHA-256, so
the server drops duplicates inside its window too. An invalid or hostile message is recorded as a
failed row with its reason and terminated (``+TERM``): never redelivered.

The process also runs the ledger's work while it holds the state lock (as `stellarflow serve`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from stellarflow.errors import InputError, RunError

from . import submit
from .ledger import Ledger

log = logging.getLogger("stellarflow.trigger.nats")
# Test hook: kill -9 this process right after a ledger commit, before the ack.
CRASH_ENV = "STELLARFLOW_NATS_KILL_AFTER_COMMIT"
MAX_MSG = 4 * 1024 * 1024


def handle(ledger: Ledger, raw: bytes, msg_id: str | None, *, seq: int, stream: str,
           data_root: Path, state: Path) -> tuple[bool, submit.Submitted]:
    """Record one message; (ack it?, the ledger row). False: terminate it (invalid)."""
    sha = submit.sha256(raw)
    suffix = ".json" if raw.lstrip()[:1] in (b"{", b"[") else ".yaml"
    name = f"nats-{stream}-{seq}{suffix}"
    if msg_id is not None and msg_id != sha:
        bad = f"Nats-Msg-Id {msg_id[:80]!r} is not the manifest's SHA-256 ({sha[:12]}...)"
        got = submit.record(ledger, f"# {bad}\n".encode() + raw[:1024], sha=submit.sha256(
            b"bad-msg-id:" + raw), name=name, data_root=data_root, source="nats",
            state_dir=state, reject_invalid=False, reason=bad)
        return False, got
    got = submit.record(ledger, raw, sha=sha, name=name, data_root=data_root, source="nats",
                        state_dir=state, reject_invalid=False)
    row = ledger.one("SELECT state FROM manifests WHERE id=?", got.manifest_id)
    ok = not (got.created and row is not None and row["state"] == "failed")
    return ok, got


async def consume(args: argparse.Namespace, stop: asyncio.Event) -> None:
    import nats
    from nats.js import api
    from nats.js.errors import NotFoundError

    try:  # reconnects are endless once connected; the first connection must come quickly
        nc = await asyncio.wait_for(nats.connect(
            servers=[args.server], name="stellarflow-trigger", max_reconnect_attempts=-1,
            reconnect_time_wait=1), timeout=args.connect_timeout)
    except TimeoutError:
        raise RunError(f"NATS at {args.server}: no connection within {args.connect_timeout:g} s "
                       "(is it up? scripts/nats-server up)") from None
    js = nc.jetstream()
    try:
        await js.stream_info(args.stream)
    except NotFoundError:
        await js.add_stream(api.StreamConfig(name=args.stream, subjects=[args.subject],
                                             duplicate_window=args.duplicate_window,
                                             max_msg_size=MAX_MSG))
    cfg = api.ConsumerConfig(durable_name=args.durable, ack_policy=api.AckPolicy.EXPLICIT,
                             ack_wait=args.ack_wait, max_deliver=-1,
                             filter_subject=args.subject)
    sub = await js.pull_subscribe(args.subject, durable=args.durable, stream=args.stream,
                                  config=cfg)
    ledger = Ledger(args.state)
    log.info("consuming %s (stream %s, durable %s) from %s", args.subject, args.stream,
             args.durable, args.server)
    print(f"stellarflow trigger nats: consuming {args.subject} from {args.server}",
          file=sys.stderr, flush=True)
    try:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(batch=16, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in msgs:
                meta = msg.metadata
                msg_id = (msg.headers or {}).get("Nats-Msg-Id")
                ok, got = handle(ledger, msg.data, msg_id, seq=meta.sequence.stream,
                                 stream=args.stream, data_root=args.data_root, state=args.state)
                if os.environ.get(CRASH_ENV) == "1":
                    os.kill(os.getpid(), signal.SIGKILL)
                if ok:
                    await msg.ack()
                else:
                    await msg.term()
                log.info("message %d -> manifest #%d (%s)%s", meta.sequence.stream,
                         got.manifest_id, "new" if got.created else "already in the ledger",
                         "" if ok else ", invalid: terminated")
    finally:
        ledger.close()
        await nc.close()  # every message handled was acked or terminated already


def nats_errors() -> tuple[type[BaseException], ...]:
    import nats.errors

    return (nats.errors.Error,)


def nats_main(argv: list[str] | None = None) -> int:
    from .wes.server import Runner, add_run_options, service_config

    p = argparse.ArgumentParser(prog="stellarflow trigger nats",
                                description="manifests from a NATS JetStream subject")
    p.add_argument("--server", required=True, help="e.g. nats://127.0.0.1:4222")
    p.add_argument("--subject", required=True, help="subject manifests are published on")
    p.add_argument("--state", type=Path, required=True, help="the trigger's state dir")
    p.add_argument("--data-root", type=Path, required=True,
                   help="folder light-curve paths resolve under")
    p.add_argument("--stream", default="STELLARFLOW", help="JetStream stream (made if missing)")
    p.add_argument("--durable", default="stellarflow-trigger", help="durable consumer name")
    p.add_argument("--ack-wait", type=float, default=30.0,
                   help="seconds before an unacked message is redelivered")
    p.add_argument("--duplicate-window", type=float, default=3600.0,
                   help="seconds the stream drops a repeated Nats-Msg-Id (new stream only)")
    p.add_argument("--connect-timeout", type=float, default=10.0,
                   help="seconds to wait for the first connection (default 10)")
    p.add_argument("-v", "--verbose", action="store_true")
    add_run_options(p)
    args = p.parse_args(argv)
    if not args.data_root.is_dir():
        raise InputError(args.data_root, "data root is not a directory")
    args.state = args.state.resolve()
    args.data_root = args.data_root.resolve()
    Ledger(args.state).close()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop_runs = threading.Event()
    runner = None
    if not args.no_runs:
        runner = Runner(service_config(args), stop_runs)
        runner.start()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await consume(args, stop)

    try:
        asyncio.run(main())
    except (OSError, *nats_errors()) as exc:
        raise RunError(f"NATS at {args.server}: {type(exc).__name__}: "
                       f"{' '.join(str(exc).split())[:200]}") from None
    finally:
        stop_runs.set()
        if runner is not None:
            runner.join(timeout=10)
    return 0
