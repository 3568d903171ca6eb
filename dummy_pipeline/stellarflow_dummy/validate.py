"""`stellarflow validate-site --site PROFILE`: the Dummy Pipeline feature suite on a site profile.

Every feature that must succeed runs as one sub-workflow of ONE Toil run (each Toil run has a
fixed start/stop cost); the features that must fail run in a second Toil run at the same time.
Each feature's outputs are then checked (products, passed-here records, lineage). If the shared
run fails, every feature is rerun on its own so that the report names the one that broke.
Report: one line per feature (PASS/FAIL/SKIP, duration, reason), text + JSON in
build/validate-site/<site>-<utc>.{txt,json}; exit 0 only when nothing failed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from stellarflow import sites
from stellarflow.errors import InputError
from stellarflow.paths import repo_root

from . import IMAGE, __version__, checks, euclid_inputs

HERE = Path(__file__).resolve().parents[1]  # dummy_pipeline/
FAIL_MESSAGE = "DUMMY-PIPELINE-EXPECTED-FAILURE: this step fails on purpose"

# feature -> (CWL of the feature, what it shows). Order = report order.
FEATURES: dict[str, tuple[str | None, str]] = {
    "euclid_example": ("cwl/euclid.cwl",
                       "split -> scatter(dark, flat) -> combine -> extract; lineage recorded"),
    "scatter_gather": ("features/scatter_gather.cwl", "scatter two steps over 5, gather"),
    "nested_subworkflows": ("features/nested_subworkflows.cwl", "three levels of workflows"),
    "conditional_pickvalue": ("features/conditional_pickvalue.cwl", "when + pickValue"),
    "dynamic_resources": ("features/dynamic_resources.cwl",
                          "cores/RAM read from the previous step's JSON"),
    "tmpdir": ("features/tmpdir.cwl", "tmpdirMin + write/read back in $(runtime.tmpdir)"),
    "retry": ("features/retry.cwl", "fails its first attempt, passes on the runner's retry"),
    "expected_failure": ("features/expected_failures.cwl",
                         "a step that must fail, reported with its stderr"),
    "gpu": ("features/gpu.cwl", "CUDARequirement step, only where a GPU exists"),
    "secondary_files": ("features/secondary_files.cwl", "product + .sha256 secondary file"),
    "fan_out": ("features/fan_out.cwl", "large scatter (>= 200 jobs) + gather"),
    "walltime": ("features/walltime.cwl", "long step under ToolTimeLimit; overrun killed"),
}
SUITE = [f for f in FEATURES if f not in ("expected_failure", "gpu")]
FAILURE_RUN = ("expected_failure", "walltime")


@dataclass
class Result:
    feature: str
    status: str  # PASS | FAIL | SKIP
    duration_s: float
    reason: str = ""
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    name: str
    returncode: int
    wall_s: float
    run_dir: str
    outputs: dict[str, Any]
    log: str = field(repr=False, default="")

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "returncode": self.returncode, "wall_s": self.wall_s,
                "run_dir": self.run_dir}


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_yaml(path: Path) -> Any:
    return json.loads(json.dumps(YAML(typ="rt").load(path.read_text())))


# ---- site facts ---------------------------------------------------------------------------

def image_present(env: dict[str, str]) -> bool:
    podman = shutil.which("podman", path=env.get("PATH"))
    if not podman:
        return False
    return subprocess.run([podman, "image", "exists", IMAGE], env=env, check=False,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def gpu_status(batch_system: str) -> tuple[bool, str]:
    """Honest detection: a GPU only counts when the site's own tools show one."""
    if batch_system == "slurm" and shutil.which("sinfo"):
        out = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True,
                             check=False).stdout
        if "gpu" in out:
            return True, f"Slurm GRES: {' '.join(sorted(set(out.split())))}"
        return False, "no GPU on this site (no gpu GRES in sinfo)"
    nvsmi = shutil.which("nvidia-smi")
    devs = glob.glob("/dev/nvidia[0-9]*")
    if nvsmi and devs:
        out = subprocess.run([nvsmi, "-L"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and "GPU" in out.stdout:
            return True, out.stdout.strip().splitlines()[0]
    why = "; ".join(filter(None, ["nvidia-smi not found" if not nvsmi else "",
                                  "no /dev/nvidia* devices" if not devs else ""]))
    return False, f"no GPU on this site ({why or 'nvidia-smi lists no GPU'})"


# ---- runs ---------------------------------------------------------------------------------

class Runner:
    def __init__(self, site: str, work: Path, container: bool, timeout: float) -> None:
        self.site, self.work, self.container, self.timeout = site, work, container, timeout
        self.env = dict(os.environ)
        self.env.update(sites.runner_path_env())
        self.live: set[subprocess.Popen] = set()

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        """Stop a Toil run: SIGINT lets the leader kill its jobs and exit; then force."""
        for sig, wait in ((signal.SIGINT, 60), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                return
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass

    def stop_all(self) -> None:
        for proc in list(self.live):
            self.stop(proc)

    def toil(self, name: str, cwl: Path, job: dict[str, Any], extra: list[str] = ()) -> Run:
        run_dir = self.work / "runs" / name
        run_dir.mkdir(parents=True, exist_ok=True)
        job_path = run_dir / "job.json"
        job_path.write_text(json.dumps(job, indent=1))
        inv = sites.toil_invocation(self.site, jobstore=str(run_dir / "jobstore"),
                                    workdir=run_dir / "work", container=self.container)
        # wrapper: a pilot-job submission for profiles that need one (slurm-pilot), else empty
        argv = list(getattr(inv, "wrapper", [])) + inv.argv + [
            "--outdir", str(run_dir / "out"), "--logFile", str(run_dir / "toil.log"), *extra,
            str(cwl), str(job_path)]
        (run_dir / "command.json").write_text(json.dumps(argv))
        env = {**self.env, **inv.env}
        t0 = time.monotonic()
        with open(run_dir / "runner.log", "wb") as log, open(run_dir / "outputs.json", "wb") as o:
            proc = subprocess.Popen(argv, stdout=o, stderr=log, env=env, cwd=run_dir,
                                    start_new_session=True)
            self.live.add(proc)
            try:
                rc = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.stop(proc)
                rc = proc.returncode if proc.returncode is not None else -9
                log.write(f"\nvalidate-site: Error: run {name} timed out after "
                          f"{self.timeout:.0f} s\n".encode())
            except BaseException:  # interrupted: never leave a Toil run behind
                self.stop(proc)
                raise
            finally:
                self.live.discard(proc)
        wall = round(time.monotonic() - t0, 1)
        try:
            outputs = json.loads((run_dir / "outputs.json").read_text() or "{}")
        except json.JSONDecodeError:
            outputs = {}
        text = "".join((run_dir / n).read_text(errors="replace")
                       for n in ("toil.log", "runner.log") if (run_dir / n).exists())
        return Run(name, rc, wall, str(run_dir), outputs, text)


def failure_reason(log: str) -> str:
    """The most telling line of a failed run's log (with its wrapped continuation lines)."""
    raw = log.splitlines()
    keep = [i for i, ln in enumerate(raw)
            if "on purpose" not in ln and "[D]" not in ln and not ln.strip().startswith("raise")]
    for keys in (("fake_module:", "euclid "), ("exceeded time limit",),
                 ("Error", "error:", "Exception"), ("failed", "Failed")):
        hit = [i for i in keep if any(k in raw[i] for k in keys)]
        if hit:
            i = hit[-1]
            text = raw[i].strip()
            # schema-salad wraps a message ending in ':' over many lines: join them back
            for nxt in raw[i + 1:i + 40] if text.endswith(":") else []:
                part = nxt.strip()
                if not part:
                    continue
                if part.startswith(("[20", "File ", "Traceback")):
                    break
                text += " " + part.split(": ", 1)[-1] if part[:1] in "./" else " " + part
            return " ".join(text.split())[:300]
    return (raw[-1].strip() if raw else "no log")[:300]


def file_obj(p: Path) -> dict[str, str]:
    return {"class": "File", "path": str(p.resolve())}


def process_doc(cwl: Path) -> dict:
    """A feature's workflow with its inputs and outputs as maps; for a packed file (a release's,
    ``cwltool --pack``) its ``#main`` process."""
    doc = load_yaml(cwl)
    if "$graph" not in doc:
        return doc
    main = next(p for p in doc["$graph"] if p.get("id") == "#main")
    ports = {k: {p["id"].rsplit("/", 1)[-1]: p for p in main.get(k) or []}
             for k in ("inputs", "outputs")}
    return {**main, **ports}


def feature_cwl(feature: str, release: Path | None = None) -> Path:
    """A feature's CWL: the repository's, or the packed one of a release (make release)."""
    base = release / "workflows" / "dummy_pipeline" if release else HERE
    return base / FEATURES[feature][0]


def write_suite(features: list[str], jobs: dict[str, dict[str, Any]], path: Path,
                release: Path | None = None) -> dict:
    """One workflow running each feature as a sub-workflow; inputs/outputs prefixed feature__."""
    doc: dict[str, Any] = {
        "cwlVersion": "v1.2", "class": "Workflow", "id": "validate_site_suite",
        "doc": "Generated by stellarflow validate-site: every feature that must succeed.",
        "requirements": {k: {} for k in (
            "SubworkflowFeatureRequirement", "ScatterFeatureRequirement",
            "InlineJavascriptRequirement", "StepInputExpressionRequirement",
            "MultipleInputFeatureRequirement")},
        "inputs": {}, "outputs": {}, "steps": {}}
    job: dict[str, Any] = {}
    for f in features:
        cwl = feature_cwl(f, release)
        src = process_doc(cwl)
        for name, value in jobs[f].items():
            decl = src["inputs"][name]
            doc["inputs"][f"{f}__{name}"] = {"type": decl["type"] if isinstance(decl, dict)
                                             else decl}
            job[f"{f}__{name}"] = value
        for name, o in src["outputs"].items():
            entry = {"type": o["type"], "outputSource": f"{f}/{name}"}
            if "secondaryFiles" in o:
                entry["secondaryFiles"] = o["secondaryFiles"]
            doc["outputs"][f"{f}__{name}"] = entry
        doc["steps"][f] = {"run": str(cwl), "in": {n: f"{f}__{n}" for n in jobs[f]},
                           "out": list(src["outputs"])}
    path.write_text(json.dumps(doc, indent=1))
    return job


# ---- the suite ----------------------------------------------------------------------------

class Validation:
    """One validate-site run: inputs, the shared run, the must-fail run, the checks."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.site = args.site
        profile = sites.profile_path(self.site)
        self.batch = str((load_yaml(profile) or {}).get("batchSystem", "single_machine"))
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out_root = (args.outdir or repo_root() / "build" / "validate-site").resolve()
        self.work = out_root / f"{self.site}-{stamp}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.selected = [f for f in FEATURES if not args.only or f in args.only]
        self.release = args.release.resolve() if args.release else None
        env = {**os.environ, **sites.runner_path_env()}
        if args.no_container:
            container, cnote = False, "none (--no-container)"
        elif image_present(env):
            container, cnote = True, f"{IMAGE} (podman)"
        else:
            container, cnote = False, (f"none: image {IMAGE} not built (run `make images`); "
                                       "fell back to --no-container")
        self.info: dict[str, Any] = {
            "site": self.site, "profile": str(profile), "batch_system": self.batch,
            "containers": cnote, "started_utc": utc_now(), "work_dir": str(self.work),
            "dummy_pipeline": __version__, "fan_out_jobs": args.fan_out,
            "broken_on_purpose": sorted(args.break_ or []), "runs": [],
            "workflows": str(self.release / "workflows") if self.release else "repository"}
        self.runner = Runner(self.site, self.work, container, args.timeout)
        self.attempt_dir = self.work / "attempts"
        self.results: dict[str, Result] = {}

    def say(self, msg: str) -> None:
        if not self.args.quiet:
            print(f"validate-site: {msg}", file=sys.stderr, flush=True)

    def prepare(self) -> None:
        inputs = euclid_inputs.make_inputs(self.work / "inputs" / "euclid")
        self.attempt_dir.mkdir(exist_ok=True)
        self.jobs: dict[str, dict[str, Any]] = {
            "euclid_example": {"raw": file_obj(inputs["raw"]), "dark": file_obj(inputs["dark"]),
                               "flat": file_obj(inputs["flat"]),
                               "catalog_spec": file_obj(inputs["spec"])},
            "retry": {"attempt_dir": str(self.attempt_dir), "attempt_key": "suite"},
            "fan_out": {"indexes": list(range(self.args.fan_out))},
            "walltime": {"sleep": self.args.walltime_sleep},
        }
        self.ctx = checks.Ctx(expect=checks.Expect(set(self.args.break_ or [])), inputs=inputs,
                              fan_out=self.args.fan_out, walltime_sleep=self.args.walltime_sleep,
                              retry_counter=self.attempt_dir / "suite.attempts")

    def run(self) -> list[Result]:
        t0 = time.monotonic()
        self.say(f"site {self.site} ({Path(self.info['profile']).name}, {self.batch}); "
                 f"containers: {self.info['containers']}")
        self.prepare()
        # The must-fail run goes alongside the shared run: it mostly waits (a 30 s time limit).
        box: dict[str, Run] = {}
        th = None
        if any(f in self.selected for f in FAILURE_RUN):
            # --retryCount 0: retrying a step that must fail only costs time (retries are the
            # retry feature's business, under the profile's own retryCount).
            th = threading.Thread(target=lambda: box.setdefault("run", self.runner.toil(
                "expected_failures", feature_cwl("expected_failure", self.release),
                {"message": FAIL_MESSAGE}, extra=["--retryCount", "0"])), daemon=True)
        try:
            if th:
                th.start()
            self.shared_run()
            if th:
                th.join()
                fr = box["run"]
                self.info["runs"].append(fr.summary())
                self.ctx.failure_run = {"returncode": fr.returncode, "log": fr.log}
            self.judge_all()
            if "expected_failure" in self.selected:
                self.expected_failure(box["run"])
            if "gpu" in self.selected:
                self.results["gpu"] = gpu_feature(self.runner, self.batch, self.info,
                                                  self.release)
        except BaseException:  # interrupted: never leave a Toil run behind
            self.runner.stop_all()
            raise
        self.info["finished_utc"] = utc_now()
        self.info["total_s"] = round(time.monotonic() - t0, 1)
        return [self.results[f] for f in FEATURES if f in self.results]

    def judge(self, feature: str, outputs: dict[str, Any], run: Run) -> Result:
        self.ctx.log_text = lambda: run.log
        try:
            v = checks.CHECKS[feature](outputs, self.ctx)
        except checks.Mismatch as exc:
            return Result(feature, "FAIL", run.wall_s, reason=str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken product is a FAIL with its reason
            return Result(feature, "FAIL", run.wall_s, reason=f"{type(exc).__name__}: {exc}")
        return Result(feature, "PASS", v.duration_s if v.duration_s is not None else run.wall_s,
                      note=v.note, details=v.details)

    def shared_run(self) -> None:
        feats = [f for f in SUITE if f in self.selected]
        self.pending: list[tuple[str, dict[str, Any], Run]] = []
        if not feats:
            return
        fan = f" (with the {self.args.fan_out}-job fan-out)" if "fan_out" in feats else ""
        self.say(f"running {len(feats)} features in one Toil run{fan}")
        job = write_suite(feats, {f: self.jobs.get(f, {}) for f in feats},
                          self.work / "suite.cwl", self.release)
        run = self.runner.toil("suite", self.work / "suite.cwl", job)
        self.info["runs"].append(run.summary())
        if run.returncode == 0:
            for f in feats:
                outs = {k.split("__", 1)[1]: v for k, v in run.outputs.items()
                        if k.startswith(f + "__")}
                self.pending.append((f, outs, run))
            return
        # Find which feature broke the shared run: each on its own.
        self.say(f"the shared run failed ({failure_reason(run.log)}); rerunning each "
                 "feature alone")
        for f in feats:
            job = dict(self.jobs.get(f, {}))
            if f == "retry":
                job["attempt_key"] = "alone"
                self.ctx.retry_counter = self.attempt_dir / "alone.attempts"
            r = self.runner.toil(f"alone-{f}", feature_cwl(f, self.release), job)
            self.info["runs"].append(r.summary())
            if r.returncode != 0:
                self.results[f] = Result(f, "FAIL", r.wall_s, reason=f"run failed (exit "
                                         f"{r.returncode}): {failure_reason(r.log)}")
            else:
                self.pending.append((f, r.outputs, r))

    def judge_all(self) -> None:
        for f, outs, run in self.pending:
            self.results[f] = self.judge(f, outs, run)
        self.pending = []

    def expected_failure(self, fr: Run) -> None:
        try:
            v = checks.check_expected_failure(self.ctx, FAIL_MESSAGE)
            self.results["expected_failure"] = Result("expected_failure", "PASS", fr.wall_s,
                                                      note=v.note, details=v.details)
        except checks.Mismatch as exc:
            self.results["expected_failure"] = Result("expected_failure", "FAIL", fr.wall_s,
                                                      reason=str(exc))


def gpu_feature(runner: Runner, batch: str, info: dict[str, Any],
                release: Path | None = None) -> Result:
    present, why = gpu_status(batch)
    cwl = feature_cwl("gpu", release)
    t0 = time.monotonic()
    if not present:
        # Never claim it ran; but the step's CWL must at least be valid for when a GPU comes.
        v = subprocess.run(["cwltool", "--enable-ext", "--validate", str(cwl)], env=runner.env,
                           capture_output=True, text=True, check=False)
        if v.returncode != 0:
            return Result("gpu", "FAIL", round(time.monotonic() - t0, 1),
                          reason=f"gpu.cwl does not validate: {failure_reason(v.stderr)}")
        return Result("gpu", "SKIP", 0.0, reason=why, note="gpu.cwl validated, not run")
    r = runner.toil("gpu", cwl, {}, extra=["--enable-ext"])
    info["runs"].append(r.summary())
    if r.returncode != 0:
        return Result("gpu", "FAIL", r.wall_s, reason=failure_reason(r.log))
    try:
        own = checks.records(checks.local_path(r.outputs.get("product"), "product"))[-1]
    except checks.Mismatch as exc:
        return Result("gpu", "FAIL", r.wall_s, reason=str(exc))
    if not own.get("gpu"):
        return Result("gpu", "FAIL", r.wall_s, reason="the step did not see a GPU")
    return Result("gpu", "PASS", r.wall_s, note=f"ran on {own['gpu']} ({why})")


# ---- report -------------------------------------------------------------------------------

def render(results: list[Result], info: dict[str, Any]) -> str:
    lines = [f"stellarflow validate-site: site {info['site']} ({Path(info['profile']).name}, "
             f"batch system {info['batch_system']}), {info['started_utc']}",
             f"containers: {info['containers']}; workflows: {info.get('workflows')}",
             "runs: " + "; ".join(f"{r['name']} {r['wall_s']:.1f} s (exit {r['returncode']})"
                                  for r in info["runs"])]
    if info["broken_on_purpose"]:
        lines.append(f"NOTE: wrong expectations injected on purpose for: "
                     f"{', '.join(info['broken_on_purpose'])}")
    width = max(len(r.feature) for r in results) if results else 10
    for r in results:
        tail = r.reason if r.status != "PASS" else r.note
        if r.status == "SKIP" and r.note:
            tail = f"{r.reason} ({r.note})"
        lines.append(f"{r.status:<4}  {r.feature:<{width}}  {r.duration_s:7.1f} s  {tail}")
    counts = {s: sum(r.status == s for r in results) for s in ("PASS", "FAIL", "SKIP")}
    verdict = "OK" if counts["FAIL"] == 0 else "FAILED"
    lines.append(f"{len(results)} features: {counts['PASS']} PASS, {counts['FAIL']} FAIL, "
                 f"{counts['SKIP']} SKIP in {info['total_s']:.1f} s -> {verdict}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="stellarflow validate-site", description=__doc__)
    p.add_argument("--site", default="local", help="site profile from jobstore_config/")
    p.add_argument("--no-container", action="store_true",
                   help="run the fake modules in the venv, not in their image")
    p.add_argument("--outdir", type=Path, default=None,
                   help="where the report and run folders go (default build/validate-site)")
    p.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   help=f"comma-separated subset of: {', '.join(FEATURES)}")
    p.add_argument("--fan-out", type=int, default=200,
                   help="scattered jobs in the fan-out feature (default 200)")
    p.add_argument("--walltime-sleep", type=float, default=5.0, help=argparse.SUPPRESS)
    p.add_argument("--timeout", type=float, default=3600, help="seconds per Toil run")
    p.add_argument("--break", dest="break_", action="append", metavar="FEATURE",
                   help="inject a wrong expected result into FEATURE (proves FAIL is reported)")
    p.add_argument("--release", type=Path, default=None, metavar="DIR",
                   help="run the packed workflows of a release (make release; make "
                        "import-release DIR=... first) instead of the repository's CWL")
    p.add_argument("--json", action="store_true", help="print the JSON report instead")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--list", action="store_true", help="list the features and exit")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    for name in (args.only or []) + (args.break_ or []):
        if name not in FEATURES:
            raise InputError(None, f"unknown feature {name!r}; features: {', '.join(FEATURES)}")
    if args.release and not (args.release / "workflows" / "dummy_pipeline").is_dir():
        raise InputError(args.release, "not a stellarflow release (no workflows/dummy_pipeline;"
                                       " make release writes one)")
    if args.fan_out < 1:
        raise InputError(None, f"--fan-out must be >= 1, got {args.fan_out}")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    if args.list:
        for f, (cwl, doc) in FEATURES.items():
            print(f"{f:<22} {doc}  [{cwl}]")
        return 0
    v = Validation(args)
    results, info = v.run(), v.info
    text = render(results, info)
    base = Path(info["work_dir"])
    report = {**info, "ok": all(r.status != "FAIL" for r in results),
              "features": [asdict(r) for r in results]}
    base.with_suffix(".txt").write_text(text)
    base.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report, indent=1, default=str) if args.json else text, end="")
    if not args.json:
        print(f"report: {base.with_suffix('.txt')} (+ .json)")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
