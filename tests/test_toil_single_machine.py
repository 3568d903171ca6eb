"""The plugin's stellarflow_single_machine (jobstore_config/toil-plugin): short leader poll,
workers forked from a warm server. Real Toil workflows in fresh processes with the environment
`stellarflow run` gives toil-cwl-runner; the CWL end-to-end tests run on it too. Also: the
plugin falls back to Toil's own class on another Toil, and says when upstream no longer needs it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from toil_batch_system_stellarflow import single_machine as sm

from stellarflow import sites

from conftest import REPO, VENV_BIN, runner_env

# A Toil workflow: every leaf reports its pid, parent and session; MODE picks a failure.
WORKFLOW = textwrap.dedent("""
    import json, os, re, sys, time
    from toil.common import Toil
    from toil.job import Job
    from toil.exceptions import FailedJobsException

    def leaf(job, i, mode):
        if mode == "fail" and i == 1:
            raise RuntimeError("leaf 1 fails on purpose")
        if mode == "hang" and i == 1:
            with open(os.environ["HANG_PIDFILE"], "w") as f:
                f.write(str(os.getpid()))
            time.sleep(600)
        return {"pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0),
                "omp": os.environ.get("OMP_NUM_THREADS")}

    def root(job, mode):
        return [job.addChildJobFn(leaf, i, mode).rv() for i in range(3)]

    if __name__ == "__main__":
        jobstore, mode = sys.argv[1], sys.argv[2]
        opts = Job.Runner.getDefaultOptions(jobstore)
        opts.batchSystem = "stellarflow_single_machine"
        opts.maxCores = 2
        opts.retryCount = 0
        opts.clean = "always"
        try:
            with Toil(opts) as toil:
                leaves = toil.start(Job.wrapJobFn(root, mode))
        except FailedJobsException as exc:
            failed = int(re.search(r"contains (\\d+) failed jobs", exc.msg).group(1))
            print(json.dumps({"leader": os.getpid(), "failed": failed}))
            sys.exit(0)
        print(json.dumps({"leader": os.getpid(), "leaves": leaves}))
""")


def plugin_env(**extra: str) -> dict[str, str]:
    """The environment `stellarflow run` gives toil-cwl-runner, plus ``extra``."""
    env = runner_env()
    env.update(sites.runner_path_env())
    env.update(extra)
    return env


def run_workflow(tmp_path: Path, mode: str, fork: bool = True) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "wf.py"
    script.write_text(WORKFLOW)
    env = plugin_env(**{sm.FORK_ENV: "1" if fork else "0"})
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "js"), mode], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_workers_are_forked_from_one_warm_server(tmp_path):
    out = run_workflow(tmp_path, "ok")
    leaves = out["leaves"]
    parents = {leaf["ppid"] for leaf in leaves}
    assert len(parents) == 1 and out["leader"] not in parents  # one server, not the leader
    assert all(leaf["sid"] == leaf["pid"] for leaf in leaves)  # own session, as Toil's Popen
    assert all(leaf["omp"] == "1" for leaf in leaves)  # the job environment Toil sets


# Two chains of three jobs under one core; each job appends its name to a file. A job needs
# more memory than the one before it, so that Toil's worker never chains it into its predecessor.
CHAINS = textwrap.dedent("""
    import os, sys
    from toil.common import Toil
    from toil.job import Job

    def step(job, path, chain, i):
        with open(path, "a") as f:
            f.write(f"{chain}{i} ")
        if i < 3:
            job.addChildJobFn(step, path, chain, i + 1, memory=f"{100 + 50 * i}M", cores=1)

    def root(job, path):
        for chain in "ab":
            job.addChildJobFn(step, path, chain, 1, memory="100M", cores=1)

    if __name__ == "__main__":
        opts = Job.Runner.getDefaultOptions(sys.argv[1])
        opts.batchSystem = "stellarflow_single_machine"
        opts.maxCores = 1
        opts.clean = "always"
        with Toil(opts) as toil:
            toil.start(Job.wrapJobFn(root, sys.argv[2], memory="100M", cores=1))
