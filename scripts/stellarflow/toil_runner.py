"""toil-cwl-runner, ended without the interpreter's teardown.

``stellarflow run`` starts Toil as ``python -m stellarflow.toil_runner ARGS`` instead of
``toil-cwl-runner ARGS``: the same ``toil.cwl.cwltoil.main`` with the same arguments and exit
code. When it returns, the exit handlers run (logging's flush, Toil's and tempfile's clean-ups)
and the process ends at once: Python's own teardown of the leader's objects (the loaded CWL,
the job graph) took ~0.8 s of an otherwise idle machine at the end of every run, to free memory
the kernel frees anyway. An exception that escapes Toil ends the process the ordinary way.
"""

from __future__ import annotations

import atexit
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from toil.cwl.cwltoil import main as toil_main

    sys.argv[0] = "toil-cwl-runner"  # what Toil names itself after in its messages
    try:
        code = toil_main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return int(code or 0)


if __name__ == "__main__":
    rc = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
