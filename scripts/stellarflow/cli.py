"""The `stellarflow` command: run, status, trigger, serve, validate-site, lineage, profile, verify.

Expected errors print one line and exit non-zero (2: bad input, 1: run failed); tracebacks only
with --debug.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from . import __version__
from .errors import InputError, RunError


def _delegate(target: str) -> Callable[[list[str]], int]:
    """Subcommands owned by other packages keep their own parsers (`main(argv) -> int`)."""

    def call(argv: list[str]) -> int:
        module, func = target.split(":")
        return int(getattr(__import__(module, fromlist=[func]), func)(argv) or 0)

    return call


DELEGATED = {
    "trigger": ("stellarflow_trigger.cli:trigger_main",
                "launch workflows as manifests arrive (watch, scan, backfill)"),
    "status": ("stellarflow_trigger.cli:status_main", "table of manifests and runs (--state DIR)"),
    "serve": ("stellarflow_trigger.wes.server:serve_main",
              "GA4GH WES 1.1 API and web page over the run ledger (--state, --data-root)"),
    "validate-site": ("stellarflow_dummy.validate:main",
                      "run the Dummy Pipeline feature suite on a site profile"),
    "new-module": ("stellarflow.modulekit:new_main",
                   "write a new science module: folder, CWL tool, cwltest case, test"),
    "check-module": ("stellarflow.modulekit:check_main",
                     "check modules against the kit's rules (CWL, image, contract, bad input)"),
    "lineage": ("stellarflow.lineage:main",
                "the used-inputs tree of a product down to the raw light curves (RO-Crate)"),
    "profile": ("stellarflow.profiling:main",
                "requested vs used resources per tool of one or more runs, with suggestions"),
    "verify": ("stellarflow.verify:main",
               "recompute every checksum of a run's RO-Crate (exit 1 on the first mismatch)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="stellarflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"stellarflow {__version__}")
    parser.add_argument("--debug", action="store_true", help="tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from . import run as run_mod

    p_run = sub.add_parser("run", help="run one observation manifest through a workflow")
    run_mod.add_arguments(p_run)
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)

    # Delegated subcommands parse their own arguments.
    debug = "--debug" in argv[: next((i for i, a in enumerate(argv) if a in DELEGATED), len(argv))]
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in DELEGATED:
        rest = argv[argv.index(first) + 1:]
        return _guard(lambda: _delegate(DELEGATED[first][0])(rest), debug)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    return _guard(lambda: run_mod.cmd_run(args), args.debug)


def _guard(fn: Callable[[], int], debug: bool) -> int:
    try:
        return fn()
    except InputError as exc:
        if debug:
            raise
        print(f"stellarflow: error: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        if debug:
            raise
        print(f"stellarflow: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `stellarflow status --json | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
