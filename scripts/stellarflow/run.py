"""`stellarflow run`: manifest -> CWL job -> toil-cwl-runner (site profile) -> outputs.

Every run gets a folder ``DIR/.stellarflow/runs/<observation_id>-<utc>/`` holding the CWL job,
the runner's log, the job store and the staging area; outputs are moved into
``DIR/<observation_id>/`` only when the run completed (a previous result is kept in the run
folder it was replaced by, never deleted).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import manifest as manifest_mod
from . import provenance, sites
from .errors import InputError, RunError
from .paths import ALLOWED_WORKFLOWS, repo_root, workflow_path

# Chunk size when none is given ("auto", see auto_chunk_size). A chunk is one job per stage, so
# each chunk pays Toil's per-job cost, a container start and module imports (~2-3 s per stage)
# once; the cap bounds what a retried job redoes (150 stars x ~3.6 s = 9 core-minutes).
AUTO_CHUNK_MAX = 150
# A star's cost grows with its light curve: when the light curves' size is known the cap follows
# it, as many stars as AUTO_CHUNK_BYTES of light curves (150 stars of 60 days at 25 s, the 9
# core-minutes above), never fewer than AUTO_CHUNK_MAX nor more than AUTO_CHUNK_STARS_MAX: short
# light curves then make fewer, larger chunks, and fewer per-chunk costs (issue 16).
AUTO_CHUNK_BYTES = 192 * 2**20
AUTO_CHUNK_STARS_MAX = 1000
# On a scheduler (Slurm, SGE...) the number of free cores is unknown: chunks of at most this many
# stars (~3 core-minutes each) keep the per-job cost (~1.6 s on Slurm) near 1 % and spread the
# observation over many nodes.
SCHEDULER_CHUNK_MAX = 50
RUNNERS = ("toil", "cwltool")
# Which stars get a PNG (star_products --figures); every star gets its product HDF5 regardless.
FIGURES = ("all", "notable", "none")
FAKE_MODULE = "fake_module"  # its image answers to every SAS module's command with a fake


@dataclass
class RunResult:
    observation_id: str
    outdir: str  # DIR/<observation_id>
    run_dir: str
    jobstore: str
    log_path: str
    returncode: int
    stars_ok: int = 0
    stars_failed: int = 0
    catalogue: str | None = None
    report: str | None = None
    chunk_size: int | None = None  # what the job asked for (stars per chunk)
    crate: str | None = None  # OUTDIR/<observation_id>/ro-crate-metadata.json (provenance)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _utc_stamp() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def error_tail(log_path: Path, lines: int = 400) -> str:
    """The most telling line of a failed runner's log (for the one-line reason)."""
    try:
        text = log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    keys = ("Error", "ERROR", "error:", "Traceback", "failed", "Failed")
    picked = [ln.strip() for ln in text if any(k in ln for k in keys)]
    return (picked[-1] if picked else (text[-1].strip() if text else ""))[:300]


def count_statuses(catalogue: Path) -> tuple[int, int]:
    """(ok, failed) rows of a catalogue ECSV. Read as the CSV it is below its '#' header:
    importing astropy for this would add ~2 s to the end of every run."""
    import csv

    with open(catalogue, newline="") as fh:
        rows = csv.DictReader((ln for ln in fh if not ln.startswith("#")), delimiter=" ")
        status = [r.get("status") for r in rows]
    return status.count("ok"), status.count("failed")


# CWL's SHA-1 of every File a step outputs (intermediate chunk files included, and again of the
# final outputs by the leader after the last step) is used by nothing here: the run's RO-Crate
# records the SHA-256 of what it delivers (stellarflow.provenance).
NO_CWL_CHECKSUMS = "--no-compute-checksum"
TOIL_RUNNER = [sys.executable, "-m", "stellarflow.toil_runner"]  # toil-cwl-runner's main
CHECKED_IMAGES_ENV = "STELLARFLOW_CHECKED_IMAGES"  # toil_batch_system_stellarflow.fork_server's


