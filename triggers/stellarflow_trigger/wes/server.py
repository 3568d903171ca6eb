"""`stellarflow serve`: the WES API and the page (uvicorn), and the ledger's runs.

The process also runs what the ledger holds (the trigger service's loop in a thread) whenever it
can take STATE/trigger.lock; while another trigger process (watch, nats) holds it, that one runs
the work and this one only serves, retrying the lock every few seconds.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
import sys
import threading
from pathlib import Path

from stellarflow.errors import InputError

log = logging.getLogger("stellarflow.wes")
TOKEN_FILE = "wes.token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def init_token(path: Path) -> bool:
    """Write a new random token to ``path`` (mode 0600) unless one is there; True if written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return True


def read_token(path: Path) -> str | None:
    if not path.exists():
        return None
    st = path.stat()
    if st.st_mode & 0o077:
        raise InputError(path, f"token file is readable by others (mode {st.st_mode & 0o777:o}); "
                               "chmod 600 it")
    token = path.read_text().strip()
    if len(token) < 16:
        raise InputError(path, "token file holds no token of at least 16 characters")
    return token


class Runner(threading.Thread):
    """Runs the trigger service's loop on the ledger whenever it holds the state lock."""

    def __init__(self, cfg: object, stop: threading.Event, retry: float = 5.0) -> None:
        super().__init__(name="ledger-runner", daemon=True)
        self.cfg, self.stop, self.retry = cfg, stop, retry
        self.holding = False

    def run(self) -> None:
        from .. import service

        while not self.stop.is_set():
            try:
                svc = service.Service(self.cfg)  # type: ignore[arg-type]
            except service.Busy:
                self.stop.wait(self.retry)
                continue
            self.holding = True
            try:
                svc.run_loop(self.stop)
            except Exception:
                log.exception("the ledger's run loop failed; restarting it")
                self.stop.wait(self.retry)
            finally:
                self.holding = False
                svc._lock.close()
                svc.ledger.close()


def service_config(args: argparse.Namespace) -> object:
    from ..service import Config

    inbox = args.state / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    return Config(inbox=inbox, state=args.state, outdir=args.outdir, site=args.site,
                  container=not args.no_container, max_runs=args.max_runs,
                  max_wait=args.max_wait, toil_args=list(args.toil_arg),
                  run_nice=args.run_nice)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of the runs this process starts when it holds the ledger."""
    p.add_argument("--outdir", type=Path, help="outputs (default STATE/out)")
    p.add_argument("--site", default="local", help="site profile from jobstore_config/")
    p.add_argument("--no-container", action="store_true",
                   help="run steps in the venv instead of their images (development)")
    p.add_argument("--max-runs", type=int, default=2, help="Toil runs at once (default 2)")
    p.add_argument("--max-wait", type=float, default=2.0,
                   help="seconds a manifest waits for others to share its Toil run")
    p.add_argument("--toil-arg", action="append", default=[],
                   help="extra toil-cwl-runner option (repeatable)")
    p.add_argument("--run-nice", type=int, default=10,
                   help="niceness of the runs (default 10: the API and page answer first)")
    p.add_argument("--no-runs", action="store_true",
                   help="only serve/intake; another trigger process runs the ledger's work")


def serve_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stellarflow serve",
                                description="GA4GH WES 1.1 API and web page over the run ledger")
    p.add_argument("--state", type=Path, required=True, help="the trigger's state dir")
    p.add_argument("--data-root", type=Path,
                   help="folder every File location and light-curve path must resolve under")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token-file", type=Path,
                   help=f"bearer token file (default STATE/{TOKEN_FILE})")
    p.add_argument("--init-token", action="store_true",
                   help="write a new 0600 token file (if none is there), print its path, exit")
    p.add_argument("--insecure-loopback", action="store_true",
                   help="on a loopback bind, accept submit and cancel without a token (clients "
                        "such as wes-client 5.0 send none when they submit)")
    p.add_argument("--validate-responses", action="store_true",
                   help="check every response against the OpenAPI documents (tests)")
    p.add_argument("-v", "--verbose", action="store_true", help="info-level log")
    add_run_options(p)
    args = p.parse_args(argv)
    state = args.state.resolve()
    token_file = (args.token_file or state / TOKEN_FILE).resolve()
    if args.init_token:
        wrote = init_token(token_file)
        print(f"{'wrote' if wrote else 'kept the existing'} token file {token_file}")
        return 0
    if args.data_root is None:
        raise InputError(None, "--data-root is required (except with --init-token)")
    if not args.data_root.is_dir():
        raise InputError(args.data_root, "data root is not a directory")
    loopback = is_loopback(args.host)
    if args.insecure_loopback and not loopback:
        raise InputError(None, f"--insecure-loopback is only for a loopback bind, not {args.host}")
    token = read_token(token_file)
    if token is None and not loopback:
        raise InputError(token_file, f"binding {args.host} needs a bearer token: run "
                                     f"`stellarflow serve --init-token --state {args.state}` first")
    if token is None and not args.insecure_loopback:
        print(f"stellarflow serve: no token file {token_file}: submit and cancel are refused "
              "(--init-token writes one; --insecure-loopback accepts them without)",
              file=sys.stderr)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args.state = state
    from importlib.metadata import version

    import uvicorn

    from . import app as app_mod
    from .handlers import Context

    ctx = Context(state=state, data_root=args.data_root, site=args.site,
                  version=version("stellarflow"))
    asgi = app_mod.create_app(ctx, token=token, loopback=loopback,
                              insecure_loopback=args.insecure_loopback,
                              validate_responses=args.validate_responses)
    stop = threading.Event()
    runner = None
    if not args.no_runs:
        runner = Runner(service_config(args), stop)
        runner.start()
    print(f"stellarflow serve: http://{args.host}:{args.port}/ (WES at /ga4gh/wes/v1), "
          f"state {state}, data root {ctx.data_root}", file=sys.stderr, flush=True)
    try:
        uvicorn.run(asgi, host=args.host, port=args.port, log_level="warning",
                    access_log=False, server_header=False, limit_concurrency=1000,
                    timeout_graceful_shutdown=5)
    finally:
        stop.set()
        if runner is not None:
            runner.join(timeout=10)
    return 0
