"""Integration tests of the trigger service: a real `stellarflow trigger watch` daemon process,
real toil-cwl-runner runs of cwl/workflows/sas.cwl on small generated stars (--no-container).

- a burst of manifests + a duplicate + a dataset line + >= 15 hostile manifests, one daemon;
- kill -9 at random points (the daemon alone, or the daemon with its whole process tree),
  3 times in the default run and 20 times in the slow one: nothing lost, nothing run twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from stellarflow import lineage, verify
from stellarflow_contracts.catalogue import read_catalogue
from stellarflow_trigger import hostile

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = os.pathsep.join([str(REPO / "scripts" / "bin"), str(VENV_BIN), e["PATH"]])
    return e


@pytest.fixture(scope="module")
def stars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two generated stars, 5 days at 25 s: lightcurves/star00000.h5, star00001.h5."""
    out = tmp_path_factory.mktemp("trigger-stars")
    subprocess.run([sys.executable, str(REPO / "scripts" / "generate_observation.py"),
                    str(out), "--stars", "2", "--days", "5", "--seed", "7",
                    "--observation-id", "trig"], check=True, capture_output=True)
    return out / "lightcurves"


def setup_inbox(tmp_path: Path, stars: Path) -> Path:
    inbox = tmp_path / "inbox"
    (inbox / "lc").mkdir(parents=True)
    for lc in stars.iterdir():
        (inbox / "lc" / lc.name).write_bytes(lc.read_bytes())
    return inbox


def drop(inbox: Path, name: str, obs: str, lcs: list[str]) -> None:
    doc = {"manifest_version": 1, "observation_id": obs, "workflow": "sas",
           "stars": [{"star_id": Path(lc).stem, "lightcurve": f"lc/{lc}", "teff": 5800.0}
                     for lc in lcs]}
    tmp = inbox / f".{name}.tmp"
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, inbox / name)  # written, then renamed in: complete


def sample_run_nice(state: Path):
    """A thread that records the niceness of every Toil leader working in STATE until stopped."""
    import threading

    t = threading.Thread(daemon=True)
    t.seen, t.stop = [], threading.Event()  # type: ignore[attr-defined]

    def loop() -> None:
        while not t.stop.wait(0.2):  # type: ignore[attr-defined]
            for proc in psutil.process_iter(["cmdline", "nice"]):
                cmd = " ".join(proc.info["cmdline"] or ())
                leader = "toil-cwl-runner" in cmd or "stellarflow.toil_runner" in cmd
                if leader and str(state) in cmd:
                    t.seen.append(proc.info["nice"])  # type: ignore[attr-defined]

    t.run = loop  # type: ignore[method-assign]
    t.start()
    return t


class Daemon:
    def __init__(self, inbox: Path, state: Path, *extra: str) -> None:
        self.log_path = state.parent / "daemon.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.log_start = self.log.tell()  # this daemon's lines come after
        state.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stellarflow.cli", "trigger", "watch", str(inbox),
             "--state", str(state), "--no-container", "--backoff", "2", "-v", *extra],
            stdout=self.log, stderr=self.log, env=env(), cwd=state.parent)

    def tree(self) -> list[psutil.Process]:
        try:
            return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(
                recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill9(self, whole_tree: bool, state: Path) -> int:
        """kill -9 the daemon; ``whole_tree``: also every process working in STATE (runners
        adopted from an earlier daemon, Toil leaders and workers) - a machine crash."""
        victims = self.tree() if whole_tree else self.tree()[:1]
        if whole_tree:
            for p in psutil.process_iter(["cmdline"]):
                try:
                    if any(str(state) in a for a in p.info["cmdline"] or ()):
                        victims.append(p)
                except psutil.Error:
                    continue
        for p in victims:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()
        self.log.close()
        return len(victims)

    def wait_watching(self, timeout: float = 120) -> None:
        """Until this daemon logged 'watching' (its SIGTERM handler is set from then on: a
        SIGTERM during interpreter start-up would kill it with -15)."""
        t0 = time.time()
        while time.time() - t0 < timeout and self.proc.poll() is None:
            with open(self.log_path, "rb") as fh:
                fh.seek(self.log_start)
                if b" INFO watching " in fh.read():
                    return
            time.sleep(0.2)

    def stop(self) -> int:
        self.wait_watching()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code


def status(state: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "stellarflow.cli", "status", "--state",
                          str(state), "--json", "--limit", "1000"], capture_output=True,
                         text=True, env=env(), check=True)
    return json.loads(out.stdout)