def runner_argv(runner: str, site: str, *, run_dir: Path, jobstore: str, staging: Path,
                container: bool, restart: bool, extra: list[str]) -> tuple[list[str], dict]:
    if runner == "toil":
        inv = sites.toil_invocation(site, jobstore=jobstore, workdir=run_dir / "work",
                                    container=container, restart=restart)
        # inv.command = pilot wrapper (slurm-pilot: one sbatch allocation) + toil-cwl-runner,
        # started as stellarflow.toil_runner (the same main, no interpreter teardown at its end).
        command = [*inv.wrapper, *TOIL_RUNNER, *inv.argv[1:]] \
            if inv.argv[0] == "toil-cwl-runner" else inv.command
        argv = command + ["--outdir", str(staging), "--logFile", str(run_dir / "toil.log"),
                              NO_CWL_CHECKSUMS]
        return argv + extra, inv.env
    if runner == "cwltool":
        argv = ["cwltool", "--parallel", "--outdir", str(staging),
                "--tmpdir-prefix", str(run_dir / "tmp") + "/", NO_CWL_CHECKSUMS,
                "--podman" if container else "--no-container"]
        return argv + extra, {}
    raise RunError(f"unknown runner {runner!r}; choose one of {', '.join(RUNNERS)}")


def run_job(
    job: dict[str, Any],
    *,
    observation_id: str,
    outdir: Path,
    workflow: str = "sas",
    site: str = "local",
    container: bool = True,
    runner: str = "toil",
    run_dir: Path | None = None,
    restart: bool = False,
    extra_args: list[str] | None = None,
    quiet: bool = True,
    fakes: list[str] | None = None,
    progress: bool = False,
    manifest: Path | None = None,
) -> RunResult:
    """Run a CWL job for ``workflow``; outputs end in ``outdir/<observation_id>``.

    ``run_dir`` (with its job store) may be given to resume a run with ``restart=True``.
    ``fakes``: modules whose tool runs in the fake image instead of its own (a runner overrides
    file in the run folder; the CWL is the repository's, unchanged).
    ``progress``: steps done of total and an ETA on stderr while it runs (stellarflow.progress).
    ``manifest``: the manifest the job came from (copied into the run's RO-Crate).
    Unless STELLARFLOW_PROVENANCE=0, the outputs get an RO-Crate and the run a per-step profile
    (stellarflow.provenance).
    Raises RunError with a one-line reason when the run did not complete.
    """
    outdir = Path(outdir).resolve()
    cwl = workflow_path(workflow)
    if runner == "toil":
        sites.profile_path(site)  # an unknown site fails before anything is written
    overrides = fake_overrides(fakes or [], container)
    checked_images: list[str] = []
    if container:
        from .images import MissingImageError, check_images, missing_images

        try:
            checked_images = check_images([cwl])
        except MissingImageError as exc:
            raise RunError(str(exc)) from None
        if overrides:
            if missing_images([fakes_image()]):
                raise RunError(f"missing container image {fakes_image()} (needed by --fake): "
                               "run `make images`")
            checked_images.append(fakes_image())
    if run_dir is None:
        run_dir = outdir / ".stellarflow" / "runs" / f"{observation_id}-{_utc_stamp()}"
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    job_path = run_dir / "job.json"
    if not (restart and job_path.exists()):
        job_path.write_text(json.dumps(job, indent=1))
    extra = list(extra_args or [])
    if overrides:
        (run_dir / "overrides.json").write_text(json.dumps(overrides, indent=1))
        extra += ["--overrides", str(run_dir / "overrides.json")]
    jobstore = str(run_dir / "jobstore")
    staging = run_dir / "out"
    if staging.exists() and not restart:
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "runner.log"
    argv, env_extra = runner_argv(runner, site, run_dir=run_dir, jobstore=jobstore,
                                  staging=staging, container=container, restart=restart,
                                  extra=extra)
    # toil-cwl-runner 9.6 requires the workflow and job even with --restart (it then reuses
    # what the job store froze).
    argv += [str(cwl), str(job_path)]
    env = dict(os.environ)
    env.update(sites.runner_path_env())
    env.update(env_extra)
    if checked_images and argv[:len(TOIL_RUNNER)] == TOIL_RUNNER:
        # Toil runs on this host (not in a pilot allocation elsewhere), where the images were
        # checked: its forked workers skip cwltool's `podman inspect` of them.
        env[CHECKED_IMAGES_ENV] = " ".join(checked_images)
    (run_dir / "command.json").write_text(json.dumps(argv))
    started = provenance.utc_now()
    digesting = provenance.start_digesting_inputs(job)
    with open(log_path, "ab") as log, open(run_dir / "outputs.json", "wb") as out, \
            confined_to(run_cpus(site_slots(site, runner, extra))):
        proc = subprocess.Popen(argv, stdout=out, stderr=log, env=env, cwd=run_dir)
        if progress:
            from .progress import Reporter

            with Reporter(run_dir, cwl) as rep:
                while proc.poll() is None:
                    rep.update()
                    try:
                        proc.wait(timeout=1.0)
                    except subprocess.TimeoutExpired:
                        pass
                rep.update(finished=proc.returncode == 0)
        proc.wait()
    if digesting is not None:
        digesting.join()
    result = RunResult(observation_id=observation_id, outdir=str(outdir / observation_id),
                       run_dir=str(run_dir), jobstore=jobstore, log_path=str(log_path),
                       returncode=proc.returncode, chunk_size=job.get("chunk_size"))
    info = provenance.RunInfo(
        observation_id=observation_id, workflow=workflow, cwl=cwl, runner=runner, site=site,
        container=container, run_dir=run_dir, outdir=outdir / observation_id, started=started,
        ended=provenance.utc_now(), job=job, returncode=proc.returncode, manifest=manifest,
        fakes=list(fakes or []))
    if proc.returncode != 0:
        toil_log = run_dir / "toil.log"
        why = (sites.failure_summary(toil_log) if toil_log.exists() else None) or error_tail(
            log_path)
        info.error = why
        _record_failed_run(info)
        raise RunError(f"{runner} run of {observation_id} failed (exit {proc.returncode}): "
                       f"{why} [log: {log_path}]")
    # The step profiles are the run's record, not products: out of the outputs.
    provenance.collect_step_profiles(staging, run_dir)
    final = outdir / observation_id
    if final.exists():
        shutil.move(str(final), str(run_dir / "replaced_outputs"))
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), str(final))
    if provenance.enabled():
        rows = slurm_rows(site, run_dir) if runner == "toil" else []
        result.crate = str(provenance.record_run(info, sacct_rows=rows))
    catalogue = final / "catalogue.ecsv"
    if catalogue.exists():
        result.catalogue = str(catalogue)
        result.stars_ok, result.stars_failed = count_statuses(catalogue)
    report = final / "report.html"
    result.report = str(report) if report.exists() else None
    (run_dir / "result.json").write_text(result.to_json())
    return result


