"""The WES API in-process (connexion app under starlette's test client, responses validated against
the OpenAPI documents): submit forms, exactly-once, paging, states from the ledger, cancel of a
queued run, access control and the hostile corpus. No Toil run here (tests/test_wes_live.py)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from stellarflow_trigger.ledger import Ledger
from stellarflow_trigger.wes import app as app_mod
from stellarflow_trigger.wes import handlers, hostile

warnings.filterwarnings("ignore", message=".*httpx.*")
from starlette.testclient import TestClient  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAS = REPO / "cwl" / "workflows" / "sas.cwl"
WES = "/ga4gh/wes/v1"
TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def env(tmp_path: Path):
    data = tmp_path / "data"
    hostile.prepare(data, tmp_path / "outside")
    (data / "lc" / "b.h5").write_bytes(b"x")
    ctx = handlers.Context(state=tmp_path / "state", data_root=data)
    app = app_mod.create_app(ctx, token=TOKEN, validate_responses=True)
    with TestClient(app, base_url="http://127.0.0.1:8080", raise_server_exceptions=True) as c:
        yield c, data, tmp_path


def job(data: Path, obs: str = "obs1", names: tuple[str, ...] = ("ok.h5",)) -> dict:
    return {"observation_id": obs, "stars": [
        {"star_id": f"s{i}", "teff": 5800.0,
         "lightcurve": {"class": "File", "location": (data / "lc" / n).as_uri()}}
        for i, n in enumerate(names)]}


def form(params: dict, url: str = "sas") -> dict:
    return {"workflow_params": json.dumps(params), "workflow_type": "CWL",
            "workflow_type_version": "v1.2", "workflow_url": url}


def count(tmp: Path) -> int:
    led = Ledger(tmp / "state")
    try:
        return led.one("SELECT COUNT(*) FROM manifests")[0]
    finally:
        led.close()


def test_service_info(env) -> None:
    c, _, _ = env
    r = c.get(f"{WES}/service-info")
    assert r.status_code == 200
    info = r.json()
    assert info["supported_wes_versions"] == ["1.1.0"]
    assert info["workflow_type_versions"]["CWL"]["workflow_type_version"]
    assert "sas" in info["tags"]["allowed_workflows"]
    doc = c.get("/openapi/wes.openapi.yaml")  # the document as written, security included
    assert doc.status_code == 200 and "bearerAuth: []" in doc.text


def test_submit_forms_exactly_once_and_paging(env) -> None:
    c, data, tmp = env
    # what wes-client sends: the workflow attached under its base name
    r = c.post(f"{WES}/runs", data=form(job(data), "sas.cwl"), headers=AUTH,
               files=[("workflow_attachment", ("sas.cwl", SAS.read_bytes()))])
    assert r.status_code == 200, r.text
    first = r.json()["run_id"]
    # the same job again, and the same content as a manifest: the same run
    assert c.post(f"{WES}/runs", data=form(job(data)), headers=AUTH).json()["run_id"] == first
    manifest = {"manifest_version": 1, "observation_id": "obs1", "workflow": "sas",
                "stars": [{"star_id": "s0", "lightcurve": "lc/ok.h5", "teff": 5800.0}]}
    assert c.post(f"{WES}/runs", data=form(manifest), headers=AUTH).json()["run_id"] == first
    ids = [c.post(f"{WES}/runs", data=form(job(data, f"obs{i}")), headers=AUTH).json()["run_id"]
           for i in range(2, 6)]
    assert len(set(ids)) == 4 and first not in ids and count(tmp) == 5
    assert c.get(f"{WES}/runs/{first}/status").json() == {"run_id": first, "state": "QUEUED"}
    log = c.get(f"{WES}/runs/{first}").json()
    assert log["state"] == "QUEUED" and log["task_logs_url"].endswith(f"/runs/{first}/tasks")
    assert log["request"]["workflow_params"]["stars"][0]["lightcurve"] == "lc/ok.h5"
    # paging: newest first, tokens until an empty one
    seen, token = [], None
    while True:
        q = "?page_size=2" + (f"&page_token={token}" if token else "")
        page = c.get(f"{WES}/runs{q}").json()
        assert page["total_runs"] == 5 and len(page["runs"]) <= 2
        seen += [x["run_id"] for x in page["runs"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == sorted(seen, key=int, reverse=True) and len(seen) == 5
    assert c.get(f"{WES}/runs/{first}/tasks").json() == {"task_logs": [], "next_page_token": ""}


def test_cancel_queued_and_finished(env) -> None:
    c, data, tmp = env
    rid = c.post(f"{WES}/runs", data=form(job(data)), headers=AUTH).json()["run_id"]
    other = c.post(f"{WES}/runs", data=form(job(data, "other")), headers=AUTH).json()["run_id"]
    assert c.post(f"{WES}/runs/{rid}/cancel", headers=AUTH).json() == {"run_id": rid}
    assert c.get(f"{WES}/runs/{rid}/status").json()["state"] == "CANCELED"
    assert c.get(f"{WES}/runs/{other}/status").json()["state"] == "QUEUED"  # untouched
    assert c.post(f"{WES}/runs/{rid}/cancel", headers=AUTH).status_code == 200  # idempotent
    led = Ledger(tmp / "state")
    with led.tx() as db:
        db.execute("UPDATE manifests SET state='done', outcome='done' WHERE id=?", (int(other),))
    led.close()
    r = c.post(f"{WES}/runs/{other}/cancel", headers=AUTH)
    assert r.status_code == 400 and "already ended" in r.json()["msg"]


def test_states_from_the_ledger(env) -> None:
    c, data, tmp = env
    led = Ledger(tmp / "state")
    with led.tx() as db:
        for i, (state, outcome, run) in enumerate([("done", "done", 1), ("failed", "failed", 1),
                                                   ("failed", "failed", None),
                                                   ("duplicate", None, None)]):
            led.insert_manifest(db, sha256=f"h{i}", name=f"m{i}.yaml", source="inbox", home="/",
                                state=state, outcome=outcome, run_id=run,
                                duplicate_of=1 if state == "duplicate" else None)
        db.execute("INSERT INTO runs (id, run_dir, jobstore, log_path, state, n_stars, "
                   "n_manifests, created_at) VALUES (1, '', '', '', 'done', 1, 1, 0)")
    led.close()
    states = [c.get(f"{WES}/runs/{i}/status").json()["state"] for i in range(1, 5)]
    assert states == ["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "COMPLETE"]
    page = c.get("/ui/api/runs").json()
    assert [r["state"] for r in page["runs"]] == ["COMPLETE", "SYSTEM_ERROR", "EXECUTOR_ERROR",
                                                  "COMPLETE"]


def test_reads_need_a_token_off_loopback(tmp_path: Path) -> None:
    ctx = handlers.Context(state=tmp_path / "s", data_root=tmp_path)
    app = app_mod.create_app(ctx, token=TOKEN, loopback=False, validate_responses=True)
    with TestClient(app, base_url="http://10.0.0.5:8080") as c:
        r = c.get(f"{WES}/runs")
        assert r.status_code == 401 and r.json()["status_code"] == 401
        assert c.get(f"{WES}/runs", headers=AUTH).status_code == 200


def test_insecure_loopback_accepts_untokened_writes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    hostile.prepare(data, tmp_path / "outside")
    ctx = handlers.Context(state=tmp_path / "s", data_root=data)
    app = app_mod.create_app(ctx, token=None, insecure_loopback=True, validate_responses=True)
    with TestClient(app, base_url="http://127.0.0.1:8080") as c:
        assert c.post(f"{WES}/runs", data=form(job(data))).status_code == 200


def test_hostile_corpus(env) -> None:
    c, data, tmp = env
    rows = hostile.run_all(c, data, tmp / "outside", TOKEN, SAS)
    bad = [(k, s, m) for k, _, s, m in rows if not (400 <= s < 500) or not m or "\n" in m]
    assert not bad, bad
    assert len(rows) >= 30
    assert count(tmp) == 0  # nothing recorded, so nothing runs
    assert c.get(f"{WES}/service-info").status_code == 200
    by = {k: (s, m) for k, _, s, m in rows}
    assert by["huge-body"][0] == 413 and by["huge-chunked"][0] in (400, 413)
    assert by["no-token"][0] == 401 and by["wrong-token"][0] == 401
    assert "outside the data root" in by["param-traversal"][1]
    assert "differs from the allow-listed" in by["attach-differs"][1]


def test_ledger_gains_the_workflow_column(tmp_path: Path) -> None:
    """A ledger made before manifests had a workflow column is migrated when opened."""
    import sqlite3

    from stellarflow_trigger.batch import build

    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    db.execute("CREATE TABLE manifests (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, name TEXT "
               "NOT NULL, source TEXT NOT NULL, home TEXT NOT NULL, state TEXT NOT NULL, "
               "received_at REAL NOT NULL)")
    db.commit()
    db.close()
    led = Ledger(tmp_path)
    cols = {r[1] for r in led.all("PRAGMA table_info(manifests)")}
    led.close()
    assert "workflow" in cols
    members = [{"id": 1, "observation_id": "o", "stars_json": "[]", "workflow": "sas"}]
    assert build(7, members, 12)["workflow"] == "sas"


def test_page_assets_are_public_off_loopback(tmp_path: Path) -> None:
    """The page and its script load without a token (it then asks for one); its data does not."""
    ctx = handlers.Context(state=tmp_path / "s", data_root=tmp_path)
    app = app_mod.create_app(ctx, token=TOKEN, loopback=False, validate_responses=True)
    with TestClient(app, base_url="http://10.0.0.5:8080") as c:
        assert c.get("/").status_code == 200
        assert c.get("/static/app.js").status_code == 200
        assert c.get("/ui/api/runs").status_code == 401
        assert c.get("/ui/api/runs", headers=AUTH).status_code == 200


def test_task_usage_from_step_profiles() -> None:
    """Tasks get CPU and RSS from the run's step profiles: same tool, inside the task's span,
    each line used once (two chunks that start in the same second both get one)."""
    from stellarflow.progress import Task
    from stellarflow_trigger.wes import views

    t0 = 1_796_167_034.0  # 2026-12-01T23:17:14Z
    tasks = [Task(id="1", name="ingest", step="sas_chunk.ingest", chunk=1, start=t0, end=t0 + 2),
             Task(id="2", name="ingest", step="sas_chunk.ingest", chunk=2, start=t0, end=t0 + 2),
             Task(id="3", name="catalogue", step="assemble", chunk=1, start=t0 + 3, end=t0 + 4)]
    lines = [{"tool": "ingest", "chunk": f"chunk-000{k}", "source": "container",
              "start_utc": f"2026-12-01T23:17:14.{k + 4}Z", "end_utc": "2026-12-01T23:17:15.9Z",
              "used": {"cpu_s": 0.2 + k, "max_rss_bytes": 76 * 2**20,
                       "cpu_percent_of_request": 30.0}} for k in (0, 1)]
    usage = views.usage_by_task(tasks, lines)
    assert {usage["1"]["chunk"], usage["2"]["chunk"]} == {"chunk-0000", "chunk-0001"}
    assert views.usage_text(usage["1"]) == ("cpu/rss: 0.20 s CPU (30 % of the cores requested), "
                                            "max RSS 76 MiB (container, chunk-0000)")
    assert "not known" in views.usage_text(usage.get("3"))
