"""Site profiles: jobstore_config/<name>.yaml (Toil --config files) -> a toil-cwl-runner command.

A profile is Toil's own ``--config`` YAML; ``jobstore_config/<name>.env`` (optional, KEY=VALUE
lines, shell-sourceable) holds what Toil takes only from the environment (TOIL_GRIDENGINE_PE,
TOIL_TORQUE_ARGS, ...) and stellarflow's pilot allocation. ``toil_invocation`` also checks before
anything runs that the site's scheduler answers, and refuses profiles that cannot run here
(mesos) with the reason.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RunError
from .paths import repo_root

# The batch system of local profiles: Toil's single_machine without its idle waits (the plugin in
# jobstore_config/toil-plugin). Both names mean "this machine's cores" to the code below.
LOCAL_BATCH_SYSTEM = "stellarflow_single_machine"
LOCAL_BATCH_SYSTEMS = (LOCAL_BATCH_SYSTEM, "single_machine")

MESOS_REASON = (
    "site 'mesos' cannot run: Toil 9.6 still lists a mesos batch system, but its pymesos "
    "dependency installs only on Python < 3.11 (stellarflow needs 3.11) and upstream calls Mesos "
    "support inactive (Apache Mesos is retired); use --site slurm, grid_engine, htcondor or "
    "kubernetes")

KUBERNETES_REASON = (
    "site 'kubernetes' needs a Kubernetes cluster (a kubeconfig in $KUBECONFIG or ~/.kube/config, "
    "or running in a pod), a job store every pod reaches (S3: --jobStore aws:REGION:NAME, or a "
    "shared volume) and the stellarflow images in a registry the nodes pull from (Toil runs CWL "
    "steps with Singularity there); none is configured on this machine: see "
    "jobstore_config/kubernetes/README.md")


def profile_dir() -> Path:
    return repo_root() / "jobstore_config"


def available() -> list[str]:
    return sorted(p.stem for p in profile_dir().glob("*.yaml"))


def profile_path(site: str) -> Path:
    p = profile_dir() / f"{site}.yaml"
    if not p.is_file():
        raise RunError(f"unknown site profile {site!r}; available: {', '.join(available())}")
    return p


def profile_settings(site: str) -> dict:
    """The profile's YAML as a dict (Toil option names as keys)."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(profile_path(site).read_text())
    return dict(data or {})


def profile_env(site: str) -> dict[str, str]:
    """KEY=VALUE lines of jobstore_config/<site>.env (shell quoting; # comments)."""
    path = profile_dir() / f"{site}.env"
    env: dict[str, str] = {}
    if not path.is_file():
        return env
    for n, line in enumerate(path.read_text().splitlines(), 1):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        key, sep, value = " ".join(words).removeprefix("export ").partition("=")
        if not sep or not key.isidentifier():
            raise RunError(f"{path}:{n}: expected KEY=VALUE, got {line.strip()!r}")
        env[key] = value
    return env


@dataclass
class Invocation:
    """How to start the runner for a site: ``wrapper + argv`` is the command line (wrapper: a
    pilot-job submission, empty otherwise); ``env`` extra environment for it."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    wrapper: list[str] = field(default_factory=list)

    @property
    def command(self) -> list[str]:
        return self.wrapper + self.argv


def _run(argv: list[str], prefer: str = "") -> tuple[int, str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(argv)}: no answer in 15 s"
    # The most telling line (scontrol ping frames its answer in lines of asterisks).
    out = [ln.strip() for ln in (p.stdout + p.stderr).splitlines() if ln.strip("*\t ")]
    picked = [ln for ln in out if prefer and prefer in ln] or out
    return p.returncode, (picked[0] if prefer and picked else (out[-1] if out else ""))


def slurm_problem() -> str | None:
    """None when slurmctld answers, else one line saying what is wrong and how to start it."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return ("Slurm client commands (sbatch, scontrol) are not installed; run "
                "scripts/install-system, then scripts/slurm-cluster up (make slurm-up)")
    conf = os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    if not Path(conf).exists():
        return (f"Slurm is not running (no {conf}); start the local cluster with "
                "scripts/slurm-cluster up (make slurm-up)")
    rc, out = _run(["scontrol", "ping"], prefer="Slurmctld")
    if rc != 0 or "is UP" not in out:
        return (f"Slurm is not running (scontrol ping: {out or 'no answer'}); start the local "
                "cluster with scripts/slurm-cluster up (make slurm-up)")
    return None


def grid_engine_problem() -> str | None:
    if shutil.which("qsub") is None or shutil.which("qstat") is None:
        return ("Grid Engine client commands (qsub, qstat) are not installed; run "
                "scripts/install-system, then scripts/sge-cluster up (make sge-up)")
    rc, out = _run(["qstat", "-f"])
    if rc != 0:
        return (f"Grid Engine is not running (qstat: {out or 'no answer'}); start the local cell "
                "with scripts/sge-cluster up (make sge-up)")
    return None


def _commands_problem(system: str, commands: tuple[str, ...]) -> str | None:
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        return (f"{system} is not available here ({', '.join(missing)} not found); this profile is "
                "for sites that run it (configured, not exercised on this machine)")
    return None


def kubernetes_problem() -> str | None:
    kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
    if os.environ.get("KUBERNETES_SERVICE_HOST") or kubeconfig.is_file():
        return None
    return KUBERNETES_REASON