def slurm_rows(site: str, run_dir: Path, wait_s: float = 120.0) -> list[dict]:
    """sacct rows of a Slurm run's jobs, once slurmdbd has their end (it writes them a moment
    after the job ends); [] off Slurm or when accounting cannot answer (said on stderr)."""
    import sys
    import time

    if sites.profile_settings(site).get("batchSystem") != "slurm":
        return []
    from . import slurm_accounting

    toil_log = run_dir / "toil.log"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            wanted = set(slurm_accounting.toil_job_ids(toil_log)) if toil_log.exists() else set()
            rows = slurm_accounting.run_rows(run_dir)
        except RunError as exc:
            print(f"stellarflow: no Slurm accounting for the profile: {exc}", file=sys.stderr)
            return []
        # A job is accounted for once its row and its batch step's row both have an end (the
        # batch step carries the usage); slurmdbd writes them apart, later under load.
        ended: dict[str, set[str]] = {}
        for r in rows:
            job, _, step = r["JobIDRaw"].partition(".")
            if step in ("", "batch") and r.get("End") not in ("", "Unknown", None):
                ended.setdefault(job, set()).add(step)
        done = {job for job, seen in ended.items() if seen == {"", "batch"}}
        if (rows and wanted <= done) or time.monotonic() > deadline:
            return rows
        time.sleep(1.0)


def _record_failed_run(info: provenance.RunInfo) -> None:
    """A failed run's crate, in its run folder (RUN_DIR/crate/): what ran, on what, and why it
    failed; never hides the run's own error."""
    import sys

    if not provenance.enabled():
        return
    info.outdir = info.run_dir / "crate"
    try:
        info.outdir.mkdir(exist_ok=True)
        provenance.record_run(info)
    except Exception as exc:  # noqa: BLE001 - the run's error is what the user must see
        print(f"stellarflow: no crate for the failed run: {exc}", file=sys.stderr)


