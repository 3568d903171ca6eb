"""toil-cwl-runner, ended without the interpreter's teardown.

``stellarflow run`` starts Toil as ``python -m stellarflow.toil_runner ARGS`` instead of
``toil-cwl-runner ARGS``: the same ``toil.cwl.cwltoil.main`` with the same arguments and exit
code. When it returns, the exit handlers run (logging's flush, Toil's and tempfile's clean-ups)
and the process ends at once: Python's own teardown of the leader's objects (the loaded CWL,
the job graph) took ~0.8 s of an otherwise idle machine at the end of every run, to free memory
the kernel frees anyway. An exception that escapes Toil ends the process the ordinary way.

It also skips cwltool's JavaScript lint (JSHint) of the CWL while loading it: Toil always runs
it (cwltoil sets ``disable_js_validation = False`` whatever the options say), it runs node on
the documents with expressions before the first job while the other cores wait, and its findings
are warnings only (cwltool#1874). Every CWL document the runs use is linted by CI instead
(tests/test_cwl_validate.py: ``cwltool --validate`` with no warning allowed). The schema
validation stays. ``STELLARFLOW_JS_LINT=1`` keeps the lint.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any

JS_LINT_ENV = "STELLARFLOW_JS_LINT"  # "1": lint the CWL's JavaScript at load, as Toil does


def skip_js_lint() -> None:
    """Make the loading context Toil builds skip JSHint (the schema validation stays)."""
    import cwltool.main

    setup = cwltool.main.setup_loadingContext
    if getattr(setup, "skips_js_lint", False):
        return

    def setup_without_js_lint(*args: Any, **kwargs: Any) -> Any:
        context = setup(*args, **kwargs)
        context.disable_js_validation = True
        return context

    setup_without_js_lint.skips_js_lint = True  # type: ignore[attr-defined]
    cwltool.main.setup_loadingContext = setup_without_js_lint


def main(argv: list[str] | None = None) -> int:
    from toil.cwl.cwltoil import main as toil_main

    if os.environ.get(JS_LINT_ENV) != "1":
        skip_js_lint()

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