""")


@pytest.mark.parametrize("order", [None, "issued"])
def test_the_newest_job_starts_first(tmp_path, order):
    """Newest first (the default): a chain runs through before the other starts, as a chunk
    does before the chunks not yet started. STELLARFLOW_JOB_ORDER=issued: Toil's order, both
    chains a step at a time."""
    script, out = tmp_path / "chains.py", tmp_path / "order.txt"
    script.write_text(CHAINS)
    env = plugin_env()
    env.pop(sm.ORDER_ENV, None)
    if order:
        env[sm.ORDER_ENV] = order
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "js"), str(out)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ran = out.read_text().split()
    first = ran[0][0]
    if order is None:
        other = "b" if first == "a" else "a"
        assert ran == [f"{c}{i}" for c in (first, other) for i in (1, 2, 3)], ran
    else:
        assert sorted(ran[:2]) == ["a1", "b1"] and sorted(ran[2:4]) == ["a2", "b2"], ran


def test_job_order_local_jobs_first_then_the_newest():
    """Toil's local jobs (a chunk's DeleteIntermediates, the workflow's bookkeeping) go before
    every step, even steps issued after them; a job put back for want of resources keeps its
    place."""
    order = sm.JobOrderQueue()

    def issue(job_id, local=False):
        order.next_local = local
        order.put(("cmd", job_id))
        order.next_local = False

    issue(1)
    issue(2)
    issue(3, local=True)  # e.g. chunk 2's DeleteIntermediates
    issue(4)              # a step issued after it
    taken = [order.get_nowait()[1] for _ in range(2)]
    assert taken == [3, 4]
    order.put(("cmd", 4))  # no room for it yet: the scheduling thread puts it back
    issue(5, local=True)
    assert [order.get_nowait()[1] for _ in range(4)] == [5, 4, 2, 1]
    with pytest.raises(queue.Empty):
        order.get_nowait()


def test_a_prewarmed_server_is_the_one_that_forks(tmp_path):
    """PREWARM_ENV: the server starts when the plugin loads, and the batch system takes it."""
    script = tmp_path / "wf.py"
    script.write_text(WORKFLOW.replace(
        '    try:\n        with Toil(opts)',
        '    from toil_batch_system_stellarflow import single_machine as sm\n'
        '    early = sm._prewarmed.proc.pid if sm._prewarmed else None\n'
        '    try:\n        with Toil(opts)').replace(
        'print(json.dumps({"leader": os.getpid(), "leaves": leaves}))',
        'print(json.dumps({"leader": os.getpid(), "leaves": leaves, "early": early}))'))
    env = plugin_env(**{sm.FORK_ENV: "1", sm.PREWARM_ENV: "1"})
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "js"), "ok"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["early"] is not None
    assert {leaf["ppid"] for leaf in out["leaves"]} == {out["early"]}


def test_forking_can_be_turned_off(tmp_path):
    out = run_workflow(tmp_path, "ok", fork=False)
    # Toil's own start: `/bin/sh -c _toil_worker ...` in a new session; the worker is its child.
    assert all(leaf["ppid"] == leaf["sid"] for leaf in out["leaves"])


def test_a_failing_forked_worker_fails_its_job(tmp_path):
    """The failed leaf and its parent: what Toil reports when it starts workers itself."""
    forked = run_workflow(tmp_path / "forked", "fail")["failed"]
    assert forked >= 1
    assert forked == run_workflow(tmp_path / "started", "fail", fork=False)["failed"]


def test_stopping_the_leader_stops_a_forked_worker(tmp_path):
    """SIGTERM to the leader: Toil shuts its batch system down and kills the running jobs
    through the Popen-like handles; the forked worker must not outlive the run."""
    script = tmp_path / "wf.py"
    script.write_text(WORKFLOW)
    pidfile = tmp_path / "hang.pid"
    env = plugin_env(**{sm.FORK_ENV: "1", "HANG_PIDFILE": str(pidfile)})
    leader = subprocess.Popen([sys.executable, str(script), str(tmp_path / "js"), "hang"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        worker = int(pidfile.read_text())
        leader.send_signal(signal.SIGTERM)
        leader.wait(timeout=120)
        deadline = time.monotonic() + 30
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker)
    finally:
        if leader.poll() is None:
            leader.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_server_death_fails_its_workers_and_forking_stops(tmp_path):
    server = sm.ForkServer()
    try:
        # A stand-in worker the server "had": a real process in its own session.
        sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
        stray = sm.ForkedWorker("sleep 300")
        stray._set_pid(sleeper.pid)
        with server._lock:
            server._workers[10 ** 6] = stray
        server.proc.kill()
        assert stray.wait(timeout=30) == -signal.SIGKILL
        assert sleeper.wait(timeout=30) == -signal.SIGKILL
        assert not server.alive
        assert server.spawn(["_toil_worker", "a", "b", "c"], dict(os.environ), "x") is None
    finally:
        server.close()


def test_server_reports_a_worker_exit_status():
    """A worker that cannot parse its arguments exits 2 (argparse), as `_toil_worker` would."""
    server = sm.ForkServer()
    try:
        worker = server.spawn(["_toil_worker"], dict(os.environ), "_toil_worker")
        assert worker is not None and worker.pid > 0
        assert worker.wait(timeout=60) == 2
        assert worker.poll() == 2
    finally:
        server.close()
    assert server.proc.returncode == 0  # stdin closed: the server ends cleanly


@pytest.mark.parametrize("command, is_worker", [
    ("/venv/bin/_toil_worker CWLJob file:/js kind-CWLJob/instance-x --context abc", True),
    ("_toil_worker ResolveIndirect file:/js id", True),
    ("echo _toil_worker", False),
    ("", False),
    ("'unbalanced", False),
])
def test_only_toil_worker_commands_are_forked(command, is_worker):
    assert (sm.worker_argv(command) is not None) is is_worker


def test_leader_waits_at_most_the_short_poll():
    """Toil's leader asks with maxWait=2; the plugin's single_machine waits POLL_S at most."""
    from toil.batchSystems.singleMachine import SingleMachineBatchSystem

    cls = sm.single_machine_class()
    assert issubclass(cls, SingleMachineBatchSystem)
    waits = []

    class Queue:  # records the wait the leader's poll asks for
        def get(self, timeout):
            waits.append(timeout)
            raise queue.Empty

    box = cls.__new__(cls)  # only what getUpdatedBatchJob reads
    box.outputQueue = Queue()
    box._checkOnDaddy = lambda: None
    box._stellarflow_updates_pending = False
    assert box.getUpdatedBatchJob(2) is None
    assert waits == [sm.POLL_S]
    # The leader still holds updates after its turn: no wait (once), then the short poll again.
    box._stellarflow_updates_pending = True
    assert box.getUpdatedBatchJob(2) is None and box.getUpdatedBatchJob(2) is None
    assert waits == [sm.POLL_S, 0, sm.POLL_S]


def test_leader_says_when_it_holds_updates():
    """Leader._process_ready_jobs is wrapped (once) to tell the batch system whether updates
    remain after the turn; a batch system of another kind is told nothing."""
    from toil import leader
    from toil.bus import JobUpdatedMessage

    sm.skip_wait_when_updates_are_pending()
    sm.skip_wait_when_updates_are_pending()  # idempotent: no wrapper around the wrapper
    wrapped = leader.Leader._process_ready_jobs
    assert wrapped._stellarflow and not getattr(wrapped.__wrapped__, "_stellarflow", False)

    class Messages:
        def __init__(self, n):
            self.n = n

        def count(self, kind):
            return self.n if kind is JobUpdatedMessage else 0

    class Ours:
        _stellarflow_updates_pending = False

    class Other:
        pass

    for pending, expected in ((2, True), (0, False)):
        box = type("L", (), {})()
        box.batchSystem, box._messages = Ours(), Messages(pending)
        sm.tell_pending_updates(box, JobUpdatedMessage)
        assert box.batchSystem._stellarflow_updates_pending is expected
    box.batchSystem = Other()
    sm.tell_pending_updates(box, JobUpdatedMessage)
    assert not hasattr(box.batchSystem, "_stellarflow_updates_pending")


def test_service_manager_turns_are_short():
    from toil import serviceManager

    sm.shorten_service_manager_turn()
    sm.shorten_service_manager_turn()  # idempotent: no wrapper around the wrapper
    assert serviceManager.throttle(1.0).min_interval == sm.POLL_S
    assert serviceManager.throttle(0.05).min_interval == 0.05


def test_upstream_still_has_the_costs() -> None:
    """The costs this plugin removes, as Toil 9.6 has them. When this fails, upstream changed:
    measure again (docs/performance.md); if the costs are gone, delete jobstore_config/toil-plugin's
    toil_batch_system_stellarflow and go back to `batchSystem: single_machine` in the profiles."""
    import inspect

    from toil import leader, serviceManager
    from toil.batchSystems import singleMachine

    assert "getUpdatedBatchJob(maxWait=2)" in inspect.getsource(leader.Leader)
    assert "with throttle(1.0):" in inspect.getsource(serviceManager.ServiceManager)
    assert "time.sleep(0.01)" in inspect.getsource(singleMachine.SingleMachineBatchSystem)
    from toil import realtimeLogger, statsAndLogging

    assert "time.sleep(0.5)" in inspect.getsource(statsAndLogging.StatsAndLogging)
    assert "target=cls.loggingServer.serve_forever" in inspect.getsource(
        realtimeLogger.RealtimeLogger)
    assert "_process_ready_jobs()" in inspect.getsource(leader.Leader.innerLoop)


def test_another_toil_gets_its_own_single_machine(monkeypatch) -> None:
    """The version guard: under a Toil the plugin was not written for, the name stays available
    and is Toil's own class (no patched internals)."""
    from toil import version
    from toil.batchSystems import registry
    from toil.batchSystems.singleMachine import SingleMachineBatchSystem

    monkeypatch.setattr(version, "baseVersion", "99.0.0")
    registered = {}
    monkeypatch.setattr(registry, "add_batch_system_factory",
                        lambda name, factory: registered.__setitem__(name, factory))
    sm.register()
    cls = registered[sm.NAME]()
    assert cls.__mro__[1] is SingleMachineBatchSystem and cls.__module__ == sm.__name__
    assert not hasattr(cls, "issueBatchJob") or cls.issueBatchJob is \
        SingleMachineBatchSystem.issueBatchJob