def fakeable_modules() -> dict[str, str]:
    """Module -> the chunk stage it writes, for every module a fake can stand in for."""
    from stellarflow_contracts.conform import stages

    from .images import module_dirs, read_module

    known = set(stages())
    found = {}
    for d in module_dirs():
        meta = read_module(d)
        if meta.get("stage") in known and meta.get("inputs"):
            found[d.name] = meta["stage"]
    return found


def fakes_image() -> str:
    from .images import module_image

    return module_image(repo_root() / "containers" / FAKE_MODULE)


def fake_overrides(fakes: list[str], container: bool) -> dict[str, Any] | None:
    """The runner overrides (cwltool's ``--overrides``, which Toil reads too) that run each
    faked module's own CWL tool in the fake image; InputError for a module without a fake."""
    if not fakes:
        return None
    allowed = fakeable_modules()
    for name in fakes:
        if name not in allowed:
            raise InputError(None, f"--fake {name}: no fake for it; choose from "
                                   f"{', '.join(sorted(allowed))}")
    if not container:
        raise InputError(None, "--fake runs the fake's image: it cannot be used with "
                               "--no-container")
    image = fakes_image()
    tools = repo_root() / "cwl" / "tools"
    # A tool's process id is its file's URI with its `id` as fragment (the id is its name).
    return {"cwltool:overrides": {
        f"{(tools / f'{name}.cwl').resolve().as_uri()}#{name}": {
            "requirements": {"DockerRequirement": {"dockerPull": image}}}
        for name in sorted(set(fakes))}}


