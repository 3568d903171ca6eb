"""The module kit: `stellarflow new-module` writes a module, `stellarflow check-module` checks one.

A module is one folder, containers/<name>/ (docs/modules.md): module.yml, its code, its own
dependency list and lock (Python) or Makefile (C), a Containerfile, tests with a small fixture,
a README; its CWL tool is cwl/tools/<name>.cwl with a job file and a cwltest file beside it.

check-module runs, in order, and stops a chain at the first check another one needs:
  layout      the files above exist
  cwl         cwltool validates the tool with no warning; the project's conventions hold
  image       the image builds offline (scripts/build-images NAME: podman build --network=none)
  run         the tool runs on its job (the fixture) in its image, with no network (cwltool)
  contract    every output conforms to its contract (groups, datasets, dtypes, units)
  provenance  outputs name the module, its version, its image and the image's content hash
  bad_star    the fixture's broken star is a failed row with this module's one-line error,
              the others are ok
  bad_args    an unknown option gives one line on stderr and a non-zero exit
Each failure is one line: ``check-module NAME: CHECK: problem (expected ...)``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError
from .images import HASH_LABEL, ModuleError, module_dirs, module_image, read_module
from .paths import repo_root

CHECKS = ("layout", "cwl", "image", "run", "contract", "provenance", "bad_star", "bad_args")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
COMMAND_RE = re.compile(r"^[a-z][a-z0-9_]*$")
CHUNK_FORMAT = "https://w3id.org/stellarflow/formats#chunk-hdf5"
ECSV_FORMAT = "https://w3id.org/stellarflow/formats#ecsv"
PRODUCT_FORMAT = "https://w3id.org/stellarflow/formats#product-hdf5"
RECORD_HINT = "run: stellarflow check-module {name} --record"


@dataclass
class Result:
    module: str
    check: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        if self.ok:
            return f"PASS {self.check:<10} {self.detail}".rstrip()
        return f"FAIL {self.check:<10} check-module {self.module}: {self.check}: {self.detail}"


class CheckFailed(Exception):
    """A check's one-line problem: what is wrong and what was expected."""


# ------------------------------------------------------------------------------ CWL conventions


def _yaml(path: Path) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(path.read_text())


def cwl_conventions(path: Path, meta: dict | None = None) -> list[str]:
    """What breaks the project's CWL conventions in one tool file (empty: none). With ``meta``
    (its module.yml), also that the tool runs that module's image at that module's version."""
    problems: list[str] = []
    text = path.read_text()
    if not text.startswith("#!/usr/bin/env cwl-runner\ncwlVersion: v1.2\nclass: "):
        problems.append("does not start with '#!/usr/bin/env cwl-runner', cwlVersion v1.2, class")
    if not os.access(path, os.X_OK):
        problems.append("is not executable (chmod +x: the shebang runs it)")
    doc = _yaml(path)
    if "$schemas" in doc:
        problems.append("uses $schemas (fetched over the network by validators)")
    for key in ("id", "label", "doc", "s:softwareVersion", "s:license", "s:author"):
        if key not in doc:
            problems.append(f"has no {key}")
    if doc.get("id") != path.stem:
        problems.append(f"id {doc.get('id')!r} differs from the file name {path.stem!r}")
    for kind in ("inputs", "outputs"):
        for name, port in (doc.get(kind) or {}).items():
            if not (isinstance(port, dict) and port.get("doc") and port.get("label")):
                problems.append(f"{kind[:-1]} {name!r} needs doc and label")
            elif str(port.get("type")).startswith("File") and "format" not in port:
                problems.append(f"{kind[:-1]} {name!r} is a File without a format")
    if doc.get("class") != "CommandLineTool":
        return problems
    hints = doc.get("hints") or {}
    pull = (hints.get("DockerRequirement") or {}).get("dockerPull", "")
    resources = set(hints.get("ResourceRequirement") or {})
    if not {"coresMin", "ramMin", "tmpdirMin"} <= resources:
        problems.append("hints need a ResourceRequirement with coresMin, ramMin, tmpdirMin")
    base = doc.get("baseCommand") or []
    base = [base] if isinstance(base, str) else base
    if not base or not COMMAND_RE.match(str(base[0])):
        problems.append(f"baseCommand {base!r} must start with the module's command (a bare "
                        "name the image puts on PATH)")
    if "summary" not in (doc.get("outputs") or {}):
        problems.append("has no 'summary' output (the step summary JSON)")
    if "profile" not in (doc.get("outputs") or {}):
        problems.append("has no 'profile' output (the step profile JSON, docs/provenance.md)")
    for beside in (".job.yml", ".cwltest.yml"):
        if not path.with_name(path.stem + beside).exists():
            problems.append(f"has no {path.stem}{beside} beside it")
    if meta is not None:
        want = module_image(repo_root() / "containers" / meta["name"])
        if pull != want:
            problems.append(f"DockerRequirement dockerPull is {pull!r}, expected {want!r}")
        if str(doc.get("s:softwareVersion")) != meta["version"]:
            problems.append(f"s:softwareVersion {doc.get('s:softwareVersion')!r} differs from "
                            f"module.yml's version {meta['version']!r}")
    return problems


