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

And it reads a JSON job (the ``job.json`` ``stellarflow run`` writes) with Python's JSON parser:
cwltool reads the job with schema-salad's loader, which parses any document with ruamel.yaml's
round-trip parser, written in Python and keeping every line and column, before the first job
while the cores wait (docs/performance.md, "A run's start at 10 000 stars"). Once loaded, the
job's values are plain dicts and lists: cwltool deep-copies the job while binding it, and a
ruamel.yaml ``CommentedMap`` copies its comment attributes with it. The job is otherwise the
same, without line numbers, which only an error inside the job file would show:
``stellarflow run`` writes it, and a YAML job is read as before. It applies only while the
loader still parses JSON as YAML (``loader_parses_json_as_yaml``).

And Toil's option parser imports every batch system it knows to add its options, the Kubernetes
one too, whose module imports the Kubernetes client's API classes: ~1 s of the leader's start,
before the first job, while the other cores wait. When the command line selects another batch
system (``--batchSystem``, else its ``--config`` file's ``batchSystem``), the Kubernetes batch
system counts as one whose module cannot be imported, which Toil's parser already skips; its
options (``--kubernetes...``) are then unknown to that run. ``STELLARFLOW_ALL_BATCH_SYSTEMS=1``
keeps them all.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import tempfile
from typing import Any

JS_LINT_ENV = "STELLARFLOW_JS_LINT"  # "1": lint the CWL's JavaScript at load, as Toil does
ALL_BATCH_SYSTEMS_ENV = "STELLARFLOW_ALL_BATCH_SYSTEMS"  # "1": every batch system's options
# Batch systems whose module is costly to import, skipped when the run selects another one.
COSTLY_BATCH_SYSTEMS = ("kubernetes",)


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


def loader_parses_json_as_yaml() -> bool:
    """True while schema-salad's Loader reads a JSON document with ruamel.yaml's parser."""
    from ruamel.yaml.main import YAML
    from schema_salad.ref_resolver import Loader

    calls = []
    parse = YAML.load_all

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return parse(self, *args, **kwargs)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.json")
        with open(path, "w") as f:
            f.write('{"probe": [1]}')
        YAML.load_all = counted  # type: ignore[method-assign]
        try:
            Loader({}).fetch(f"file://{path}")
        finally:
            YAML.load_all = parse  # type: ignore[method-assign]
    return bool(calls)


def read_json_jobs_with_json() -> None:
    """Make cwltool's job loader parse a ``.json`` job holding an object with ``json``."""
    import cwltool.main
    from ruamel.yaml.comments import CommentedMap
    from schema_salad.sourceline import add_lc_filename, cmap

    base = cwltool.main.Loader
    if getattr(base, "reads_json_with_json", False) or not loader_parses_json_as_yaml():
        return

    class JsonJobLoader(base):  # type: ignore[misc, valid-type]
        reads_json_with_json = True
        read_as_json: str | None = None  # the URL of the JSON job it read

        def fetch(self, url: str, inject_ids: bool = True,
                  content_types: list[str] | None = None) -> Any:
            if url in self.idx or not url.split("#")[0].endswith(".json"):
                return super().fetch(url, inject_ids, content_types)
            try:
                doc = json.loads(self.fetch_text(url, content_types=content_types))
            except ValueError:  # not JSON after all: the loader says what is wrong with it
                doc = None
            if not isinstance(doc, dict):
                return super().fetch(url, inject_ids, content_types)
            result = cmap(doc, fn=url)  # the loader's types, without lines and columns
            add_lc_filename(result, url)
            # What the loader does with a document it has parsed: index it under its
            # identifier, or give it the URL as one.
            if inject_ids and self.identifiers:
                named = [k for k in self.identifiers if k in result]
                for key in named:
                    self.idx[self.expand_url(result[key], url, scoped_id=True)] = result
                if not named:
                    result[self.identifiers[0]] = url
            self.idx[url] = result
            self.read_as_json = url
            return result

    load_job_order = cwltool.main.load_job_order

    def load_json_job_order(*args: Any, **kwargs: Any) -> Any:
        job, basedir, loader = load_job_order(*args, **kwargs)
        if isinstance(job, CommentedMap) and getattr(loader, "read_as_json", None):
            # A JSON job: its values become plain dicts and lists again (cheap to deep-copy;
            # the loader itself needed its own types to resolve the job's references).
            plain = CommentedMap(json.loads(json.dumps(job)))
            add_lc_filename(plain, job.lc.filename)
            job = plain
        return job, basedir, loader

    cwltool.main.Loader = JsonJobLoader
    cwltool.main.load_job_order = load_json_job_order


def selected_batch_system(argv: list[str]) -> str | None:
    """The batch system a toil-cwl-runner command line selects: its ``--batchSystem``, else
    the ``batchSystem`` of its ``--config`` file, else Toil's default; None when that cannot be
    told (an unreadable config file, a help request)."""
    import argparse

    from toil.batchSystems.registry import DEFAULT_BATCH_SYSTEM

    if "-h" in argv or "--help" in argv:
        return None
    given = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    given.add_argument("--batchSystem")
    given.add_argument("--config")
    known = given.parse_known_args(argv)[0]
    if known.batchSystem:
        return str(known.batchSystem)
    if known.config:
        from ruamel.yaml import YAML

        try:
            with open(known.config) as f:
                settings = YAML(typ="safe").load(f)
        except Exception:  # Toil reports what is wrong with it
            return None
        if not isinstance(settings, dict):
            return None
        return str(settings.get("batchSystem") or DEFAULT_BATCH_SYSTEM)
    return DEFAULT_BATCH_SYSTEM


def skip_unselected_costly_batch_systems(argv: list[str]) -> list[str]:
    """Register the costly batch systems the command line does not select as not importable
    (Toil's option parser skips those); returns their names."""
    from toil.batchSystems.registry import add_batch_system_factory

    selected = selected_batch_system(argv)
    if selected is None:
        return []
    skipped = [name for name in COSTLY_BATCH_SYSTEMS if name != selected]

    for name in skipped:
        def not_selected(name: str = name) -> Any:
            raise ImportError(f"the {name} batch system is not this run's "
                              f"(stellarflow.toil_runner; {ALL_BATCH_SYSTEMS_ENV}=1 keeps it)")

        add_batch_system_factory(name, not_selected)
    return skipped


def main(argv: list[str] | None = None) -> int:
    from toil.cwl.cwltoil import main as toil_main

    if os.environ.get(JS_LINT_ENV) != "1":
        skip_js_lint()
    read_json_jobs_with_json()
    if os.environ.get(ALL_BATCH_SYSTEMS_ENV) != "1":
        skip_unselected_costly_batch_systems(sys.argv[1:] if argv is None else argv)

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