def printed_with_fix_off(code: str, off_env: str) -> list[str]:
    """What ``code`` prints in a fresh interpreter with one fix turned off (``off_env=off``)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, off_env: "off"}, check=True)
    return out.stdout.split()


def test_ruamel_deepcopy_fix() -> None:
    """ruamel.yaml still copies a sequence's attributes once per element (quadratic): the fix
    is needed. When this fails, ruamel.yaml is fixed: delete toil_batch_system_ruamel_deepcopy."""
    import subprocess
    import sys

    code = ("from toil_batch_system_ruamel_deepcopy import fix; "
            "print(fix.has_bug(), fix.apply(), fix.has_bug())")
    # off: ruamel left alone
    assert printed_with_fix_off(code, "STELLARFLOW_RUAMEL_DEEPCOPY") == ["True", "False", "True"]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False", "False"]  # applied at import already
    import copy

    import toil_batch_system_ruamel_deepcopy  # noqa: F401
    from ruamel.yaml import YAML

    doc = YAML().load("stars:\n" + "".join(f"  - {{id: s{i}}}\n" for i in range(50)))
    dup = copy.deepcopy(doc)
    assert dup == doc and dup["stars"].lc.data == doc["stars"].lc.data
    assert dup["stars"][49].lc.line == 50


def test_filejobstore_link_fix(tmp_path: Path) -> None:
    """Toil's FileJobStore.write_file still copies the job's file: the fix is needed. When the
    first assertion fails, Toil no longer copies: delete toil_batch_system_filejobstore_link."""
    code = ("from toil.jobStores.fileJobStore import FileJobStore as F; "
            "from toil_batch_system_filejobstore_link import fix; "
            "print(fix.still_copies(F.write_file), fix.apply())")
    # off: Toil left alone, and it copies
    assert printed_with_fix_off(code, "STELLARFLOW_JOBSTORE_LINK") == ["True", "False"]
    import toil_batch_system_filejobstore_link  # noqa: F401
    from toil.common import Config
    from toil.jobStores.fileJobStore import FileJobStore

    assert FileJobStore.write_file._stellarflow_fix
    store = FileJobStore(str(tmp_path / "jobstore"))
    store.initialize(Config())
    chunk = tmp_path / "chunk-0000.prepared.h5"
    chunk.write_bytes(b"chunk" * 1000)
    (tmp_path / "link.h5").symlink_to(chunk)
    for local, hints, linked in ((chunk, None, True), (chunk, ["sas", "msap1"], True),
                                 (tmp_path / "link.h5", None, False)):
        stored = Path(store._get_file_path_from_id(store.write_file(str(local), hints=hints)))
        assert stored.read_bytes() == chunk.read_bytes() and not stored.is_symlink()
        assert (stored.stat().st_ino == chunk.stat().st_ino) is linked
    other_fs = Path("/dev/shm") / f"stellarflow-{os.getpid()}.h5"  # another file system: copied
    if Path("/dev/shm").is_dir() and os.stat("/dev/shm").st_dev != tmp_path.stat().st_dev:
        other_fs.write_bytes(b"x" * 10)
        try:
            stored = Path(store._get_file_path_from_id(store.write_file(str(other_fs))))
            assert stored.read_bytes() == b"x" * 10 and stored.stat().st_nlink == 1
        finally:
            other_fs.unlink()


def test_cwltool_container_wait_fix(tmp_path: Path) -> None:
    """cwltool's container monitor still sleeps a second before it first looks: the fix is
    needed. When the first assertion fails, cwltool looks sooner: delete
    toil_batch_system_cwltool_container_wait."""
    code = ("from cwltool.job import ContainerCommandLineJob as C; "
            "from toil_batch_system_cwltool_container_wait import fix; "
            "print(fix.still_sleeps(C.docker_monitor), fix.apply())")
    # off: cwltool left alone, and it sleeps
    assert printed_with_fix_off(code, "STELLARFLOW_CONTAINER_WAIT") == ["True", "False"]
    import toil_batch_system_cwltool_container_wait  # noqa: F401
    from cwltool.job import ContainerCommandLineJob

    monitor = ContainerCommandLineJob.docker_monitor
    assert monitor._stellarflow_fix
    # It returns once the container's command has ended (not before), runs no podman, and
    # removes the id file when cwltool asks it to.
    cidfile = tmp_path / "step.cid"
    cidfile.write_text("0" * 64 + "\n")
    proc = subprocess.Popen(["sleep", "0.2"])
    monitor(object(), str(cidfile), str(tmp_path), True, "/nonexistent/podman", proc)
    assert proc.returncode == 0 and not cidfile.exists()


def test_toil_runner_is_toil_cwl_runner_with_its_exit_code(tmp_path: Path) -> None:
    """stellarflow.toil_runner runs Toil's CWL main: same output, same exit codes (0 for a run,
    non-zero for a bad job), with its log file flushed before the fast exit."""
    tool = tmp_path / "echo.cwl"
    tool.write_text(textwrap.dedent("""\
        cwlVersion: v1.2
        class: CommandLineTool
        baseCommand: echo
        inputs:
          word: {type: string, inputBinding: {position: 1}}
        stdout: said.txt
        outputs:
          said: {type: stdout}
        """))
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"word": "hello"}))
    base = [sys.executable, "-m", "stellarflow.toil_runner", "--jobStore",
            str(tmp_path / "js"), "--outdir", str(tmp_path / "out"), "--no-container",
            "--logFile", str(tmp_path / "toil.log"), "--batchSystem", "single_machine"]
    ok = subprocess.run(base + [str(tool), str(job)], capture_output=True, text=True,
                        env=runner_env(), cwd=tmp_path, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout)["said"]["basename"] == "said.txt"
    assert (tmp_path / "out" / "said.txt").read_text() == "hello\n"
    assert "CWL run complete" in (tmp_path / "toil.log").read_text()
    job.write_text(json.dumps({"word": 7}))
    bad = subprocess.run(base[:3] + ["--jobStore", str(tmp_path / "js2")] + base[5:]
                         + [str(tool), str(job)], capture_output=True, text=True,
                         env=runner_env(), cwd=tmp_path, timeout=300)
    assert bad.returncode != 0


def test_toil_runner_skips_the_js_lint_that_ci_does(tmp_path: Path) -> None:
    """Toil lints a CWL document's JavaScript at every load; stellarflow.toil_runner leaves it
    to CI (test_cwltool_validate fails on any warning) unless STELLARFLOW_JS_LINT=1. The
    expression still runs."""
    tool = tmp_path / "twice.cwl"
    tool.write_text(textwrap.dedent("""\
        cwlVersion: v1.2
        class: ExpressionTool
        requirements:
          InlineJavascriptRequirement: {}
        inputs:
          n: int
        expression: |
          ${ let twice = inputs.n * 2; return {"twice": twice}; }
        outputs:
          twice: int
        """))  # `let` is ES6: a JSHint warning (W104), which node runs
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"n": 21}))
    logs = {}
    for lint in ("", "1"):
        log = tmp_path / f"toil{lint}.log"
        out = subprocess.run(
            [sys.executable, "-m", "stellarflow.toil_runner", "--jobStore",
             str(tmp_path / f"js{lint}"), "--outdir", str(tmp_path / f"out{lint}"),
             "--no-container", "--logFile", str(log), "--batchSystem", "single_machine",
             str(tool), str(job)], capture_output=True, text=True, cwd=tmp_path, timeout=300,
            env={**runner_env(), "STELLARFLOW_JS_LINT": lint})
        assert out.returncode == 0, out.stderr[-2000:]
        assert json.loads(out.stdout)["twice"] == 42
        logs[lint] = log.read_text() + out.stderr
    assert "JSHINT" not in logs[""]
    assert "JSHINT" in logs["1"]  # Toil still lints by itself: the skip is what removes it


def test_toil_runner_reads_a_json_job_with_json(tmp_path: Path) -> None:
    """The job loader stellarflow.toil_runner gives Toil reads a JSON job into the same job
    as schema-salad's own loader (relative locations resolved, the id it injects), without
    ruamel.yaml's parser; a YAML job goes the old way. It
    applies only while schema-salad parses JSON as YAML: when this fails, retire it."""
    import argparse

    import cwltool.main
    from ruamel.yaml.main import YAML

    from stellarflow import toil_runner

    assert toil_runner.loader_parses_json_as_yaml()
    (tmp_path / "lc").mkdir()
    job = {"observation_id": "obs", "chunk_size": 2,
           "stars": [{"star_id": f"s{i}", "teff": 5800.0, "logg": None,
                      "lightcurve": {"class": "File", "location": f"lc/s{i}.h5"}}
                     for i in range(3)]}
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "job.yml").write_text(json.dumps(job))  # JSON is YAML

    def load(name: str) -> tuple[dict, str, str]:
        ns = argparse.Namespace(job_order=[str(tmp_path / name)], basedir=None)
        obj, basedir, loader = cwltool.main.load_job_order(ns, None, None, [], "file:///t.cwl")
        return json.loads(json.dumps(obj)), basedir, type(loader).__name__

    upstream = load("job.json")
    originals = cwltool.main.Loader, cwltool.main.load_job_order
    toil_runner.read_json_jobs_with_json()
    parsed = []
    parse = YAML.load_all

    def counted(self, *args, **kwargs):
        parsed.append(1)
        return parse(self, *args, **kwargs)

    YAML.load_all = counted
    try:
        assert load("job.json") == upstream[:2] + ("JsonJobLoader",)
        assert not parsed  # no YAML parser for the JSON job
        ns = argparse.Namespace(job_order=[str(tmp_path / "job.json")], basedir=None)
        stars = cwltool.main.load_job_order(ns, None, None, [], "file:///t.cwl")[0]["stars"]
        assert type(stars) is list and type(stars[0]) is dict  # cheap to deep-copy
        assert upstream[0]["stars"][2]["lightcurve"]["location"] == (tmp_path / "lc/s2.h5").as_uri()
        assert load("job.yml")[0] == {**upstream[0], "__id": (tmp_path / "job.yml").as_uri()}
        assert parsed  # a YAML job: as before
    finally:
        YAML.load_all = parse
        cwltool.main.Loader, cwltool.main.load_job_order = originals


def test_toil_runner_imports_the_kubernetes_batch_system_only_for_kubernetes() -> None:
    """Toil's option parser imports every batch system (the Kubernetes one loads the Kubernetes
    client, ~1 s before the first job); stellarflow.toil_runner leaves it out when the command
    line selects another batch system, and the options still parse into the same Config."""
    from stellarflow import toil_runner

    config = REPO / "jobstore_config"
    assert toil_runner.selected_batch_system(["--config", str(config / "local.yaml")]) \
        == "stellarflow_single_machine"
    assert toil_runner.selected_batch_system(
        ["--config", str(config / "local.yaml"), "--batchSystem", "slurm"]) == "slurm"
    assert toil_runner.selected_batch_system(["--config", str(config / "kubernetes.yaml")]) \
        == "kubernetes"
    assert toil_runner.selected_batch_system(["w.cwl"]) == "single_machine"  # Toil's default
    assert toil_runner.selected_batch_system(["--config", "/nonexistent.yaml"]) is None
    assert toil_runner.selected_batch_system(["--help"]) is None
    code = textwrap.dedent("""\
        import json, sys
        from stellarflow import toil_runner
        from toil.common import Config
        from toil.cwl.cwltoil import get_options
        argv = sys.argv[1:] + ["--jobStore", "/nonexistent/js", "w.cwl", "j.json"]
        skipped = toil_runner.skip_unselected_costly_batch_systems(argv)
        config = Config()
        config.setOptions(get_options(argv))
        print(json.dumps([skipped, config.batchSystem,
                          "toil.batchSystems.kubernetes" in sys.modules]))
        """)
    seen = {}
    for name in ("local", "kubernetes"):
        out = subprocess.run([sys.executable, "-c", code, "--config", str(config / f"{name}.yaml")],
                             capture_output=True, text=True, env=runner_env(), timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        seen[name] = json.loads(out.stdout)
    assert seen["local"] == [["kubernetes"], "stellarflow_single_machine", False]
    assert seen["kubernetes"] == [[], "kubernetes", True]


def test_forked_workers_trust_the_images_stellarflow_run_checked(tmp_path: Path) -> None:
    """cwltool skips `podman inspect` for an image in its cache (a private set that this relies
    on: when the first assertion fails, cwltool changed and the workers inspect again), and the
    fork server puts the images of STELLARFLOW_CHECKED_IMAGES there; `stellarflow run` names
    every image of the workflow it checked."""
    from cwltool import docker

    assert isinstance(docker._IMAGES, set)
    code = ("from toil_batch_system_stellarflow import fork_server as f; "
            "from cwltool import docker; "
            "print(' '.join(f.trust_checked_images()), '|', ' '.join(sorted(docker._IMAGES)))")
    env = {**os.environ, "STELLARFLOW_CHECKED_IMAGES": "localhost/a:1 localhost/b:2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.split() == ["localhost/a:1", "localhost/b:2", "|",
                                  "localhost/a:1", "localhost/b:2"]
    # A cwltool job finds a cached image without running podman at all.
    job = docker.PodmanCommandLineJob.__new__(docker.PodmanCommandLineJob)
    job.docker_exec = str(tmp_path / "no-podman-here")
    docker._IMAGES.add("localhost/cached:1")
    try:
        assert job.get_image({"dockerPull": "localhost/cached:1"}, False, False, str(tmp_path))
    finally:
        docker._IMAGES.discard("localhost/cached:1")
    from stellarflow import run

    assert run.CHECKED_IMAGES_ENV == "STELLARFLOW_CHECKED_IMAGES"


GC_WORKFLOWS = Path(__file__).parent / "data" / "cwl_intermediates"


def test_cwl_intermediates_fix(tmp_path: Path) -> None:
    """Toil's CWL runner still never deletes a file: the fix is needed. When the first assertion
    fails, Toil deletes files itself: delete toil_batch_system_cwl_intermediates. Then a real
    run: each sub-workflow's intermediate file leaves the job store once the sub-workflow has
    ended; its results and the file it handed on stay; with the fix off all three stay. Also
    with workers started the ordinary way, which do not load Toil's plugins (as on a
    scheduler): they import the fix with the workflow jobs it made."""
    code = ("import toil.cwl.cwltoil as c; "
            "from toil_batch_system_cwl_intermediates import fix; "
            "print(fix.toil_keeps_intermediates(c), fix.apply())")
    # off: Toil left alone, and it keeps them
    assert printed_with_fix_off(code, "STELLARFLOW_JOBSTORE_GC") == ["True", "False"]

    for mode, fork, kept in (("on", "1", 0), ("on", "0", 0), ("off", "1", 3 * 200_000)):
        store, outdir = tmp_path / f"js-{mode}-{fork}", tmp_path / f"out-{mode}-{fork}"
        run = subprocess.run(
            [str(VENV_BIN / "toil-cwl-runner"), "--batchSystem", "stellarflow_single_machine",
             "--maxCores", "2", "--clean", "never", "--jobStore", str(store),
             "--outdir", str(outdir), str(GC_WORKFLOWS / "outer.cwl"),
             str(GC_WORKFLOWS / "job.yml")],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env=plugin_env(STELLARFLOW_JOBSTORE_GC=mode, **{sm.FORK_ENV: fork}))
        assert run.returncode == 0, run.stderr[-3000:]
        outputs = json.loads(run.stdout)
        assert [Path(f["path"]).read_text() for f in outputs["results"]] == ["200000\n"] * 3
        assert [Path(f["path"]).read_text() for f in outputs["handed_on"]] == ["handed on\n"] * 3
        assert [Path(f["path"]).read_text() for f in outputs["notes"]] == ["made\n"] * 3
        # Toil leaves an empty tombstone where it deleted a file with a hinted name
        assert sum(p.stat().st_size for p in store.rglob("intermediate.bin")) == kept, (mode, fork)