def _handler(stream: Any) -> Any:
    import logging

    return logging.StreamHandler(stream)


def validate_cwl(path: Path) -> str | None:
    """cwltool's --validate problem (or its first warning), else None."""
    import io

    from cwltool.main import main as cwltool_main

    err = io.StringIO()
    rc = cwltool_main(["--enable-ext", "--validate", str(path)], stderr=err, stdout=io.StringIO(),
                      logger_handler=_handler(err))
    text = err.getvalue()
    if rc != 0:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return f"cwltool --validate failed: {lines[-1] if lines else rc}"
    warning = next((ln for ln in text.splitlines() if "WARNING" in ln), None)
    return f"cwltool --validate warned: {warning.strip()}" if warning else None


# ------------------------------------------------------------------------------ check-module


class ModuleCheck:
    """The checks of one module, run in order; results in ``self.results``."""

    def __init__(self, name: str, *, build: bool = True, record: bool = False,
                 log: Callable[[str], None] = print) -> None:
        self.root = repo_root()
        self.name = name
        self.mdir = self.root / "containers" / name
        if not (self.mdir / "module.yml").exists():
            known = ", ".join(d.name for d in module_dirs())
            raise InputError(None, f"no module {name!r} (containers/{name}/module.yml); "
                                   f"modules: {known}")
        self.build, self.record, self.log = build, record, log
        self.tool = self.root / "cwl" / "tools" / f"{name}.cwl"
        self.results: list[Result] = []
        self.meta: dict = {}
        self.outputs: dict[str, Any] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix=f"check-module-{name}-"))

    def run(self) -> list[Result]:
        failed: set[str] = set()
        needs = {"cwl": {"layout"}, "image": {"layout"}, "run": {"cwl", "image"},
                 "contract": {"run"}, "provenance": {"run"}, "bad_star": {"run"},
                 "bad_args": {"image"}}
        try:
            for check in CHECKS:
                blocked = needs.get(check, set()) & failed
                if blocked:
                    self._add(Result(self.name, check, False,
                                     f"not run: {', '.join(sorted(blocked))} failed first"))
                    failed.add(check)
                    continue
                t0 = time.monotonic()
                try:
                    detail = getattr(self, f"check_{check}")() or ""
                    self._add(Result(self.name, check, True,
                                     f"{detail} ({time.monotonic() - t0:.1f} s)".lstrip()))
                except CheckFailed as exc:
                    self._add(Result(self.name, check, False, str(exc)))
                    failed.add(check)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.results

    def _add(self, result: Result) -> None:
        self.results.append(result)
        self.log(result.line())

    # -- the checks --------------------------------------------------------------------------

    def check_layout(self) -> str:
        try:
            self.meta = read_module(self.mdir)
        except ModuleError as exc:
            raise CheckFailed(str(exc)) from None
        want = ["module.yml", "README.md", "Containerfile", "tests", "tests/data"]
        if self.meta["language"] == "python":
            want += ["pyproject.toml", "requirements.lock", self.name]
        else:
            want += ["Makefile", "src"]
        missing = [w for w in want if not (self.mdir / w).exists()]
        missing += [str(p.relative_to(self.root)) for p in (
            self.tool, self.tool.with_name(f"{self.name}.job.yml"),
            self.tool.with_name(f"{self.name}.cwltest.yml")) if not p.exists()]
        if not list((self.mdir / "tests").glob("test_*.py")):
            missing.append("tests/test_*.py")
        if missing:
            raise CheckFailed(f"missing {', '.join(missing)} (expected the module layout of "
                              "docs/modules.md)")
        return f"{self.meta['language']} module {self.meta['version']}"

    def check_cwl(self) -> str:
        problem = validate_cwl(self.tool)
        if problem:
            raise CheckFailed(f"{self.tool.name}: {problem} (expected valid CWL, no warnings)")
        problems = cwl_conventions(self.tool, self.meta)
        cwltest = self.tool.with_name(f"{self.name}.cwltest.yml")
        text = cwltest.read_text()
        if not self.record and ("contents" not in text or "not recorded yet" in text):
            problems.append(f"{cwltest.name} checks no values (expected the summary's contents; "
                            f"{RECORD_HINT.format(name=self.name)})")
        if problems:
            raise CheckFailed(f"{self.tool.name}: {'; '.join(problems)}")
        return "valid, conventions hold"

    def check_image(self) -> str:
        if not self.build:
            return "not rebuilt (--no-build)"
        env = dict(os.environ)
        # --containers-dir: build-images finds the repository from its own (resolved) path,
        # which is another checkout's when scripts/ is a link (the tests' scratch repository).
        r = subprocess.run([sys.executable, str(self.root / "scripts" / "build-images"),
                            "--no-setup", "--containers-dir", str(self.root / "containers"),
                            self.name], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            raise CheckFailed(f"{last} (expected `scripts/build-images {self.name}` to build "
                              "offline)")
        return module_image(self.mdir)

    def check_run(self) -> str:
        out = self.tmp / "out"
        from .sites import runner_path_env

        # The venv's cwltool and the podman wrapper, whether or not the venv is on PATH.
        r = subprocess.run(["cwltool", "--quiet", "--podman", "--outdir", str(out),
                            "--tmpdir-prefix", f"{self.tmp}/tmp/", str(self.tool),
                            str(self.tool.with_name(f"{self.name}.job.yml"))],
                           capture_output=True, text=True,
                           env={**os.environ, **runner_path_env()})
        if r.returncode != 0:
            text = re.sub(r"\x1b\[[0-9;]*m", "", r.stderr)
            # cwltool's message starts at its ERROR line and runs to the end of its output.
            cause = text[text.find("ERROR"):] if "ERROR" in text else text
            cause = " ".join(cause.split())[:240]
            raise CheckFailed(f"cwltool --podman on its job failed: {cause} (expected the tool to "
                              "run on its fixture in its image, offline)")
        self.outputs = json.loads(r.stdout)
        if self.record:
            self._record_expected()
        files = [f for f in self._files() if f.get("path")]
        return f"{len(files)} output files"

    def check_contract(self) -> str:
        from stellarflow_contracts.conform import check_chunk

        problems, checked = [], 0
        for f in self._files():
            path, fmt = Path(f["path"]), f.get("format", "")
            if fmt == CHUNK_FORMAT:
                problems += [f"{path.name}: {p}" for p in check_chunk(path, contract=self._own())]
            elif fmt == ECSV_FORMAT:
                problems += [f"{path.name}: {p}" for p in _catalogue_problems(path)]
            elif fmt == PRODUCT_FORMAT:
                problems += [f"{path.name}: {p}" for p in _product_problems(path)]
            else:
                continue
            checked += 1
        if problems:
            raise CheckFailed(f"{problems[0]} (+{len(problems) - 1} more; expected every output "
                              "to conform to its contract, docs/contracts.md)" if len(problems) > 1
                              else f"{problems[0]} (expected the contract of docs/contracts.md)")
        return f"{checked} files conform"

    def check_provenance(self) -> str:
        import h5py

        image = module_image(self.mdir)
        want = {"module": self.name, "module_version": self.meta["version"], "image": image,
                "image_digest": _content_hash(image)}
        seen = 0
        for f in self._files():
            path = Path(f["path"])
            if f.get("format") in (CHUNK_FORMAT, PRODUCT_FORMAT):
                with h5py.File(path) as h:
                    attrs = h.attrs if f["format"] == CHUNK_FORMAT else \
                        h.get(f"provenance/{self.name}", h).attrs
                    got = {k: _text(attrs.get(k, "")) for k in want}
            elif f.get("format") == ECSV_FORMAT:
                got = _ecsv_provenance(path)
            else:
                continue
            seen += 1
            wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
            if wrong:
                raise CheckFailed(f"{path.name}: {wrong} (expected {want})")
        if not seen:
            raise CheckFailed("no output records its provenance (expected module, version, "
                              "image and image_digest in every output)")
        return f"{seen} files name {self.name} {self.meta['version']} and its image"

    def check_bad_star(self) -> str:
        summary = self._summary()
        command = self._command()
        failed = {sid: s for sid, s in summary["star"].items() if s["status"] == "failed"}
        own = {sid: _error(s) for sid, s in failed.items()
               if _error(s).startswith((f"{command}:", f"{self.name}:"))}
        ok = [sid for sid, s in summary["star"].items() if s["status"] == "ok"]
        if not own:
            raise CheckFailed(f"no star failed in this module (errors: {list(failed.values())}; "
                              "expected the fixture's broken star to be a failed row naming "
                              f"{self.name})")
        if not ok:
            raise CheckFailed("no star is ok (expected the fixture's other stars to succeed)")
        bad = [e for e in own.values() if "\n" in e or len(e) > 300]
        if bad:
            raise CheckFailed(f"error is not one short line: {bad[0][:80]!r} (expected one line)")
        sid, err = next(iter(own.items()))
        return f"{len(own)} failed here ({sid}: {err[:70]}), {len(ok)} ok"

    def check_bad_args(self) -> str:
        image = module_image(self.mdir)
        r = subprocess.run(["podman", "run", "--rm", "--network=none", image, self._command(),
                            "--no-such-option"], capture_output=True, text=True, timeout=120)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        if r.returncode == 0 or len(lines) != 1:
            raise CheckFailed(f"exit {r.returncode}, {len(lines)} stderr lines: "
                              f"{' | '.join(lines)[:200]!r} (expected one line and a non-zero "
                              "exit)")
        return f"exit {r.returncode}: {lines[0][:80]}"

    # -- helpers -----------------------------------------------------------------------------

    def _files(self) -> list[dict]:
        out = []
        for v in self.outputs.values():
            for f in v if isinstance(v, list) else [v]:
                if isinstance(f, dict) and f.get("class") == "File":
                    out.append(f)
        return out

    def _summary(self) -> dict:
        s = self.outputs.get("summary")
        if not s:
            raise CheckFailed("the tool returned no summary (expected its 'summary' output)")
        return json.loads(Path(s["path"]).read_text())

    def _command(self) -> str:
        base = _yaml(self.tool).get("baseCommand")
        return str(base if isinstance(base, str) else base[0])

    def _own(self) -> dict | None:
        """The module's own contract (contract.json) for a stage the library does not know."""
        own = self.mdir / "contract.json"
        return json.loads(own.read_text()) if own.exists() else None

    def _record_expected(self) -> None:
        """Write the summary's contents into the cwltest file as the expected values."""
        cwltest = self.tool.with_name(f"{self.name}.cwltest.yml")
        text = Path(self.outputs["summary"]["path"]).read_text()
        block = "|\n" + "".join(f"        {ln}\n" if ln else "\n" for ln in text.splitlines())
        old = cwltest.read_text()
        new, found = re.subn(r"(\n      contents: )(\|\n(?:        .*\n|\n)*|\"[^\n]*\"\n)",
                             lambda m: m.group(1) + block, old, count=1)
        if not found:
            raise CheckFailed(f"{cwltest.name}: no summary 'contents:' to record into")
        if new == old:
            return
        cwltest.write_text(new)
        self.log(f"     recorded the summary's values as expected in {cwltest.name}: review them")


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _error(star: dict) -> str:
    return str((star.get("attrs") or {}).get("error", star.get("error", "")))


def _content_hash(image: str) -> str:
    r = subprocess.run(["podman", "image", "inspect", "--format",
                        "{{index .Labels \"" + HASH_LABEL + "\"}}", image],
                       capture_output=True, text=True)
    return r.stdout.strip()


def _catalogue_problems(path: Path) -> list[str]:
    from stellarflow_contracts.catalogue import CATALOGUE_COLUMNS, read_catalogue

    t = read_catalogue(path)
    want = [c[0] for c in CATALOGUE_COLUMNS]
    if t.colnames != want:
        return [f"columns {t.colnames}, expected {want}"]
    bad = [f"column {n} has unit {t[n].unit}, expected {u}" for n, u, _ in CATALOGUE_COLUMNS
           if u not in (None, "") and str(t[n].unit) != u]
    return bad


def _ecsv_provenance(path: Path) -> dict[str, str]:
    from stellarflow_contracts.catalogue import read_catalogue

    meta = read_catalogue(path).meta
    prov = meta.get("catalogue") or meta.get("star_products") or {}
    return {k: str(v) for k, v in prov.items()}


def _product_problems(path: Path) -> list[str]:
    import h5py

    with h5py.File(path) as f:
        problems = [f"root attr {k!r} missing" for k in ("star_id", "status", "error")
                    if k not in f.attrs]
        if "provenance" not in f:
            problems.append("no /provenance group")
        if _text(f.attrs.get("status", "")) == "ok":
            problems += _lightcurve_problems(f, path.parent)
    return problems


def _lightcurve_problems(f: Any, folder: Path) -> list[str]:
    """An ok product's /lightcurve: datasets with units, or (time, flux, flux_err) external
    links into its root attr ``lightcurve_file`` (star_products --lightcurve link), followed only
    when that file is beside the product: a tool's outputs do not hold it."""
    import h5py

    linked = _text(f.attrs.get("lightcurve_file", ""))
    problems = []
    for k in ("time", "flux", "flux_err", "quality"):
        name = f"lightcurve/{k}"
        link = f.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            want = (linked, f"/stars/{_text(f.attrs.get('star_id', ''))}/prepared/{k}")
            if k == "quality" or (link.filename, link.path) != want:
                problems.append(f"{name} links to {link.filename}:{link.path}, expected "
                                f"{want[0] or '(no root attr lightcurve_file)'}:{want[1]}")
                continue
            if not (folder / linked).is_file():
                continue
        try:
            ok = link is not None and "units" in f[name].attrs
        except KeyError:  # a link whose target is not there
            ok = False
        if not ok:
            problems.append(f"dataset {name} missing or without units")
    return problems


def check_module(name: str, **kw: Any) -> list[Result]:
    return ModuleCheck(name, **kw).run()


def check_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stellarflow check-module",
                                description="Check a module against the kit's rules "
                                            "(docs/modules.md); one line per check.")
    p.add_argument("names", nargs="*", metavar="NAME", help="modules (default: all)")
    p.add_argument("--no-build", action="store_true", help="use the image as it is")
    p.add_argument("--record", action="store_true",
                   help="write the tool's summary into its cwltest file as the expected values")
    args = p.parse_args(argv)
    names = args.names or [d.name for d in module_dirs()]
    bad = 0
    for name in names:
        print(f"== {name}")
        results = check_module(name, build=not args.no_build, record=args.record)
        bad += sum(not r.ok for r in results)
    return 1 if bad else 0


