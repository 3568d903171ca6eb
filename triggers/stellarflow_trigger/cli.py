"""`stellarflow trigger watch|scan|backfill` and `stellarflow status`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from stellarflow.errors import InputError

from .ledger import Ledger


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("inbox", type=Path, help="folder manifests are renamed (or written) into")
    p.add_argument("--state", type=Path, required=True,
                   help="state dir: ledger.sqlite, runs/ (job stores, logs), out/")
    p.add_argument("--outdir", type=Path,
                   help="outputs go to OUTDIR/<observation_id>/ (default STATE/out)")
    p.add_argument("--site", default="local", help="site profile from jobstore_config/")
    p.add_argument("--no-container", action="store_true",
                   help="run steps in the venv instead of their images (development)")
    p.add_argument("--dataset", type=Path, action="append", default=[],
                   help="dataset file: each appended line 'star_id, lightcurve[, teff, logg, feh]' "
                        "is a star (repeatable)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="stars per chunk (default: automatic for the site, as stellarflow run)")
    p.add_argument("--max-stars", type=int, default=500, help="stars per Toil run (default 500)")
    p.add_argument("--max-wait", type=float, default=2.0,
                   help="seconds a manifest waits for others to share its run (default 2)")
    p.add_argument("--max-runs", type=int, default=2, help="Toil runs at once (default 2)")
    p.add_argument("--retries", type=int, default=2,
                   help="failed attempts retried per run, --restart then clean (default 2)")
    p.add_argument("--backoff", type=float, default=5.0, help="seconds before the first retry")
    p.add_argument("--min-age", type=float, default=1.0,
                   help="a scan leaves files modified less than this many seconds ago")
    p.add_argument("--toil-arg", action="append", default=[],
                   help="extra toil-cwl-runner option (repeatable), e.g. --toil-arg=--maxCores=2")
    p.add_argument("--run-nice", type=int, default=10,
                   help="niceness of the runs (Toil and its containers; default 10: the service "
                        "and its intakes answer first; 0: none)")
    p.add_argument("-v", "--verbose", action="store_true", help="info-level log")


def _config(args: argparse.Namespace) -> Any:
    from .service import Config

    for name in ("chunk_size", "max_stars", "max_runs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise InputError(None, f"--{name.replace('_', '-')} must be >= 1")
    for d in args.dataset:
        if not d.is_file():
            raise InputError(d, "dataset file not found")
    return Config(inbox=args.inbox, state=args.state, outdir=args.outdir, site=args.site,
                  container=not args.no_container, chunk_size=args.chunk_size,
                  max_stars=args.max_stars, max_wait=args.max_wait, max_runs=args.max_runs,
                  retries=args.retries, backoff=args.backoff, min_age=args.min_age,
                  datasets=list(args.dataset), toil_args=list(args.toil_arg),
                  run_nice=args.run_nice)


def parse_date(text: str) -> float:
    try:
        d = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(None, f"--since/--until {text!r} is not an ISO date "
                               "(2026-11-21 or 2026-11-21T10:00)") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d.timestamp()


def backfill(state: Path, since: float, until: float | None, states: list[str],
             dry_run: bool) -> list[dict[str, Any]]:
    """Queue a new processing of every past manifest received in [since, until)."""
    if not (state / "ledger.sqlite").exists():
        raise InputError(state, "no ledger here (not a trigger state dir)")
    ledger = Ledger(state)
    rows = ledger.all("SELECT * FROM manifests WHERE source!='backfill' AND duplicate_of IS "
                      "NULL AND stored_copy IS NOT NULL AND received_at>=? AND received_at<? "
                      f"AND state IN ({','.join('?' * len(states))}) ORDER BY id",
                      since, until or 1e18, *states)
    out = []
    for r in rows:
        out.append({"manifest": r["id"], "name": r["name"], "observation_id": r["observation_id"],
                    "was": r["state"]})
        if dry_run:
            continue
        with ledger.tx() as db:
            ledger.insert_manifest(db, sha256=r["sha256"], name=r["name"], source="backfill",
                                   home=r["home"], stored_copy=r["stored_copy"],
                                   observation_id=r["observation_id"], state="requested",
                                   backfill_of=r["id"])
    ledger.close()
    return out


def trigger_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stellarflow trigger",
                                description="launch workflows as observation manifests arrive")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("watch", help="daemon: watch INBOX (inotify) and run what arrives")
    _common(w)
    w.add_argument("--poll", type=float, default=15.0,
                   help="also rescan INBOX every POLL seconds (missed events)")
    s = sub.add_parser("scan", help="one pass for cron: run what is in INBOX, then exit")
    _common(s)
    b = sub.add_parser("backfill", help="re-queue past manifests (processed by watch/scan)")
    b.add_argument("--state", type=Path, required=True)
    b.add_argument("--since", required=True, help="ISO date/time (UTC unless given)")
    b.add_argument("--until", help="ISO date/time, exclusive")
    b.add_argument("--failed-only", action="store_true", help="only manifests that failed")
    b.add_argument("--dry-run", action="store_true")
    b.add_argument("--json", action="store_true")
    sub.add_parser("nats", add_help=False,
                   help="manifests from a NATS JetStream subject (--server, --subject, --state, "
                        "--data-root)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["nats"]:
        from .nats_intake import nats_main

        return nats_main(argv[1:])
    args = p.parse_args(argv)

    if args.cmd == "backfill":
        states = ["failed"] if args.failed_only else ["done", "failed"]
        out = backfill(args.state, parse_date(args.since),
                       parse_date(args.until) if args.until else None, states, args.dry_run)
        if args.json:
            print(json.dumps(out, indent=1))
        else:
            verb = "would re-queue" if args.dry_run else "re-queued"
            print(f"{verb} {len(out)} manifest(s); `stellarflow trigger watch` or `scan` on this "
                  "state dir runs them")
        return 0

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    from .service import Busy, Service

    cfg = _config(args)
    if args.cmd == "watch":
        cfg.poll = args.poll
    try:
        svc = Service(cfg)
    except Busy as exc:
        if args.cmd == "scan":  # cron: the previous pass (or the daemon) is still at it
            print(f"stellarflow trigger: {exc}; nothing to do", file=sys.stderr)
            return 0
        raise
    return svc.watch() if args.cmd == "watch" else svc.scan()


# -- status -------------------------------------------------------------------------------
def _fmt_t(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _dur(a: float | None, b: float | None) -> str:
    if a is None:
        return "-"
    return f"{(b or time.time()) - a:.1f}s" + ("" if b else "+")


def status_data(state: Path, limit: int) -> dict[str, Any]:
    if not (state / "ledger.sqlite").exists():
        raise InputError(state, "no ledger here (not a trigger state dir)")
    ledger = Ledger(state)
    manifests = [dict(r) for r in ledger.all(
        "SELECT m.id, m.name, m.source, m.observation_id, m.state, m.n_stars, m.stars_ok, "
        "m.stars_failed, m.run_id, m.duplicate_of, m.backfill_of, m.received_at, m.started_at, "
        "m.finished_at, m.dest, m.outputs, m.reason, r.log_path, r.jobstore FROM manifests m "
        "LEFT JOIN runs r ON r.id=m.run_id ORDER BY m.id DESC LIMIT ?", limit)]
    runs = [dict(r) for r in ledger.all(
        "SELECT id, state, n_manifests, n_stars, attempts, interrupts, created_at, started_at, "
        "ended_at, exit_code, failing_step, error, run_dir, jobstore, log_path, outputs "
        "FROM runs ORDER BY id DESC LIMIT ?", limit)]
    counts = {r[0]: r[1] for r in ledger.all("SELECT state, COUNT(*) FROM manifests "
                                             "GROUP BY state")}
    ledger.close()
    for r in runs:
        r["outputs"] = json.loads(r["outputs"]) if r["outputs"] else None
    return {"state_dir": str(state), "counts": counts, "manifests": manifests, "runs": runs}


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=False))  # noqa: E731
    return "\n".join([line(header)] + [line(r) for r in rows])


def status_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stellarflow status",
                                description="table of the trigger's manifests and runs")
    p.add_argument("--state", type=Path, required=True, help="the trigger's state dir")
    p.add_argument("--json", action="store_true", help="everything as JSON")
    p.add_argument("--limit", type=int, default=50, help="latest N manifests and runs (50)")
    args = p.parse_args(argv)
    data = status_data(args.state, args.limit)
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    counts = ", ".join(f"{k} {v}" for k, v in sorted(data["counts"].items())) or "empty"
    print(f"state {data['state_dir']}: {counts}\n")
    mrows = [[m["id"], m["name"][:40], m["observation_id"] or "-", m["state"],
              f"{m['stars_ok'] if m['stars_ok'] is not None else '-'}/"
              f"{m['stars_failed'] if m['stars_failed'] is not None else '-'}",
              _dur(m["received_at"], m["finished_at"]), m["run_id"] or "-",
              m["outputs"] or (m["dest"] or "-")] for m in data["manifests"]]
    print("MANIFESTS (stars ok/failed; duration from arrival)")
    print(_table(mrows, ["id", "name", "observation", "state", "ok/failed", "duration", "run",
                         "outputs (or where the manifest went)"]))
    rrows = [[r["id"], r["state"], r["n_manifests"], r["n_stars"],
              f"{r['attempts']}+{r['interrupts']}", _fmt_t(r["started_at"]),
              _dur(r["started_at"], r["ended_at"]), r["failing_step"] or "-", r["log_path"]]
             for r in data["runs"]]
    print("\nRUNS (attempts failed+interrupted; log; job store beside it)")
    print(_table(rrows, ["id", "state", "manifests", "stars", "att", "toil start (UTC)",
                         "duration", "failing step", "log"]))
    return 0
