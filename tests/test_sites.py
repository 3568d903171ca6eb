"""Site profiles (jobstore_config/): every profile loads as a Toil --config file, pre-flight checks
fail with one line saying what to do, the DataBiosphere/toil#5577 plugin, the Kubernetes
manifests validate. The scheduler runs themselves are in test_slurm.py and test_sge.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stellarflow import sites
from stellarflow.errors import RunError

from conftest import REPO, runner_env

PROFILES = ["local", "slurm", "slurm-pilot", "grid_engine", "torque", "htcondor", "lsf",
            "kubernetes", "mesos"]
K8S_DIR = REPO / "jobstore_config" / "kubernetes"


@pytest.fixture(scope="module")
def toil_parse():
    """Toil's own toil-cwl-runner option parser (what `--config FILE` goes through), in-process."""
    from toil.cwl.cwltoil import get_options

    return get_options


def test_every_profile_exists():
    assert set(PROFILES) <= set(sites.available())


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_loads_as_toil_config(profile, toil_parse, tmp_path):
    """Dry check of `toil-cwl-runner --config jobstore_config/NAME.yaml`: every key is a Toil option
    (an unknown one would be left over as a workflow argument), Toil's Config accepts the values,
    the batch system is registered."""
    from toil.batchSystems.registry import get_batch_systems
    from toil.common import Config

    path = sites.profile_path(profile)
    opts = toil_parse(["--config", str(path), "--jobStore", str(tmp_path / "js"), "wf.cwl"])
    assert opts.cwljob == [], f"{path.name}: keys Toil does not know: {opts.cwljob}"
    settings = sites.profile_settings(profile)
    assert opts.batchSystem == settings["batchSystem"]
    assert opts.batchSystem in get_batch_systems()
    config = Config()
    config.setOptions(opts)
    assert config.retryCount >= 1
    assert config.clean == "onSuccess"
    assert config.writeLogs and config.writeLogs.endswith("toil-logs")
    # Every profile file explains itself.
    assert path.read_text().startswith(f'# Site profile "{profile}"')