# ------------------------------------------------------------------------------ new-module


def templates_dir() -> Path:
    return Path(__file__).resolve().parent / "templates"


def render(text: str, name: str) -> str:
    return text.replace("{{name}}", name).replace("{{stage}}", name)


def new_module(name: str, language: str) -> list[Path]:
    """Write containers/<name>/ and cwl/tools/<name>.{cwl,job.yml,cwltest.yml} from the
    templates; returns the files written. InputError (one line) for a bad or taken name."""
    import importlib.util

    root = repo_root()
    if not NAME_RE.match(name):
        raise InputError(None, f"module name {name!r}: use [a-z][a-z0-9_], 2-41 characters")
    mdir = root / "containers" / name
    tool = root / "cwl" / "tools" / f"{name}.cwl"
    if mdir.exists() or tool.exists():
        raise InputError(None, f"module name {name!r} is taken ({mdir if mdir.exists() else tool})")
    if importlib.util.find_spec(name) is not None:
        raise InputError(None, f"module name {name!r} is already an importable Python package "
                               "here; choose another")
    written: list[Path] = []
    for src_root, dest_root in ((templates_dir() / language, mdir),
                                (templates_dir() / "cwl", root / "cwl" / "tools")):
        if not src_root.is_dir():
            raise InputError(None, f"no template for language {language!r}")
        for src in sorted(p for p in src_root.rglob("*") if p.is_file()):
            dest = dest_root / render(str(src.relative_to(src_root)), name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.suffix in (".h5",):
                shutil.copyfile(src, dest)
            else:
                dest.write_text(render(src.read_text(), name))
            shutil.copymode(src, dest)
            written.append(dest)
    fixture = templates_dir() / "data" / "chunk-0000.prepared.h5"
    (mdir / "tests" / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fixture, mdir / "tests" / "data" / fixture.name)
    written.append(mdir / "tests" / "data" / fixture.name)
    if language == "python":
        from .locks import write_lock

        written.append(write_lock(mdir))
    return written


def new_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stellarflow new-module",
                                description="Write a new module's folder, CWL tool, job, "
                                            "cwltest case and test (docs/modules.md).")
    p.add_argument("name", help="module name: [a-z][a-z0-9_], also its command and image")
    p.add_argument("--language", choices=("python", "c"), default="python")
    args = p.parse_args(argv)
    written = new_module(args.name, args.language)
    root = repo_root()
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    print(f"next: make install images && stellarflow check-module {args.name} --record "
          "(then review the recorded values, make test)")
    return 0