def preflight(site: str, batch_system: str) -> None:
    """Raise RunError (one line, with what to do) when the site cannot run here right now."""
    if batch_system == "mesos":
        raise RunError(MESOS_REASON)
    checks = {
        "slurm": slurm_problem,
        "grid_engine": grid_engine_problem,
        "torque": lambda: _commands_problem("PBS/Torque", ("qsub", "qstat", "pbsnodes")),
        "lsf": lambda: _commands_problem("LSF", ("bsub", "bjobs")),
        "htcondor": lambda: _commands_problem("HTCondor", ("condor_submit", "condor_q")),
        "kubernetes": kubernetes_problem,
    }
    if site == "slurm-pilot":
        problem = slurm_problem()
    else:
        problem = checks.get(batch_system, lambda: None)()
    if problem:
        raise RunError(f"site {site!r}: {problem}")


def pilot_wrapper(env: dict[str, str], run_dir: Path) -> list[str]:
    """The `sbatch --wait` prefix that runs the whole workflow inside one Slurm allocation."""
    args = shlex.split(env.get("STELLARFLOW_PILOT_SBATCH_ARGS", ""))
    return [sys.executable, "-m", "stellarflow.pilot", "--chdir", str(run_dir), *args, "--"]


def toil_invocation(site: str, *, jobstore: str, workdir: Path, container: bool,
                    restart: bool = False, check: bool = True) -> Invocation:
    """The toil-cwl-runner command (and environment, and pilot wrapper) for a site profile.

    ``check``: run the pre-flight check (scheduler answering) first.
    """
    cfg = profile_path(site)
    settings = profile_settings(site)
    batch_system = str(settings.get("batchSystem", LOCAL_BATCH_SYSTEM))
    env = profile_env(site)
    if check:
        preflight(site, batch_system)
    argv = ["toil-cwl-runner", "--config", str(cfg), "--jobStore", jobstore]
    # A profile may name node-local scratch; otherwise the run's own folder.
    if "workDir" not in settings:
        workdir.mkdir(parents=True, exist_ok=True)
        argv += ["--workDir", str(workdir)]
    argv.append("--podman" if container else "--no-container")
    if restart:
        argv.append("--restart")
    if batch_system == LOCAL_BATCH_SYSTEM:
        # The plugin's fork server starts while the leader loads the CWL.
        env.setdefault("STELLARFLOW_FORK_PREWARM", "1")
    wrapper = pilot_wrapper(env, workdir.parent) if site == "slurm-pilot" else []
    return Invocation(argv=argv, env=env, wrapper=wrapper)


def runner_path_env() -> dict[str, str]:
    """PATH with the project's podman wrapper and the venv's bin first (Toil finds its worker,
    and cwltool the modules' commands in --no-container runs, through PATH). The Toil plugins are
    installed in the venv (jobstore_config/toil-plugin), so nothing goes on PYTHONPATH."""
    root = repo_root()
    first = [str(root / "scripts" / "bin"), str(Path(sys.executable).parent)]
    path = os.pathsep.join(first + [os.environ.get("PATH", "/usr/bin:/bin")])
    env = {"PATH": path}
    podman = os.environ.get(REAL_PODMAN_ENV) or real_podman(path)
    if podman:
        env[REAL_PODMAN_ENV] = podman
    return env


REAL_PODMAN_ENV = "STELLARFLOW_REAL_PODMAN"
PODMAN_WRAPPER_MARKER = b"stellarflow-podman-wrapper"


def real_podman(path: str) -> str | None:
    """The podman the wrapper in scripts/bin hands over to: the first on ``path`` that is not a
    copy of the wrapper (found once here instead of on each of a job's podman calls)."""
    for d in [*path.split(os.pathsep), "/usr/bin", "/usr/local/bin"]:
        candidate = Path(d or ".") / "podman"
        try:
            if not candidate.is_file() or not os.access(candidate, os.X_OK):
                continue
            with open(candidate, "rb") as f:
                if PODMAN_WRAPPER_MARKER in f.read(4096):
                    continue
        except OSError:
            continue
        return str(candidate.resolve())
    return None


def failure_summary(toil_log: Path, tail_lines: int = 5) -> str | None:
    """One line for a failed Toil run from its --logFile: the failed step(s), why the batch
    system ended them (e.g. TIMELIMIT, MEMLIMIT) and how often, and the tail of the step's stderr.
    None when the log names no failed job (run.py falls back to its own error line)."""
    import re

    try:
        text = Path(toil_log).read_text(errors="replace")
    except OSError:
        return None
    m = re.search(r"^Failed jobs at end of the run: (.+)$", text, re.M)
    if not m:
        return None
    steps = re.findall(r"'\w+' (\S+) kind-", m.group(1)) or [m.group(1).strip()]
    reasons = re.findall(r"^Exit reason: (\w+)$", text, re.M)
    parts = [f"step {', '.join(dict.fromkeys(steps))} failed"]
    if reasons:
        counts = {r: reasons.count(r) for r in dict.fromkeys(reasons)}
        parts.append("ended by the batch system: "
                     + ", ".join(f"{r} x{n}" for r, n in counts.items()))
    blocks = text.split("Failed command standard error:")
    if len(blocks) > 1:
        lines = []
        for ln in blocks[-1].splitlines()[1:]:
            if re.match(r"^\s*\[\d{4}-\d\d-\d\dT", ln) or not ln.startswith(("\t", " ")):
                break
            if ln.strip():
                lines.append(ln.strip())
        if lines:
            parts.append("stderr: " + " | ".join(lines[-tail_lines:]))
    return "; ".join(parts)[:600]