def auto_chunk_size(n_stars: int, slots: int | None,
                    bytes_per_star: float | None = None) -> int:
    """Stars per chunk for ``n_stars`` on ``slots`` one-core job slots (None: a scheduler).

    With known slots (this machine): the fewest chunks that fill every slot in whole rounds
    (so no core idles while the last chunk runs alone) with at most AUTO_CHUNK_MAX stars each,
    e.g. 240 stars on 2 cores -> 2 chunks of 120; with ``bytes_per_star`` (the light curves'
    mean size) the cap is AUTO_CHUNK_BYTES of light curves, within AUTO_CHUNK_MAX to
    AUTO_CHUNK_STARS_MAX stars. Chunks of one observation cost about the same: every stage
    processes the same kinds of stars. On a scheduler: equal chunks of at most
    SCHEDULER_CHUNK_MAX stars.
    """
    n = max(int(n_stars), 1)
    if slots is None:
        n_chunks = math.ceil(n / SCHEDULER_CHUNK_MAX)
    else:
        slots = max(int(slots), 1)
        cap = AUTO_CHUNK_MAX
        if bytes_per_star and bytes_per_star > 0:
            cap = min(max(AUTO_CHUNK_MAX, int(AUTO_CHUNK_BYTES // bytes_per_star)),
                      AUTO_CHUNK_STARS_MAX)
        n_chunks = min(n, slots * math.ceil(n / (slots * cap)))
    return math.ceil(n / n_chunks)


def run_cpus(slots: int | None) -> set[int] | None:
    """The CPUs a single-machine run is confined to: the first ``slots`` of this process's
    when ``--maxCores`` asks for fewer than it may use, else None (no confinement). A module
    spreads a chunk's stars over the CPUs it may run on (stellarflow_contracts.pool), so
    without this a run would use more CPUs than --maxCores says."""
    try:
        mine = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None
    if slots is None or slots >= len(mine):
        return None
    return set(mine[:slots])


@contextlib.contextmanager
def confined_to(cpus: set[int] | None) -> Iterator[None]:
    """Processes started inside inherit ``cpus`` as their affinity (this thread's only)."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def site_slots(site: str, runner: str = "toil", extra_args: list[str] | None = None) -> int | None:
    """One-core job slots a run gets: --maxCores (command line, then the site profile) or this
    machine's cores for a single-machine batch system and for cwltool; None on a scheduler."""
    import argparse

    settings = sites.profile_settings(site) if runner == "toil" else {}
    if settings.get("batchSystem", sites.LOCAL_BATCH_SYSTEM) not in sites.LOCAL_BATCH_SYSTEMS:
        return None
    given = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    given.add_argument("--maxCores", type=float)
    try:
        max_cores = given.parse_known_args(list(extra_args or []))[0].maxCores
    except argparse.ArgumentError:  # a bad value: toil-cwl-runner rejects it with its own line
        max_cores = None
    if max_cores is None:
        max_cores = settings.get("maxCores")
    return max(int(float(max_cores)), 1) if max_cores else (os.cpu_count() or 1)


def resolve_chunk_size(chunk_size: int | None, n_stars: int, *, site: str = "local",
                       runner: str = "toil", extra_args: list[str] | None = None,
                       bytes_per_star: float | None = None) -> int:
    """An explicit chunk size (>= 1), or the automatic one for this site (None)."""
    if chunk_size is None:
        return auto_chunk_size(n_stars, site_slots(site, runner, extra_args), bytes_per_star)
    if chunk_size < 1:
        raise InputError(None, f"--chunk-size must be >= 1, got {chunk_size}")
    return int(chunk_size)


def mean_lightcurve_bytes(m: manifest_mod.Manifest) -> float | None:
    """Mean size of the manifest's readable light curves (None when there is none)."""
    sizes = []
    for s in m.stars:
        if s.lightcurve is not None:
            try:
                sizes.append(s.lightcurve.stat().st_size)
            except OSError:
                continue
    return sum(sizes) / len(sizes) if sizes else None


def run_manifest(manifest_path: str | os.PathLike[str], outdir: Path, *,
                 chunk_size: int | None = None, figures: str | None = None,
                 **kwargs: Any) -> RunResult:
    """Validate a manifest (InputError before any work) and run it.

    ``chunk_size`` None: automatic for the site (``resolve_chunk_size``).
    ``figures`` (all, notable, none): which stars get a PNG; None: the workflow's default (all).
    """
    if figures is not None and figures not in FIGURES:
        raise InputError(None, f"--figures must be one of {', '.join(FIGURES)}, got {figures!r}")
    m = manifest_mod.load(manifest_path, allowed_workflows=tuple(ALLOWED_WORKFLOWS))
    size = resolve_chunk_size(chunk_size, len(m.stars), site=kwargs.get("site", "local"),
                              runner=kwargs.get("runner", "toil"),
                              extra_args=kwargs.get("extra_args"),
                              bytes_per_star=mean_lightcurve_bytes(m))
    kwargs.setdefault("manifest", Path(manifest_path))
    job = m.cwl_job(size)
    if figures is not None:
        job["figures"] = figures
    return run_job(job, observation_id=m.observation_id, outdir=outdir,
                   workflow=m.workflow, **kwargs)


def add_arguments(p: Any) -> None:
    p.add_argument("manifest", type=Path, help="observation manifest (YAML or JSON)")
    p.add_argument("--outdir", type=Path, required=True,
                   help="outputs go to OUTDIR/<observation_id>/; "
                        "run records to OUTDIR/.stellarflow/")
    p.add_argument("--site", default="local",
                   help="site profile from jobstore_config/ (default: local)")
    p.add_argument("--no-container", action="store_true",
                   help="run steps in the venv instead of their images (development)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="stars per chunk, the unit of scatter (default: automatic; on this "
                        "machine whole rounds of equal chunks over the cores, at most "
                        f"{AUTO_CHUNK_MAX} stars each, more for short light curves (up to "
                        f"{AUTO_CHUNK_STARS_MAX}); on a scheduler at most {SCHEDULER_CHUNK_MAX})")
    p.add_argument("--figures", choices=FIGURES, default=None,
                   help="which stars get a PNG: all (the default), notable (failed stars and "
                        "transit candidates) or none; every star gets its product HDF5, which "
                        "holds all of the figure's data")
    p.add_argument("--runner", choices=RUNNERS, default="toil",
                   help="toil-cwl-runner (default) or cwltool (for comparison/validation)")
    p.add_argument("--fake", action="append", default=[], metavar="MODULE",
                   help="run MODULE's step with a contract-conformant fake (its data passes, its "
                        "results are NaN; repeatable); the catalogue and report say so")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress on stderr (a bar on a terminal, plain lines otherwise)")


def cmd_run(args: Any) -> int:
    result = run_manifest(args.manifest, args.outdir, chunk_size=args.chunk_size,
                          figures=args.figures, site=args.site,
                          container=not args.no_container, runner=args.runner, fakes=args.fake,
                          progress=not args.no_progress)
    if args.json:
        print(result.to_json())
    else:
        print(f"{result.observation_id}: {result.stars_ok} ok, {result.stars_failed} failed; "
              f"catalogue {result.catalogue}; report {result.report}")
    return 0