def test_unknown_key_is_caught_by_the_dry_check(toil_parse, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("config_version: 1.0\nbatchSystem: slurm\nslurmPartitoin: main\n")
    opts = toil_parse(["--config", str(bad), "--jobStore", str(tmp_path / "js"), "wf.cwl"])
    assert any("slurmPartitoin" in a for a in opts.cwljob)


def test_toil_cwl_runner_accepts_a_profile_directly(tmp_path):
    """The real CLI with --config (help exits before running anything)."""
    p = subprocess.run(["toil-cwl-runner", "--config", str(sites.profile_path("slurm")), "--help"],
                       env=runner_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "--slurmGPUPartition" in p.stdout


def test_profile_env_files():
    assert sites.profile_env("grid_engine")["TOIL_GRIDENGINE_PE"] == "smp"
    assert "--cpus-per-task=2" in sites.profile_env("slurm-pilot")["STELLARFLOW_PILOT_SBATCH_ARGS"]
    assert sites.profile_env("local") == {}


def test_bad_env_line_names_file_and_line(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "x.yaml").write_text("config_version: 1.0\n")
    (tmp_path / "cfg" / "x.env").write_text("# ok\nA=1\nnot an assignment\n")
    monkeypatch.setattr(sites, "profile_dir", lambda: tmp_path / "cfg")
    with pytest.raises(RunError, match=r"x\.env:3: expected KEY=VALUE"):
        sites.profile_env("x")


def test_unknown_site_lists_the_profiles():
    with pytest.raises(RunError, match="unknown site profile 'nope'; available: .*slurm-pilot"):
        sites.profile_path("nope")


def test_mesos_fails_at_once_with_the_reason(tmp_path):
    with pytest.raises(RunError) as exc:
        sites.toil_invocation("mesos", jobstore=str(tmp_path / "js"), workdir=tmp_path / "w",
                              container=False)
    msg = str(exc.value)
    assert "pymesos" in msg and "Python < 3.11" in msg and "inactive" in msg
    assert "\n" not in msg
    assert not (tmp_path / "w").exists()


def test_stellarflow_run_site_mesos_one_line(tmp_path):
    manifest = tmp_path / "m.yaml"
    (tmp_path / "a.csv").write_text("time,flux\n1,1\n2,1\n")
    manifest.write_text("manifest_version: 1\nobservation_id: t\nworkflow: sas\n"
                        "stars: [{star_id: a, lightcurve: a.csv}]\n")
    p = subprocess.run(["stellarflow", "run", str(manifest), "--outdir", str(tmp_path / "o"),
                        "--site", "mesos", "--no-container"], env=runner_env(),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "pymesos" in lines[0], p.stderr


def _down_slurm_conf(tmp_path: Path) -> Path:
    """A valid Slurm config for a cluster whose controller is not running (port 6999)."""
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=down\nSlurmctldHost=localhost\nSlurmctldPort=6999\n"
                    "AuthType=auth/munge\nNodeName=localhost CPUs=1 State=UNKNOWN\n"
                    "PartitionName=main Nodes=localhost Default=YES State=UP\n")
    return conf


@pytest.mark.skipif(subprocess.run(["which", "scontrol"], capture_output=True).returncode != 0,
                    reason="slurm-client not installed (scripts/install-system)")
@pytest.mark.parametrize("site", ["slurm", "slurm-pilot"])
def test_slurm_not_running_says_how_to_start_it(site, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(_down_slurm_conf(tmp_path)))
    with pytest.raises(RunError) as exc:
        sites.toil_invocation(site, jobstore=str(tmp_path / "js"), workdir=tmp_path / "w",
                              container=False)
    msg = str(exc.value)
    assert "Slurm is not running" in msg and "scripts/slurm-cluster up" in msg, msg
    assert "Slurmctld(primary)" in msg and "DOWN" in msg, msg
    assert "\n" not in msg


def test_slurm_config_missing_is_not_running(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "absent.conf"))
    msg = sites.slurm_problem() or ""
    assert ("Slurm is not running" in msg or "not installed" in msg) and "slurm-cluster up" in msg


def test_grid_engine_not_running_says_how_to_start_it(tmp_path, monkeypatch):
    # A cell with no master: qstat fails at once.
    (tmp_path / "cell" / "common").mkdir(parents=True)
    (tmp_path / "cell" / "common" / "act_qmaster").write_text("nohost.invalid\n")
    monkeypatch.setenv("SGE_ROOT", str(tmp_path))
    monkeypatch.setenv("SGE_CELL", "cell")
    msg = sites.grid_engine_problem() or ""
    assert "sge-cluster up" in msg and ("not running" in msg or "not installed" in msg), msg


def test_unavailable_batch_systems_are_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    for site, name in [("torque", "PBS/Torque"), ("lsf", "LSF"), ("htcondor", "HTCondor")]:
        with pytest.raises(RunError, match=f"{name} is not available here"):
            sites.toil_invocation(site, jobstore="js", workdir=tmp_path / "w", container=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    with pytest.raises(RunError, match="Kubernetes cluster.*Singularity"):
        sites.toil_invocation("kubernetes", jobstore="js", workdir=tmp_path / "w",
                              container=False)


def test_pilot_invocation_wraps_sbatch(tmp_path):
    inv = sites.toil_invocation("slurm-pilot", jobstore=str(tmp_path / "js"),
                                workdir=tmp_path / "run" / "work", container=False, check=False)
    assert inv.wrapper[:3] == [sys.executable, "-m", "stellarflow.pilot"]
    assert "--cpus-per-task=2" in inv.wrapper and inv.wrapper[-1] == "--"
    assert inv.command == inv.wrapper + inv.argv
    assert inv.argv[0] == "toil-cwl-runner" and "--no-container" in inv.argv
    # Inside the allocation Toil runs on one machine, capped at the allocation.
    settings = sites.profile_settings("slurm-pilot")
    assert settings["batchSystem"] == "stellarflow_single_machine" and settings["maxCores"] == 2


def test_direct_invocations_have_no_wrapper(tmp_path):
    inv = sites.toil_invocation("local", jobstore=str(tmp_path / "js"), workdir=tmp_path / "w",
                                container=True, restart=True)
    assert inv.wrapper == [] and "--podman" in inv.argv and "--restart" in inv.argv
    assert inv.argv[inv.argv.index("--workDir") + 1] == str(tmp_path / "w")


def test_failure_summary_names_step_reason_and_stderr():
    """From the real log of a Slurm run whose step hit its time limit twice (slow test in
    test_slurm.py): step name, the scheduler's reason with its count, the step's stderr tail."""
    log = REPO / "tests" / "data" / "scheduler" / "timelimit-toil.log"
    msg = sites.failure_summary(log)
    assert msg == ("step sleepy_step failed; ended by the batch system: TIMELIMIT x2; "
                   "stderr: sleepy_step starting, will sleep 300 s")


def test_failure_summary_none_without_failed_jobs(tmp_path):
    (tmp_path / "ok.log").write_text("[I] CWL run complete!\n")
    assert sites.failure_summary(tmp_path / "ok.log") is None
    assert sites.failure_summary(tmp_path / "absent.log") is None


# --- DataBiosphere/toil#5577 plugin -------------------------------------------------------------


def test_toil_5577_is_present_in_this_toil():
    """If this fails, upstream fixed the bug: delete toil_batch_system_toil5577 from
    jobstore_config/toil-plugin (the factories already return the upstream classes)."""
    from toil_batch_system_toil5577 import fix

    assert all(fix.has_bug(fix.upstream_class(n)) for n in fix.AFFECTED)


def test_fixed_classes_accept_walltime():
    import inspect

    from toil_batch_system_toil5577 import fix

    for name in fix.AFFECTED:
        cls = fix.fixed_class(fix.upstream_class(name))
        assert issubclass(cls, fix.upstream_class(name))
        params = list(inspect.signature(cls.GridEngineThread.prepareSubmission).parameters)
        assert params[:4] == ["self", "cpu", "memory", "walltime"]
        assert not fix.has_bug(cls)
        assert fix.fixed_class(cls) is cls  # no double wrapping once fixed


def test_grid_engine_qsub_line_through_the_fix(monkeypatch):
    """The fixed thread builds Toil's real qsub line (walltime dropped, PE for 2 cores)."""
    from toil_batch_system_toil5577 import fix

    cls = fix.fixed_class(fix.upstream_class("grid_engine"))
    thread = cls.GridEngineThread.__new__(cls.GridEngineThread)

    class Boss:  # the attributes prepareQsub reads from its batch system
        environment: dict[str, str] = {}

        class config:  # noqa: N801
            manualMemArgs = False

        @staticmethod
        def format_std_out_err_path(job_id, batch_id, kind):
            return f"/logs/{job_id}.{kind}"

    thread.boss = Boss()
    monkeypatch.setenv("TOIL_GRIDENGINE_PE", "smp")
    line = thread.prepareSubmission(2, 2 ** 30, 3600, 7, "_toil_worker a b", "step", None, None)
    assert line[:2] == ["qsub", "-V"] and ["-pe", "smp", "2"] == line[line.index("-pe"):][:3]
    assert line[-3:] == ["_toil_worker", "a", "b"]


def test_toil_finds_the_installed_plugin_with_no_pythonpath():
    """Toil's plugin mechanism (toil_batch_system_* packages installed in the venv) in a fresh
    process with no PYTHONPATH: the plugin is installed one way only, as a package."""
    env = {k: v for k, v in runner_env().items() if k != "PYTHONPATH"}
    env.update(sites.runner_path_env())
    assert "PYTHONPATH" not in sites.runner_path_env()
    code = ("from toil.batchSystems.registry import get_batch_system as g;"
            "print(g('grid_engine').__module__, g('torque').__module__, g('lsf').__module__,"
            " g('slurm').__module__, g('single_machine').__module__,"
            " g('stellarflow_single_machine').__module__)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=120, cwd="/").stdout.split()
    assert out[:3] == ["toil_batch_system_toil5577.fix"] * 3
    assert out[3] == "toil.batchSystems.slurm"
    assert out[4] == "toil.batchSystems.singleMachine"  # Toil's own, not shadowed
    assert out[5] == "toil_batch_system_stellarflow.single_machine"


# --- Kubernetes manifests ------------------------------------------------------------------------


def _k8s_docs(path: Path) -> list[dict]:
    import yaml

    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_kubernetes_manifests_validate():
    kv = pytest.importorskip("kubernetes_validate")
    kinds = set()
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in _k8s_docs(path):
            kv.validate(doc, "1.37.0", strict=True)
            kinds.add(doc["kind"])
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "Job",
            "PersistentVolumeClaim"} <= kinds
    # The leader Job runs as the ServiceAccount the profile names, with the profile mounted.
    job = next(d for d in _k8s_docs(K8S_DIR / "leader-job.yaml") if d["kind"] == "Job")
    spec = job["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == sites.profile_settings("kubernetes")[
        "kubernetesServiceAccount"]
    assert "--config=/config/kubernetes.yaml" in spec["containers"][0]["args"]


def test_kubernetes_validation_catches_a_mistake():
    kv = pytest.importorskip("kubernetes_validate")
    job = _k8s_docs(K8S_DIR / "leader-job.yaml")[0]
    job["spec"]["template"]["spec"]["restartPolicy"] = 3  # must be a string
    with pytest.raises(kv.ValidationError):
        kv.validate(job, "1.37.0", strict=True)


def test_no_site_profile_names_a_registry_host():
    for path in (REPO / "jobstore_config").rglob("*.yaml"):
        text = path.read_text()
        assert "docker.io" not in text and "quay.io" not in text, path
