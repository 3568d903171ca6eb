"""Unit tests of the trigger service (issue 4). Toil is not started here: where a run is needed,
Service.launch or stellarflow.run.run_job is replaced - only in these unit tests. The real daemon
with real Toil runs is tested in test_trigger_integration.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from stellarflow.errors import RunError
from stellarflow_contracts.catalogue import make_table, read_catalogue
from stellarflow_trigger import batch, hostile, runner
from stellarflow_trigger.cli import status_main, trigger_main
from stellarflow_trigger.intake import claim, register
from stellarflow_trigger.ledger import Ledger, now
from stellarflow_trigger.service import Busy, Config, Service


def manifest(obs: str, stars: list[tuple[str, str]], **extra: object) -> dict:
    return {"manifest_version": 1, "observation_id": obs, "workflow": "sas",
            "stars": [{"star_id": s, "lightcurve": lc, **extra} for s, lc in stars]}


def drop(inbox: Path, name: str, doc: dict | str) -> Path:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    tmp = inbox / f".{name}.tmp"
    tmp.write_text(text)
    os.replace(tmp, inbox / name)
    return inbox / name


@pytest.fixture
def env(tmp_path: Path):
    inbox = tmp_path / "inbox"
    (inbox / "lc").mkdir(parents=True)
    for s in ("a", "b", "c"):
        (inbox / "lc" / f"{s}.h5").write_bytes(b"x")
    cfg = Config(inbox=inbox, state=tmp_path / "state", container=False, max_wait=0,
                 backoff=0, min_age=0)
    return cfg


def fake_launcher(monkeypatch: pytest.MonkeyPatch, outcomes: list[str], calls: list) -> None:
    """Service.launch that records an attempt and writes its result at once (no process)."""

    def launch(self: Service, run) -> None:
        run_dir = Path(run["run_dir"])
        self.write_batch(run)
        n = (self.ledger.one("SELECT MAX(n) FROM attempts WHERE run_id=?", run["id"])[0] or 0) + 1
        with self.ledger.tx() as db:
            self.ledger.update(db, "runs", run["id"], state="running")
            db.execute("INSERT INTO attempts (run_id, n, mode, started_at) VALUES (?,?,?,?)",
                       (run["id"], n, run["next_mode"], now()))
        calls.append((run["id"], n, run["next_mode"]))
        what = outcomes.pop(0) if outcomes else "ok"
        (run_dir / "jobstore").mkdir(exist_ok=True)
        if what == "interrupted":
            return
        if what == "ok":
            b = json.loads((run_dir / "batch.json").read_text())
            out = {m["observation_id"]: str(self.cfg.outdir / m["observation_id"])
                   for m in b["members"]}
            res = {"ok": True, "outputs": out,
                   "stars": {o: [len(m["star_ids"]), 0] for o, m in
                             zip(out, b["members"], strict=True)}}
        else:
            res = {"ok": False, "transient": what == "transient", "exit_code": 1,
                   "error": "toil run of x failed (exit 1): ValueError: boom",
                   "failing_step": "transit_search", "stderr_tail": "Traceback\nValueError: boom"}
        batch.write_json_atomic(run_dir / f"attempt-{n}.json", res)

    monkeypatch.setattr(Service, "launch", launch)


def drive(svc: Service, limit: int = 50) -> None:
    for _ in range(limit):
        svc.step(flush=True)
        if not svc.pending_work():
            return
    raise AssertionError("service did not settle")


# -- batching -----------------------------------------------------------------------------
def test_batch_star_ids_injective_and_valid() -> None:
    ids = {batch.batch_star_id(k, s) for k in (1, 12) for s in ("2-x", "x", "a" * 64)}
    assert len(ids) == 6 and all(len(i) <= 64 for i in ids)
    assert batch.batch_star_id(1, "2-x") != batch.batch_star_id(12, "x")


def test_build_single_keeps_ids_merged_prefixes() -> None:
    m1 = {"id": 1, "observation_id": "o1", "stars_json": json.dumps([{"star_id": "a"}])}
    m2 = {"id": 2, "observation_id": "o2", "stars_json": json.dumps([{"star_id": "a"}])}
    single = batch.build(7, [m1], 12)
    assert single["observation_id"] == "o1" and single["job"]["stars"][0]["star_id"] == "a"
    merged = batch.build(7, [m1, m2], 12)
    assert merged["observation_id"] == "batch-000007"
    assert [s["star_id"] for s in merged["job"]["stars"]] == ["m0-a", "m1-a"]
    assert merged["members"][1]["star_ids"] == {"m1-a": "a"}


def test_split_restores_ids_and_products(tmp_path: Path) -> None:
    m1 = {"id": 1, "observation_id": "o1", "stars_json": json.dumps([{"star_id": "a"}])}
    m2 = {"id": 2, "observation_id": "o2",
          "stars_json": json.dumps([{"star_id": "a"}, {"star_id": "b"}])}
    b = batch.build(3, [m1, m2], 12)
    run_dir = tmp_path / "run"
    final = run_dir / "final" / b["observation_id"]
    final.mkdir(parents=True)
    (run_dir / "batch.json").write_text(json.dumps(b))
    nan = float("nan")
    rows = [{"star_id": sid, "status": st, "error": f"{sid}: bad" if st == "failed" else "",
             "cpu_s": 1.0, **{c: nan for c in ("prot_d", "numax_uhz", "dnu_uhz", "radius_rsun",
                                               "mass_msun", "transit_period_d", "transit_t0_d",
                                               "transit_depth_ppm", "transit_duration_h",
                                               "transit_snr", "planet_radius_rearth")}}
            for sid, st in (("m0-a", "ok"), ("m1-a", "ok"), ("m1-b", "failed"))]
    make_table(rows).write(final / "catalogue.ecsv", format="ascii.ecsv")
    for sid in ("m0-a", "m1-a", "m1-b"):
        (final / f"{sid}.png").write_text(sid)
        (final / f"{sid}.product.h5").write_text(sid)
    (final / "report.html").write_text("merged")
    # Chunk files the products link into: chunk-0000 holds both members' stars, chunk-0001 o2's.
    for chunk, sids in (("chunk-0000", ["m0-a", "m1-a"]), ("chunk-0001", ["m1-b"])):
        with h5py.File(final / f"{chunk}.prepared.h5", "w") as f:
            f.attrs["chunk_id"] = chunk
            f.attrs["star_ids"] = np.array(sids, dtype=h5py.string_dtype())
            f.attrs["n_seismic_candidates"] = len(sids)
            for sid in sids:
                f.create_dataset(f"stars/{sid}/prepared/time", data=np.arange(3.0))
                f[f"stars/{sid}"].attrs.update({"status": "ok", "seismic_candidate": 1})
    out = runner.split_and_publish(run_dir, b, tmp_path / "out", tmp_path / "replaced")
    for obs, chunks in (("o1", {"chunk-0000": ["m0-a"]}),
                        ("o2", {"chunk-0000": ["m1-a"], "chunk-0001": ["m1-b"]})):
        folder = tmp_path / "out" / obs
        assert sorted(p.name for p in folder.glob("*prepared.h5")) == [
            f"{c}.prepared.h5" for c in chunks]  # the name the products' links use
        for chunk, sids in chunks.items():
            with h5py.File(folder / f"{chunk}.prepared.h5") as f:
                assert list(f["stars"]) == sids and list(f.attrs["star_ids"]) == sids
                assert f.attrs["chunk_id"] == chunk and f[f"stars/{sids[0]}/prepared/time"][2] == 2
                assert f.attrs["n_seismic_candidates"] == len(sids)  # its own stars' count
    assert set(out) == {"o1", "o2"}
    t1 = read_catalogue(tmp_path / "out" / "o1" / "catalogue.ecsv")
    t2 = read_catalogue(tmp_path / "out" / "o2" / "catalogue.ecsv")
    assert list(t1["star_id"]) == ["a"] and list(t2["star_id"]) == ["a", "b"]
    assert [("" if e is np.ma.masked else str(e)) for e in t2["error"]] == ["", "b: bad"]
    assert (tmp_path / "out" / "o2" / "b.png").read_text() == "m1-b"
    report2 = (tmp_path / "out" / "o2" / "report.html").read_text()
    assert 'href="chunk-0000.prepared.h5"' in report2 and 'href="chunk-0001.prepared.h5"' in report2
    assert (tmp_path / "out" / "o1" / "a.product.h5").read_text() == "m0-a"
    assert "Observation o2" in (tmp_path / "out" / "o2" / "report.html").read_text()
    # idempotent: a second call after everything was published changes nothing
    assert runner.split_and_publish(run_dir, b, tmp_path / "out", tmp_path / "replaced") == out


# -- intake -------------------------------------------------------------------------------
def test_register_valid_duplicate_invalid(env: Config) -> None:
    ledger = Ledger(env.state)
    inbox = env.inbox

    def take(name: str, doc: dict | str) -> int:
        p = drop(inbox, name, doc)
        c = claim(p)
        assert c is not None and not p.exists() and c.name.startswith(".sfclaim.")
        return register(ledger, c, name=name, home=inbox, source="inbox", state_dir=env.state,
                        inbox=inbox)

    good = manifest("o1", [("a", "lc/a.h5"), ("b", "lc/missing.h5")])
    r1 = ledger.manifest(take("one.json", good))
    assert r1["state"] == "queued" and r1["n_stars"] == 2
    stars = json.loads(r1["stars_json"])
    assert stars[0]["lightcurve"]["location"] == (inbox / "lc" / "a.h5").as_uri()
    assert "not found" in stars[1]["input_error"]  # a star-level problem, not the manifest's
    r2 = ledger.manifest(take("again.json", good))
    assert r2["state"] == "duplicate" and r2["duplicate_of"] == r1["id"]
    r3 = ledger.manifest(take("bad.json", manifest("o 2", [("a", "lc/a.h5")])))
    assert r3["state"] == "finalizing" and r3["outcome"] == "failed"
    assert r3["reason"].startswith(f"{inbox / 'bad.json'}: ") and "\n" not in r3["reason"]
    assert r3["dest"] == str(inbox / "failed" / "bad.json")


def test_hostile_manifests_all_fail_with_one_line(env: Config, tmp_path: Path) -> None:
    names = hostile.write_all(env.inbox, tmp_path / "outside")
    assert len(names) >= 15
    svc = Service(env)
    assert svc.scan() == 0
    for key, name in names.items():
        reason = (env.inbox / "failed" / f"{name}.reason").read_text()
        assert reason.count("\n") == 1 and name in reason, (key, reason)
    assert not list((env.inbox / "done").iterdir())
    assert svc.ledger.one("SELECT COUNT(*) FROM runs")[0] == 0
    assert (tmp_path / "outside" / "lc.h5").read_bytes() == b"secret"
    leftovers = [p.name for p in env.inbox.iterdir() if p.name not in ("lc", "escape", "done",
                                                                       "failed")]
    assert leftovers == []


def test_orphaned_claim_is_taken_on_recovery(env: Config) -> None:
    # kill -9 between the claim (rename) and the ledger insert leaves a hidden claim file
    drop(env.inbox, ".sfclaim.123.456.late.json", manifest("late", [("a", "lc/a.h5")]))
    svc = Service(env)
    svc.recover()
    row = svc.ledger.one("SELECT * FROM manifests")
    assert row["name"] == "late.json" and row["state"] == "queued"


def test_second_service_on_same_state_is_refused(env: Config) -> None:
    svc = Service(env)
    with pytest.raises(Busy):
        Service(env)
    # cron's scan just steps aside
    assert trigger_main(["scan", str(env.inbox), "--state", str(env.state)]) == 0
    del svc


# -- runs, retries, recovery --------------------------------------------------------------
def test_burst_merged_and_duplicate_not_run_twice(env: Config, monkeypatch) -> None:
    calls: list = []
    fake_launcher(monkeypatch, [], calls)
    for k in range(5):
        drop(env.inbox, f"m{k}.json", manifest(f"o{k}", [("a", "lc/a.h5")]))
    drop(env.inbox, "copy.json", manifest("o0", [("a", "lc/a.h5")]))
    env.max_stars = 3
    svc = Service(env)
    svc.scan_inbox(0)
    drive(svc)
    assert len(calls) == 2  # 5 one-star manifests, max 3 stars per run
    done = sorted(p.name for p in (env.inbox / "done").iterdir() if p.suffix == ".json")
    assert done == ["copy.json", "m0.json", "m1.json", "m2.json", "m3.json", "m4.json"]
    # the scan takes names in order: copy.json came first, m0.json is its duplicate
    assert "duplicate of copy.json" in (env.inbox / "done" / "m0.json.reason").read_text()
    runs = svc.ledger.all("SELECT n_manifests FROM runs ORDER BY id")
    assert [r[0] for r in runs] == [3, 2]


def test_transient_failures_retried_then_failed_with_step_and_tail(env: Config,
                                                                   monkeypatch) -> None:
    calls: list = []
    fake_launcher(monkeypatch, ["transient", "transient", "transient"], calls)
    env.retries = 2
    drop(env.inbox, "x.json", manifest("x", [("a", "lc/a.h5")]))
    svc = Service(env)
    svc.scan_inbox(0)
    drive(svc)
    assert [c[2] for c in calls] == ["fresh", "restart", "fresh"]
    reason = (env.inbox / "failed" / "x.json.reason").read_text()
    first = reason.splitlines()[0]
    assert "run 1 failed after 3 attempt(s)" in first and "failing step: transit_search" in first
    assert "ValueError: boom" in reason.split("stderr tail")[1]
    assert svc.ledger.run(1)["state"] == "failed"


def test_permanent_failure_not_retried(env: Config, monkeypatch) -> None:
    calls: list = []
    fake_launcher(monkeypatch, ["permanent"], calls)
    drop(env.inbox, "x.json", manifest("x", [("a", "lc/a.h5")]))
    svc = Service(env)
    svc.scan_inbox(0)
    drive(svc)
    assert len(calls) == 1 and (env.inbox / "failed" / "x.json").exists()


def test_interrupted_attempt_resumes_with_restart(env: Config, monkeypatch) -> None:
    calls: list = []
    fake_launcher(monkeypatch, ["interrupted", "ok"], calls)
    drop(env.inbox, "x.json", manifest("x", [("a", "lc/a.h5")]))
    svc = Service(env)
    svc.scan_inbox(0)
    drive(svc)
    assert [c[2] for c in calls] == ["fresh", "restart"]
    run = svc.ledger.run(1)
    assert run["state"] == "done" and run["interrupts"] == 1 and run["attempts"] == 0
    assert (env.inbox / "done" / "x.json").exists()


def test_failed_resume_after_kill_starts_clean_without_using_budget(env: Config,
                                                                    monkeypatch) -> None:
    calls: list = []
    fake_launcher(monkeypatch, ["interrupted", "transient", "ok"], calls)
    env.retries = 0
    drop(env.inbox, "x.json", manifest("x", [("a", "lc/a.h5")]))
    svc = Service(env)
    svc.scan_inbox(0)
    drive(svc)
    assert [c[2] for c in calls] == ["fresh", "restart", "fresh"]
    run = svc.ledger.run(1)
    assert run["state"] == "done" and run["attempts"] == 0 and run["interrupts"] == 2


def test_restart_after_crash_finishes_finalizing(env: Config, monkeypatch) -> None:
    calls: list = []
    fake_launcher(monkeypatch, ["ok"], calls)
    drop(env.inbox, "x.json", manifest("x", [("a", "lc/a.h5")]))
    svc = Service(env)
    svc.scan_inbox(0)
    svc.check_runs()
    svc.schedule(flush=True)
    svc.check_runs()  # run done, manifest 'finalizing' - then the service "dies"
    assert svc.ledger.manifest(1)["state"] == "finalizing"
    svc._lock.close()
    svc2 = Service(env)
    svc2.recover()
    assert svc2.ledger.manifest(1)["state"] == "done"
    assert len(calls) == 1


def test_backfill_requeues_past_manifests(env: Config, monkeypatch, capsys) -> None:
    calls: list = []
    fake_launcher(monkeypatch, [], calls)
    drop(env.inbox, "x.json", manifest("x", [("a", "lc/a.h5")]))
    svc = Service(env)
    svc.scan_inbox(0)
    drive(svc)
    assert trigger_main(["backfill", "--state", str(env.state), "--since", "2000-01-01"]) == 0
    assert "re-queued 1 manifest" in capsys.readouterr().out
    drive(svc)
    assert len(calls) == 2
    rows = svc.ledger.all("SELECT source, state, backfill_of, dest FROM manifests ORDER BY id")
    assert [(r[0], r[1], r[2]) for r in rows] == [("inbox", "done", None),
                                                 ("backfill", "done", 1)]
    assert Path(rows[1]["dest"]).exists() and rows[1]["dest"] != rows[0]["dest"]
    # nothing received after the date: nothing re-queued
    assert trigger_main(["backfill", "--state", str(env.state), "--since", "2999-01-01",
                         "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_status_table_and_json(env: Config, monkeypatch, capsys) -> None:
    calls: list = []
    fake_launcher(monkeypatch, [], calls)
    drop(env.inbox, "x.json", manifest("x", [("a", "lc/a.h5"), ("b", "lc/b.h5")]))
    drop(env.inbox, "bad.json", "{")
    svc = Service(env)
    svc.scan_inbox(0)
    drive(svc)
    assert status_main(["--state", str(env.state), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {m["name"]: m for m in data["manifests"]}
    assert by_name["x.json"]["state"] == "done" and by_name["x.json"]["stars_ok"] == 2
    assert by_name["bad.json"]["state"] == "failed" and "invalid JSON" in by_name["bad.json"][
        "reason"]
    assert data["runs"][0]["state"] == "done" and data["runs"][0]["log_path"].endswith(
        "runner.log")
    assert status_main(["--state", str(env.state)]) == 0
    table = capsys.readouterr().out
    assert "MANIFESTS" in table and "RUNS" in table and "2/0" in table


# -- runner ---------------------------------------------------------------------------------
def _runner_args(run_dir: Path, tmp_path: Path, mode: str = "fresh") -> list[str]:
    return ["--run-dir", str(run_dir), "--attempt", "1", "--mode", mode, "--lock-fd", "0",
            "--outdir", str(tmp_path / "out"), "--replaced", str(tmp_path / "rep"),
            "--no-container"]


def _fake_outputs(run_dir: Path, obs: str) -> None:
    final = run_dir / "final" / obs
    final.mkdir(parents=True)
    nan = float("nan")
    row = {"star_id": "a", "status": "ok", "error": "", "cpu_s": 1.0,
           **{c: nan for c in ("prot_d", "numax_uhz", "dnu_uhz", "radius_rsun", "mass_msun",
                               "transit_period_d", "transit_t0_d", "transit_depth_ppm",
                               "transit_duration_h", "transit_snr", "planet_radius_rearth")}}
    make_table([row]).write(final / "catalogue.ecsv", format="ascii.ecsv")


def test_runner_calls_run_job_and_publishes(tmp_path: Path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    b = batch.build(1, [{"id": 1, "observation_id": "o1",
                         "stars_json": json.dumps([{"star_id": "a"}])}], 12)
    batch.write_json_atomic(run_dir / "batch.json", b)
    seen = []

    def fake_run_job(job, **kw):
        seen.append((job, kw))
        _fake_outputs(run_dir, kw["observation_id"])

    monkeypatch.setattr("stellarflow.run.run_job", fake_run_job)
    assert runner.main(_runner_args(run_dir, tmp_path)) == 0
    res = json.loads((run_dir / "attempt-1.json").read_text())
    assert res["ok"] and res["stars"] == {"o1": [1, 0]}
    assert (tmp_path / "out" / "o1" / "catalogue.ecsv").exists()
    job, kw = seen[0]
    assert job == b["job"] and kw["run_dir"] == run_dir and kw["restart"] is False
    assert kw["container"] is False and kw["workflow"] == "sas"


def test_runner_restart_gives_positionals_when_toil_asks(tmp_path: Path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "jobstore").mkdir(parents=True)
    b = batch.build(1, [{"id": 1, "observation_id": "o1",
                         "stars_json": json.dumps([{"star_id": "a"}])}], 12)
    batch.write_json_atomic(run_dir / "batch.json", b)
    calls = []

    def fake_run_job(job, **kw):
        calls.append(list(kw["extra_args"]))
        if not kw["extra_args"]:
            raise RunError("toil run of o1 failed (exit 2): toil-cwl-runner: error: the "
                           "following arguments are required: WORKFLOW")
        _fake_outputs(run_dir, "o1")

    monkeypatch.setattr("stellarflow.run.run_job", fake_run_job)
    runner.main(_runner_args(run_dir, tmp_path, "restart"))
    assert json.loads((run_dir / "attempt-1.json").read_text())["ok"]
    assert calls[1][0].endswith("cwl/workflows/sas.cwl") and calls[1][1].endswith("job.json")
    assert (run_dir / "jobstore").exists()  # --restart keeps the job store


def test_runner_failure_reports_step_and_tail(tmp_path: Path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    batch.write_json_atomic(run_dir / "batch.json", batch.build(
        1, [{"id": 1, "observation_id": "o1", "stars_json": json.dumps([{"star_id": "a"}])}], 1))

    def fake_run_job(job, **kw):
        (run_dir / "command.json").write_text("[]")
        (run_dir / "runner.log").write_text(
            "x\ntoil.exceptions.FailedJobsException: The job store 'file:/j' contains 1 failed "
            "jobs: 'file:///r/cwl/tools/transit_search.cwl' kind-CWLJob/instance-1 v3\n")
        raise RunError("toil run of o1 failed (exit 1): FailedJobsException")

    monkeypatch.setattr("stellarflow.run.run_job", fake_run_job)
    runner.main(_runner_args(run_dir, tmp_path))
    res = json.loads((run_dir / "attempt-1.json").read_text())
    assert not res["ok"] and res["transient"] and res["exit_code"] == 1
    assert res["failing_step"] == "transit_search.cwl"
    assert "FailedJobsException" in res["stderr_tail"]


# -- dataset lines ------------------------------------------------------------------------
def test_dataset_lines_batched_into_observations(env: Config, tmp_path: Path) -> None:
    ds_dir = tmp_path / "feed"
    (ds_dir / "lc").mkdir(parents=True)
    for s in ("a", "b"):
        (ds_dir / "lc" / f"{s}.h5").write_bytes(b"x")
    ds = ds_dir / "stars.csv"
    ds.write_text("star_id,lightcurve,teff,logg,feh\n"
                  "a,lc/a.h5,5800,4.4,0.0\n"
                  "b lc/b.h5 - 4.1\n"
                  "# a comment\n"
                  "evil,../secret.h5\n"
                  "a,lc/a.h5\n"          # a repeated star starts the next observation
                  "c,lc/c.h5,hot\n"
                  "b,lc/b.h5")            # no newline yet: not complete
    env.datasets = [ds]
    svc = Service(env)
    svc.feeds[0].poll(flush=True)
    rows = svc.ledger.all("SELECT name, state, observation_id, n_stars, reason FROM manifests "
                          "ORDER BY id")
    obs = [(r["observation_id"], r["n_stars"]) for r in rows if r["state"] == "queued"]
    assert obs == [("stars-L2-3", 2), ("stars-L6-6", 1)]
    bad = {r["name"]: r["reason"] for r in rows if r["state"] == "finalizing"}
    assert set(bad) == {"stars.csv.line5.txt", "stars.csv.line7.txt"}
    assert "contains '..'" in bad["stars.csv.line5.txt"]
    assert "teff 'hot' is not a number" in bad["stars.csv.line7.txt"]
    first = json.loads(svc.ledger.all("SELECT stars_json FROM manifests WHERE "
                                      "observation_id='stars-L2-3'")[0][0])
    assert first[0]["teff"] == 5800 and first[1]["logg"] == 4.1 and "teff" not in first[1]
    svc.feeds[0].poll(flush=True)  # nothing new
    assert svc.ledger.one("SELECT COUNT(*) FROM manifests")[0] == 4
    with open(ds, "a") as fh:
        fh.write("\n")
    svc.feeds[0].poll(flush=True)
    assert svc.ledger.one("SELECT observation_id FROM manifests ORDER BY id DESC")[0] == \
        "stars-L8-8"
    svc.finalize_all()
    assert (env.inbox / "failed" / "stars.csv.line5.txt").read_text() == "evil,../secret.h5\n"


def test_watch_events_wait_for_close(env: Config) -> None:
    svc = Service(env)
    taken = []
    svc.take = lambda p: taken.append(p.name)  # type: ignore[method-assign]
    p = str(env.inbox / "w.yaml")
    svc.on_event("created", p)
    svc.on_event("opened", p)
    svc.settle_created()
    assert taken == []  # being written
    svc.on_event("closed", p)
    assert taken == ["w.yaml"]
    svc.on_event("created", str(env.inbox / "renamed-in.yaml"))
    svc.created[str(env.inbox / "renamed-in.yaml")] -= 1.0
    svc.settle_created()
    assert taken == ["w.yaml", "renamed-in.yaml"]
    svc.on_event("moved", str(env.inbox / ".hidden.yaml"))
    svc.on_event("moved", str(env.inbox / "sub" / "x.yaml"))
    assert taken == ["w.yaml", "renamed-in.yaml"]


def test_dataset_line_names_several_files(tmp_path: Path) -> None:
    """Several files of one star: one field, joined by ';' (the manifest's list)."""
    from stellarflow.errors import InputError
    from stellarflow_trigger.dataset import parse_line

    ds = tmp_path / "stars.csv"
    star = parse_line(ds, "K90, q3.fits;q4.fits; q5.fits, 6080")
    assert star == {"star_id": "K90", "lightcurve": ["q3.fits", "q4.fits", "q5.fits"],
                    "teff": 6080.0}
    assert parse_line(ds, "s lc/a.h5 5800")["lightcurve"] == "lc/a.h5"
    for bad, expected in (("K90, q3.fits;;q5.fits", "empty file name"),
                          ("K90, q3.fits;../x.fits", "contains '..'")):
        with pytest.raises(InputError, match=expected):
            parse_line(ds, bad)