def wait_settled(state: Path, expected: int, daemon: Daemon, timeout: float = 900) -> dict:
    """Until `expected` manifests are done/failed and no run is pending or running."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert daemon.proc.poll() is None, "the daemon died"
        if (state / "ledger.sqlite").exists():
            s = status(state)
            final = sum(v for k, v in s["counts"].items() if k in ("done", "failed"))
            busy = [r for r in s["runs"] if r["state"] in ("pending", "running")]
            if final >= expected and not busy:
                return s
        time.sleep(2)
    raise AssertionError(f"not settled after {timeout} s: {status(state)['counts']}")


@pytest.fixture
def reap(tmp_path: Path):
    """Whatever fails, leave no process of ours running (found by our tmp path)."""
    yield
    mine = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(tmp_path) in a for a in p.info["cmdline"] or ()):
                mine.append(p)
        except psutil.Error:
            continue
    for p in mine:
        try:
            p.kill()
        except psutil.Error:
            pass


def test_burst_duplicate_dataset_and_hostile(tmp_path: Path, stars: Path, reap) -> None:
    inbox = setup_inbox(tmp_path, stars)
    state = tmp_path / "state"
    feed = inbox / "lc" / "feed.csv"
    feed.write_text("")
    daemon = Daemon(inbox, state, "--max-wait", "5", "--max-runs", "1", "--dataset", str(feed))
    time.sleep(3)
    names = hostile.write_all(inbox, tmp_path / "outside")
    # a burst arriving after the hostile ones: merged into one Toil run
    drop(inbox, "b0.json", "b0", ["star00000.h5"])
    drop(inbox, "b1.json", "b1", ["star00001.h5"])
    drop(inbox, "b2.json", "b2", ["star00000.h5", "star00001.h5"])
    drop(inbox, "b0-again.json", "b0", ["star00000.h5"])  # same bytes as b0.json
    with open(feed, "a") as fh:  # dataset lines, relative to the dataset's folder
        fh.write("ds1,star00001.h5,5700\nds2,../../etc/passwd\n")
    nices = sample_run_nice(state)
    s = wait_settled(state, len(names) + 6, daemon)
    nices.stop.set()
    nices.join()
    assert daemon.proc.poll() is None  # kept serving through all of it
    # runs are batch work, niced below the service (--run-nice, default 10)
    assert nices.seen and set(nices.seen) == {10}, nices.seen

    failed = {p.name for p in (inbox / "failed").iterdir()}
    for key, name in names.items():
        reason = (inbox / "failed" / f"{name}.reason").read_text()
        assert reason.count("\n") == 1 and name in reason, (key, reason)
    assert "feed.csv.line2.txt" in failed
    done = sorted(p.name for p in (inbox / "done").iterdir() if not p.name.endswith(".reason"))
    assert done == ["b0-again.json", "b0.json", "b1.json", "b2.json", "feed-L1-1.json"]
    assert "duplicate of b0.json" in (inbox / "done" / "b0-again.json.reason").read_text()

    by_obs = {m["observation_id"]: m for m in s["manifests"] if m["state"] == "done"
              and m["duplicate_of"] is None}
    assert set(by_obs) == {"b0", "b1", "b2", "feed-L1-1"}
    # one observation per manifest, original star ids, from merged runs
    for obs, ids in (("b0", ["star00000"]), ("b1", ["star00001"]),
                     ("b2", ["star00000", "star00001"]), ("feed-L1-1", ["ds1"])):
        t = read_catalogue(state / "out" / obs / "catalogue.ecsv")
        assert sorted(t["star_id"]) == ids and all(st == "ok" for st in t["status"]), obs
        assert by_obs[obs]["stars_ok"] == len(ids)
    burst_runs = {by_obs[o]["run_id"] for o in ("b0", "b1", "b2")}
    assert len(burst_runs) == 1, "a burst must share one Toil run"
    # provenance: each observation of the merged run has its own crate, every checksum holds,
    # its lineage reaches its own light curves; the run's step profiles are in the ledger
    for obs, ids in (("b0", ["star00000"]), ("b2", ["star00000", "star00001"])):
        assert verify.verify(state / "out" / obs)[1] is None, obs
        tree = lineage.lineage(state / "out" / obs / f"{ids[-1]}.product.h5")
        assert ids[-1] in json.dumps(tree) and "m0-" not in tree["file"]
    ok = subprocess.run([str(REPO / "scripts" / "rocrate-validate"), str(state / "out" / "b2")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout[-3000:]
    led = sqlite3.connect(state / "ledger.sqlite")
    rows = led.execute("SELECT tool, source, cpu_s FROM step_profiles WHERE run_id=?",
                       (burst_runs.pop(),)).fetchall()
    assert {r[0] for r in rows} >= {"ingest", "msap4_rotation", "catalogue"}
    assert all(r[1] == "container" and r[2] is not None for r in rows)
    assert len(s["runs"]) <= 2 and all(r["state"] == "done" for r in s["runs"])
    assert daemon.stop() == 0


def kill_loop(tmp_path: Path, stars: Path, kills: int, seed: int, waves: int) -> dict:
    rng = random.Random(seed)
    inbox = setup_inbox(tmp_path, stars)
    state = tmp_path / "state"
    expected = []

    def wave(k: int) -> None:
        for j in range(2):
            name = f"w{k}-{j}"
            drop(inbox, f"{name}.json", name, [f"star0000{j}.h5"])
            expected.append(name)

    wave(0)
    wave_at = {round(kills * w / waves) for w in range(1, waves)}
    counts = {"kills": 0, "daemon_only": 0, "whole_tree": 0, "processes_killed": 0}
    for i in range(kills):
        daemon = Daemon(inbox, state, "--max-wait", "1", "--max-runs", "2")
        if i in wave_at:
            wave(len(expected) // 2)
        time.sleep(rng.uniform(0.3, 25.0))
        whole = rng.random() < 0.5
        counts["processes_killed"] += daemon.kill9(whole, state)
        counts["kills"] += 1
        counts["whole_tree" if whole else "daemon_only"] += 1
    daemon = Daemon(inbox, state, "--max-wait", "1", "--max-runs", "2")
    s = wait_settled(state, len(expected), daemon, timeout=1800)
    assert daemon.stop() == 0

    # nothing lost, nothing twice: every manifest once in done/ (or failed/), by name
    finals = [p.name for d in ("done", "failed") for p in (inbox / d).iterdir()
              if p.suffix == ".json"]
    assert sorted(finals) == sorted(f"{n}.json" for n in expected)
    assert not list(inbox.glob(".sfclaim.*"))
    rows = [m for m in s["manifests"]]
    assert len(rows) == len(expected) and all(m["state"] == "done" for m in rows), \
        [(m["name"], m["state"], m["reason"]) for m in rows if m["state"] != "done"]
    done_runs = [r for r in s["runs"] if r["state"] == "done"]
    members = [m["run_id"] for m in rows]
    assert all(r in {d["id"] for d in done_runs} for r in members)
    # each manifest belongs to exactly one run; every run's outputs exist
    assert sum(r["n_manifests"] for r in s["runs"]) == len(expected)
    for n in expected:
        t = read_catalogue(state / "out" / n / "catalogue.ecsv")
        assert len(t) == 1 and t["status"][0] == "ok"
    counts["runs"] = len(s["runs"])
    counts["interrupted_attempts"] = sum(r["interrupts"] for r in s["runs"])
    counts["failed_attempts"] = sum(r["attempts"] for r in s["runs"])
    counts["manifests"] = len(expected)
    print(f"kill -9 loop (seed {seed}): {json.dumps(counts)}")
    return counts


def test_kill9_loop_3(tmp_path: Path, stars: Path, reap) -> None:
    counts = kill_loop(tmp_path, stars, kills=3, seed=int(time.time()) % 10000, waves=1)
    assert counts["kills"] == 3


@pytest.mark.slow
def test_kill9_loop_20(tmp_path: Path, stars: Path, reap) -> None:
    counts = kill_loop(tmp_path, stars, kills=20, seed=int(time.time()) % 10000, waves=3)
    assert counts["kills"] == 20
