"""`stellarflow serve` as a process (uvicorn, responses validated), real Toil runs of sas.cwl on two
5-day stars (--no-container), and clients nobody here wrote:

- wes-client (wes-service 5.0, its own venv: scripts/tool-venv) submits sas with a job, follows
  it to COMPLETE;
- headless Chromium: screenshots of the page during and after a run (build/screens/), and a DOM
  check that the finished run shows COMPLETE with its star counts;
- cancel of a running run ends its Toil processes and leaves the rest alone;
- schemathesis against both OpenAPI documents, and the hostile corpus, on a token server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import psutil
import pytest

from stellarflow_trigger.wes import hostile

# Grouped for `--dist loadgroup`; without it (make test: it did not group under pytest-xdist
# 3.8 here) each worker that gets one of these tests starts its own server (module fixtures).
pytestmark = pytest.mark.xdist_group(name="wes-live")
REPO = Path(__file__).resolve().parents[1]
SAS = REPO / "cwl" / "workflows" / "sas.cwl"
WES = "/ga4gh/wes/v1"
SCREENS = Path(os.environ.get("STELLARFLOW_SCREENS", REPO / "build" / "screens"))


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = os.pathsep.join([str(REPO / "scripts" / "bin"), str(Path(sys.executable).parent),
                                 e["PATH"]])
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name: str) -> Path:
    out = subprocess.run([str(REPO / "scripts" / "tool-venv"), name], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.fail(f"scripts/tool-venv {name}: {out.stderr.strip()[-500:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def start_server(root: Path, data: Path, *extra: str, state: Path | None = None
                 ) -> SimpleNamespace:
    port = free_port()
    state = state or root / f"state-{port}"
    log = open(root / f"serve-{port}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "stellarflow.cli", "serve", "--state",
                             str(state), "--data-root", str(data), "--port", str(port),
                             "--validate-responses", "--no-container", "--max-wait", "0.5", "-v",
                             *extra], stdout=log, stderr=log, env=env(), cwd=root)
    url = f"http://127.0.0.1:{port}"
    t0 = time.time()
    while time.time() - t0 < 60:
        assert proc.poll() is None, (root / f"serve-{port}.log").read_text()[-2000:]
        try:
            if httpx.get(url + WES + "/service-info", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    return SimpleNamespace(url=url, port=port, state=state, proc=proc, data=data, root=root)


def stop_server(s: SimpleNamespace) -> None:
    s.proc.send_signal(signal.SIGTERM)
    try:
        s.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        s.proc.kill()
    for p in psutil.process_iter(["cmdline"]):  # runs it started (their own sessions)
        try:
            if any(str(s.state) in a for a in p.info["cmdline"] or ()):
                p.kill()
        except psutil.Error:
            continue


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("wes-live")
    data = root / "data"
    subprocess.run([sys.executable, str(REPO / "scripts" / "generate_observation.py"), str(data),
                    "--stars", "2", "--days", "5", "--seed", "1", "--observation-id", "live"],
                   check=True, capture_output=True)
    s = start_server(root, data, "--insecure-loopback")
    yield s
    stop_server(s)


def job(data: Path, obs: str) -> dict:
    return {"observation_id": obs, "stars": [
        {"star_id": f"star0000{i}", "lightcurve": {
            "class": "File", "location": (data / "lightcurves" / f"star0000{i}.h5").as_uri()}}
        for i in range(2)]}


def submit(s: SimpleNamespace, obs: str, ghost: bool = False) -> str:
    params = job(s.data, obs)
    if ghost:  # a star whose light curve is missing: a failed catalogue row, not a failed run
        params["stars"].append({"star_id": "ghost", "lightcurve": {
            "class": "File", "location": (s.data / "lightcurves" / "ghost.h5").as_uri()}})
    r = httpx.post(s.url + WES + "/runs", timeout=30, data={
        "workflow_params": json.dumps(params), "workflow_type": "CWL",
        "workflow_type_version": "v1.2", "workflow_url": "sas"})
    assert r.status_code == 200, r.text
    return r.json()["run_id"]


def page_run(s: SimpleNamespace, rid: str) -> dict:
    return httpx.get(f"{s.url}/ui/api/runs/{rid}", timeout=30).json()


def wait_for(pred, timeout: float = 300, every: float = 0.5):
    t0 = time.time()
    while time.time() - t0 < timeout:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError("timed out")


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed (scripts/install-system installs it)")
    with tempfile.TemporaryDirectory(prefix="sf-chromium-") as profile:
        return subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout)


def screenshot(url: str, name: str, height: int = 900) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    out = SCREENS / name
    out.unlink(missing_ok=True)
    chromium("--virtual-time-budget=5000", f"--window-size=1300,{height}", f"--screenshot={out}",
             url)
    assert out.exists() and out.stat().st_size > 10_000, f"no screenshot {out}"
    return out


def test_wes_client_follows_sas_to_complete(live: SimpleNamespace) -> None:
    bin_dir = tool("wes-client")
    (live.data / "job.yml").write_text(
        "observation_id: wes-client\nstars:\n"
        "  - {star_id: star00000, lightcurve: {class: File, path: lightcurves/star00000.h5}}\n"
        "  - {star_id: star00001, lightcurve: {class: File, path: lightcurves/star00001.h5}}\n")
    out = subprocess.run([str(bin_dir / "wes-client"), "--host", f"127.0.0.1:{live.port}",
                          "--proto", "http", str(SAS), "job.yml"], cwd=live.data,
                         capture_output=True, text=True, timeout=600)
    (live.root / "wes-client.out").write_text(out.stdout + "\n--- stderr ---\n" + out.stderr)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "State is COMPLETE" in out.stderr
    outputs = json.loads(out.stdout)
    assert outputs["stars_ok"] == 2 and outputs["stars_failed"] == 0
    assert Path(outputs["catalogue"]["location"].removeprefix("file://")).is_file()


def test_page_during_and_after_a_run(live: SimpleNamespace) -> None:
    rid = submit(live, "page", ghost=True)
    during = wait_for(lambda: (lambda r: r if r["state"] == "RUNNING" and r["progress"]
                               and r["progress"]["done"] >= 4 else None)(page_run(live, rid)))
    assert during["progress"]["total"] >= during["progress"]["done"]
    screenshot(f"{live.url}/#/runs/{rid}", "page-run-during.png")
    screenshot(f"{live.url}/", "page-grid-during.png")
    wait_for(lambda: page_run(live, rid)["state"] == "COMPLETE")
    screenshot(f"{live.url}/#/runs/{rid}", "page-run-after.png", height=1800)
    screenshot(f"{live.url}/", "page-grid-after.png")
    dom = chromium("--virtual-time-budget=5000", "--window-size=1300,900", "--dump-dom",
                   f"{live.url}/").stdout
    row = re.search(rf'<tr data-run-id="{rid}" data-state="([A-Z_]+)">(.*?)</tr>', dom, re.S)
    assert row, dom[-2000:]
    assert row.group(1) == "COMPLETE"
    assert re.search(r'<td class="stars">2 / 1</td>', row.group(2)), row.group(2)
    assert '<span class="state s-COMPLETE">COMPLETE</span>' in row.group(2)
    detail = page_run(live, rid)
    names = {t["name"] for t in detail["tasks"]}
    assert {"msap1_preparation", "transit_search", "catalogue"} <= names
    assert {"catalogue.ecsv", "report.html", "runner.log"} <= {f["name"] for f in detail["files"]}
    assert [f["star_id"] for f in detail["failed_stars"]] == ["ghost"]
    assert "not found" in detail["failed_stars"][0]["error"]
    run_dom = chromium("--virtual-time-budget=5000", "--window-size=1300,900", "--dump-dom",
                       f"{live.url}/#/runs/{rid}").stdout
    assert re.search(r'<table id="failed-stars">.*ghost', run_dom, re.S), run_dom[-2000:]
    assert httpx.get(f"{live.url}/ui/files/{rid}/catalogue.ecsv", timeout=30).status_code == 200


def run_procs(run_dir: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(run_dir in a for a in p.info["cmdline"] or ()):
                out.append(p)
        except psutil.Error:
            continue
    return out


def test_cancel_ends_toil_and_nothing_else(live: SimpleNamespace) -> None:
    done_before = {r["run_id"]: r["state"] for r in httpx.get(
        live.url + "/ui/api/runs", timeout=30).json()["runs"]}
    rid = submit(live, "to-cancel")
    run = wait_for(lambda: (lambda r: r if r["state"] == "RUNNING" and r["progress"]
                            and r["progress"]["done"] >= 2 else None)(page_run(live, rid)))
    run_dir = str(live.state / "runs" / f"{run['toil_run']:06d}")
    assert wait_for(lambda: any("toil" in " ".join(p.cmdline()) for p in run_procs(run_dir)))
    r = httpx.post(f"{live.url}{WES}/runs/{rid}/cancel", timeout=60)
    assert r.status_code == 200, r.text
    assert httpx.get(f"{live.url}{WES}/runs/{rid}/status").json()["state"] == "CANCELED"
    wait_for(lambda: not [p for p in run_procs(run_dir) if p.status() != "zombie"], timeout=30)
    time.sleep(4)  # the service must not take the killed attempt for a crash to retry
    after = page_run(live, rid)
    assert after["state"] == "CANCELED" and after["attempts"] == 0
    assert not [p for p in run_procs(run_dir) if p.status() != "zombie"]
    now = {r["run_id"]: r["state"] for r in httpx.get(live.url + "/ui/api/runs").json()["runs"]}
    assert all(now[k] == v for k, v in done_before.items()), (done_before, now)


@pytest.fixture(scope="module")
def guarded(live: SimpleNamespace):
    """A second server on the same ledger, with a token (no --insecure-loopback), that runs
    nothing (--no-runs): finished runs give schemathesis real runs and tasks. (pytest-xdist may
    give these tests another worker than the ones above, with a live server of its own: then one
    run is made here.)"""
    if httpx.get(live.url + WES + "/runs", timeout=30).json()["total_runs"] == 0:
        rid = submit(live, "seed")
        wait_for(lambda: httpx.get(f"{live.url}{WES}/runs/{rid}/status", timeout=30).json()[
            "state"] in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"))
    hostile.prepare(live.data, live.root / "outside")
    tok_dir = live.root / "tok"
    subprocess.run([sys.executable, "-m", "stellarflow.cli", "serve", "--init-token",
                    "--state", str(tok_dir)], check=True, env=env(), capture_output=True)
    s = start_server(live.root, live.data, "--no-runs", "--token-file",
                     str(tok_dir / "wes.token"), state=live.state)
    s.token = (tok_dir / "wes.token").read_text().strip()
    yield s
    s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(timeout=30)


def test_hostile_corpus_live(guarded: SimpleNamespace) -> None:
    with httpx.Client(base_url=guarded.url, timeout=60) as c:
        before = c.get(WES + "/runs").json()["total_runs"]
        rows = hostile.run_all(c, guarded.data, guarded.root / "outside", guarded.token, SAS)
        assert c.get(WES + "/service-info").status_code == 200  # still up
        listed = c.get(WES + "/runs").json()
    (guarded.root / "hostile.md").write_text(hostile.table(rows))
    bad = [(k, s, m) for k, _, s, m in rows if not (400 <= s < 500) or not m or "\n" in m]
    assert not bad, bad
    assert listed["total_runs"] == before, "nothing recorded, nothing runs"
    assert dict((k, s) for k, _, s, _ in rows)["huge-chunked"] == 413


@pytest.mark.parametrize("spec,base", [("wes", WES), ("page", "")])
def test_schemathesis(guarded: SimpleNamespace, spec: str, base: str) -> None:
    st = tool("schemathesis") / "schemathesis"
    doc = REPO / "triggers" / "stellarflow_trigger" / "wes" / f"{spec}.openapi.yaml"
    # positive_data_acceptance is left out: a schema cannot say which File locations exist
    # under the data root, so schema-valid submissions are rightly refused with 400.
    out = subprocess.run([str(st), "run", str(doc), "--url", guarded.url + base, "-H",
                          f"Authorization: Bearer {guarded.token}", "--checks", "all",
                          "--exclude-checks", "positive_data_acceptance", "--max-examples", "25",
                          "--seed", "1", "--no-color"],
                         capture_output=True, text=True, timeout=600, cwd=guarded.root)
    summary = out.stdout[out.stdout.rfind("SUMMARY"):]
    (guarded.root / f"schemathesis-{spec}.txt").write_text(out.stdout)
    assert httpx.get(guarded.url + WES + "/runs").json()["total_runs"] >= 1  # real runs seen
    assert out.returncode == 0, summary or out.stderr[-2000:]
    assert guarded.proc.poll() is None
