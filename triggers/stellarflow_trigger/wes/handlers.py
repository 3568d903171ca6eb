"""WES operations (connexion resolves each operationId in the OpenAPI documents to a function here)
and the page's JSON and file endpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from connexion import request
from connexion.lifecycle import ConnexionResponse

from stellarflow.errors import InputError
from stellarflow.paths import ALLOWED_WORKFLOWS, repo_root

from .. import submit
from ..cancel import NotCancelable, cancel
from ..ledger import Ledger
from . import views

CWL_VERSIONS = ("v1.0", "v1.1", "v1.2")
ENGINES = ("toil", "toil-cwl-runner")
DEFAULT_PAGE = 100


class ApiError(Exception):
    """A refusal: becomes a WES ErrorResponse with this status and one-line message."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = " ".join(str(msg).split())[:500]


@dataclass
class Context:
    state: Path
    data_root: Path
    site: str = "local"
    version: str = "0"
    auth_required_for_writes: bool = True
    db: views.Db = field(init=False)
    ledger_lock: Any = field(init=False)

    def __post_init__(self) -> None:
        import threading

        self.state, self.data_root = Path(self.state).resolve(), Path(self.data_root).resolve()
        Ledger(self.state).close()  # creates the schema once
        self.db = views.Db(self.state)
        self.ledger_lock = threading.Lock()
        self._ledgers = threading.local()

    def ledger(self) -> Ledger:
        led = getattr(self._ledgers, "ledger", None)
        if led is None:
            led = Ledger.__new__(Ledger)  # a writer connection without re-running the schema
            import sqlite3

            led.state_dir, led.path = self.state, self.state / "ledger.sqlite"
            led.db = sqlite3.connect(led.path, timeout=60, isolation_level=None,
                                     check_same_thread=False)
            led.db.row_factory = sqlite3.Row
            led.db.execute("PRAGMA busy_timeout=60000")
            led.db.execute("PRAGMA synchronous=FULL")
            self._ledgers.ledger = led
        return led


CTX: Context | None = None


def ctx() -> Context:
    assert CTX is not None, "create_app() sets the context"
    return CTX


def base_url() -> str:
    return str(request.base_url).split("/ga4gh/")[0].split("/ui/")[0].rstrip("/") + "/"


def _run(run_id: str) -> views.Run:
    run = views.load_run(ctx().db, run_id)
    if run is None:
        raise ApiError(404, f"no run {run_id[:40]!r}")
    return run


def _page(page_size: int | None, page_token: str | None) -> tuple[int, str | None]:
    size = DEFAULT_PAGE if page_size is None else int(page_size)
    if page_token not in (None, "") and not str(page_token).isdigit():
        raise ApiError(400, f"page_token {str(page_token)[:40]!r} is not one this service gave")
    return size, page_token or None


# -- WES ---------------------------------------------------------------------------------------
def GetServiceInfo() -> dict[str, Any]:  # noqa: N802 - operationId
    c = ctx()
    counts = {views.state(r): 0 for r in []}
    for r in c.db.all(views.RUN_SQL):
        s = views.state(r)
        counts[s] = counts.get(s, 0) + 1
    return {
        "id": "org.stellarflow.wes", "name": "stellarflow WES",
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "description": "stellarflow workflows (allow-listed) run by Toil from the trigger ledger",
        "organization": {"name": "stellarflow", "url": base_url()},
        "version": c.version,
        "workflow_type_versions": {"CWL": {"workflow_type_version": list(CWL_VERSIONS)}},
        "supported_wes_versions": ["1.1.0"],
        "supported_filesystem_protocols": ["file"],
        "workflow_engine_versions": {"toil": {"workflow_engine_version": [_toil_version()]}},
        "default_workflow_engine_parameters": [],
        "system_state_counts": counts,
        "auth_instructions_url": base_url() + "#auth",
        "tags": {"allowed_workflows": ",".join(sorted(ALLOWED_WORKFLOWS)),
                 "data_root": str(c.data_root), "site": c.site,
                 "workflow_params": "the workflow's CWL job, or a stellarflow manifest"},
    }


def _toil_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toil")
    except PackageNotFoundError:
        return "unknown"


def ListRuns(page_size: int | None = None, page_token: str | None = None) -> dict:  # noqa: N802
    size, token = _page(page_size, page_token)
    return views.list_runs(ctx().db, size, token)


def GetRunStatus(run_id: str) -> dict[str, Any]:  # noqa: N802
    run = _run(run_id)
    return {"run_id": str(run.id), "state": views.state(run.m, run.original)}


def GetRunLog(run_id: str) -> dict[str, Any]:  # noqa: N802
    run = _run(run_id)
    m = run.m
    src = run.original if run.original is not None else m
    base = base_url()
    log: dict[str, Any] = {"name": m["observation_id"] or m["name"],
                           "system_logs": [x for x in (m["reason"], src["error"]) if x]}
    st = views.start_time(src)
    if st is not None:
        log["start_time"] = views.iso(st)
    if m["finished_at"] is not None:
        log["end_time"] = views.iso(m["finished_at"])
    if src["exit_code"] is not None:
        log["exit_code"] = int(src["exit_code"])
    if src["run_dir"]:
        try:
            log["cmd"] = [str(a) for a in json.loads(
                (Path(src["run_dir"]) / "command.json").read_text())]
        except (OSError, ValueError):
            pass
    if src["log_path"]:
        log["stderr"] = f"{base}ui/files/{run.id}/runner.log"
    outputs: dict[str, Any] = {}
    out = views.outputs_dir(run)
    if out is not None:
        outputs["outdir"] = str(out)
        for key, name in (("catalogue", "catalogue.ecsv"), ("report", "report.html")):
            if (out / name).is_file():
                outputs[key] = {"class": "File", "location": (out / name).as_uri(),
                                "url": f"{base}ui/files/{run.id}/{name}"}
    for k in ("stars_ok", "stars_failed"):
        if src[k] is not None:
            outputs[k] = int(src[k])
    request_doc: dict[str, Any] = {"workflow_type": "CWL", "workflow_type_version": "v1.2",
                                   "workflow_url": m["workflow"] or "sas", "tags": views.tags(m)}
    if m["stored_copy"] and m["stored_copy"].endswith(".json"):
        try:
            request_doc["workflow_params"] = json.loads(Path(m["stored_copy"]).read_text())
        except (OSError, ValueError):
            pass
    return {"run_id": str(run.id), "request": request_doc,
            "state": views.state(m, run.original), "run_log": log,
            "task_logs_url": f"{base}ga4gh/wes/v1/runs/{run.id}/tasks", "task_logs": None,
            "outputs": outputs}


def ListTasks(run_id: str, page_size: int | None = None,  # noqa: N802
              page_token: str | None = None) -> dict[str, Any]:
    run = _run(run_id)
    size, token = _page(page_size, page_token)
    tasks = views.tasks_of(run)
    start = int(token) if token else 0
    page = tasks[start:start + size]
    base = base_url()
    nxt = str(start + size) if start + size < len(tasks) else ""
    usage = views.usage_by_task(tasks, views.step_usage(run))
    return {"task_logs": [views.task_log(run, t, base, usage) for t in page],
            "next_page_token": nxt}


def GetTask(run_id: str, task_id: str) -> dict[str, Any]:  # noqa: N802
    run = _run(run_id)
    for t in views.tasks_of(run):
        if t.id == task_id:
            return views.task_log(run, t, base_url())
    raise ApiError(404, f"run {run.id} has no task {task_id[:60]!r}")


def CancelRun(run_id: str) -> dict[str, Any]:  # noqa: N802
    run = _run(run_id)
    c = ctx()
    try:
        cancel(c.ledger(), run.id)
    except NotCancelable as exc:
        raise ApiError(400, str(exc)) from None
    return {"run_id": str(run.id)}


# -- RunWorkflow -----------------------------------------------------------------------------
def _allowed_files() -> dict[str, tuple[str, Path]]:
    """base name of each allow-listed workflow file -> (workflow name, path)."""
    root = repo_root()
    return {Path(rel).name: (name, root / rel) for name, rel in ALLOWED_WORKFLOWS.items()}


def resolve_workflow(url: str, attachments: list[tuple[str, bytes]]) -> str:
    """The allow-listed workflow ``workflow_url`` names; ApiError otherwise."""
    files = _allowed_files()
    allowed = ", ".join(f"{n} ({Path(p).name})" for _, (n, p) in sorted(files.items()))
    for fname, data in attachments:
        hit = files.get(fname)
        if hit is None:
            raise ApiError(400, f"attachment {fname[:80]!r} is not accepted: only an allow-listed "
                                f"workflow file ({allowed}) may be attached")
        if data != hit[1].read_bytes():
            raise ApiError(400, f"attachment {fname!r} differs from the allow-listed "
                                f"{hit[1].name}: only the workflow as it is in the repository runs")
    if url in ALLOWED_WORKFLOWS:
        return url
    if url in files:
        return files[url][0]
    parts = urlsplit(url)
    if parts.scheme in ("", "file") and not parts.netloc:
        path = unquote(parts.path)
        for name, p in files.values():
            if path == str(p):
                return name
    raise ApiError(400, f"workflow_url {url[:120]!r} is not allow-listed; allowed: {allowed}")


def RunWorkflow(body: Any = None, workflow_attachment: Any = None,  # noqa: N802
                **_: Any) -> dict[str, str]:
    """connexion passes the multipart form's fields in ``body`` and its files by name."""
    form = dict(body or {})
    files = workflow_attachment if isinstance(workflow_attachment, list) else \
        ([workflow_attachment] if workflow_attachment is not None else [])
    return _submit(form, files)


def _field(form: dict[str, Any], name: str, required: bool = True) -> str | None:
    v = form.get(name)
    if isinstance(v, list):
        if len(v) > 1:
            raise ApiError(400, f"{name} given {len(v)} times")
        v = v[0] if v else None
    if v is None:
        if required:
            raise ApiError(400, f"{name} is required")
        return None
    if not isinstance(v, str):
        raise ApiError(400, f"{name} must be a form field, not a file")
    return v


def _submit(form: dict[str, Any], files: list[Any]) -> dict[str, str]:
    c = ctx()
    wtype = _field(form, "workflow_type")
    if (wtype or "").upper() != "CWL":
        raise ApiError(400, f"workflow_type {wtype[:40]!r} is not supported (CWL only)")
    ver = _field(form, "workflow_type_version")
    if ver not in CWL_VERSIONS:
        raise ApiError(400, f"workflow_type_version {ver[:40]!r} is not supported "
                            f"({', '.join(CWL_VERSIONS)})")
    engine = _field(form, "workflow_engine", required=False)
    if engine is not None and engine.lower() not in ENGINES:
        raise ApiError(400, f"workflow_engine {engine[:40]!r} is not supported (toil)")
    params = _field(form, "workflow_engine_parameters", required=False)
    if params not in (None, "", "{}", "null"):
        raise ApiError(400, "workflow_engine_parameters are not accepted (the site profile sets "
                            "the engine's options)")
    tags = _field(form, "tags", required=False)
    if tags not in (None, ""):
        try:
            t = json.loads(tags)
        except ValueError:
            raise ApiError(400, "tags is not valid JSON") from None
        if not isinstance(t, dict) or not all(isinstance(v, str) for v in t.values()):
            raise ApiError(400, "tags must be a JSON object of strings")
    attachments = []
    in_form = form.get("workflow_attachment", [])  # text fields of that name (a list if repeated)
    for item in files + (in_form if isinstance(in_form, list) else [in_form]):
        if not hasattr(item, "filename") or not hasattr(item, "file"):
            raise ApiError(400, "workflow_attachment must be a file part")
        name = item.filename or ""
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ApiError(400, f"workflow_attachment name {name[:80]!r} is not accepted")
        attachments.append((name, item.file.read()))
    for key in form:
        if key not in ("workflow_params", "workflow_type", "workflow_type_version", "tags",
                       "workflow_engine", "workflow_engine_version", "workflow_engine_parameters",
                       "workflow_url", "workflow_attachment"):
            raise ApiError(400, f"unknown form field {key[:40]!r}")
    workflow = resolve_workflow(_field(form, "workflow_url") or "", attachments)
    raw = _field(form, "workflow_params") or ""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"workflow_params is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "workflow_params must be a JSON object")
    try:
        if "manifest_version" in doc:
            if doc.get("workflow", workflow) != workflow:
                raise ApiError(400, f"the manifest's workflow {str(doc.get('workflow'))[:40]!r} "
                                    f"is not the workflow_url's {workflow!r}")
        else:
            doc = submit.job_to_manifest(doc, workflow, c.data_root)
        data = submit.canonical(doc)
        sha = submit.sha256(data)
        got = submit.record(c.ledger(), data, sha=sha, name=f"wes-{sha[:12]}.json",
                            data_root=c.data_root, source="api", state_dir=c.state)
    except InputError as exc:
        msg = exc.problem if exc.path is None else str(exc).replace(str(c.data_root) + "/", "")
        raise ApiError(400, msg) from None
    return {"run_id": str(got.manifest_id)}


# -- the page's endpoints ----------------------------------------------------------------------
def PageRuns(limit: int = 200) -> dict[str, Any]:  # noqa: N802
    c = ctx()
    rows = c.db.all(views.RUN_SQL + "ORDER BY m.id DESC LIMIT ?", int(limit))
    out = []
    for r in rows:
        orig = None
        if r["duplicate_of"] is not None:
            orig = c.db.one(views.RUN_SQL + "WHERE m.id=?", r["duplicate_of"])
        out.append(_page_row(views.Run(r, r if r["run_id"] else None, orig)))
    counts: dict[str, int] = {}
    for r in c.db.all("SELECT state, COUNT(*) FROM manifests GROUP BY state"):
        counts[r[0]] = r[1]
    return {"runs": out, "counts": counts, "site": c.site}


def _page_row(run: views.Run) -> dict[str, Any]:
    m = run.m
    src = run.original if run.original is not None else m
    st = views.state(m, run.original)
    start, end = views.start_time(src), m["finished_at"]
    row: dict[str, Any] = {
        "run_id": str(run.id), "state": st, "source": m["source"], "name": m["name"],
        "observation_id": m["observation_id"], "n_stars": m["n_stars"],
        "stars_ok": src["stars_ok"], "stars_failed": src["stars_failed"],
        "received": views.iso(m["received_at"]), "start": views.iso(start),
        "end": views.iso(end),
        "duration_s": None if start is None else round((end or __import__("time").time())
                                                       - start, 1),
        "site": views.site_of(src["run_dir"]), "toil_run": src["run_id"],
        "progress": None}
    if st in ("RUNNING", "INITIALIZING") and src["run_dir"]:
        p = views.run_progress(src["run_dir"], finished=False, workflow=src["workflow"])
        if p is not None:
            row["progress"] = {"done": p.done, "total": p.total, "running": p.running,
                               "failed": p.failed, "eta_s": None if p.eta_s is None
                               else round(p.eta_s, 1)}
    return row


def PageRun(run_id: str) -> dict[str, Any]:  # noqa: N802
    run = _run(run_id)
    m = run.m
    src = run.original if run.original is not None else m
    row = _page_row(run)
    tasks = views.tasks_of(run)
    out = views.outputs_dir(run)
    row.update({
        "reason": m["reason"], "error": src["error"], "failing_step": src["failing_step"],
        "stderr_tail": src["stderr_tail"], "attempts": src["attempts"],
        "interrupts": src["interrupts"], "outputs": str(out) if out else None,
        "duplicate_of": m["duplicate_of"],
        "tasks": [{"id": t.id, "name": t.name, "chunk": t.chunk, "start": t.start, "end": t.end,
                   "state": t.state, "exit_code": t.exit_code,
                   "stderr_tail": "\n".join(t.stderr_tail)} for t in tasks],
        "failed_stars": views.failed_stars(out / "catalogue.ecsv") if out else [],
        "files": [{**f, "url": f"ui/files/{run.id}/{f['name']}"} for f in views.files(run)],
    })
    return row


def PageFile(run_id: str, name: str) -> ConnexionResponse:  # noqa: N802
    run = _run(run_id)
    path = views.file_path(run, name)
    if path is None:
        raise ApiError(404, f"run {run.id} has no file {name[:80]!r}")
    ctype = FILE_TYPES.get(path.suffix, "application/octet-stream")
    headers = {"X-Content-Type-Options": "nosniff"}
    if ctype.startswith("text/html"):
        headers["Content-Security-Policy"] = "sandbox"  # a report never runs script here
    return ConnexionResponse(status_code=200, body=path.read_bytes(), content_type=ctype,
                             headers=headers)


FILE_TYPES = {".log": "text/plain; charset=utf-8", ".ecsv": "text/plain; charset=utf-8",
              ".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8",
              ".png": "image/png"}  # as page.openapi.yaml documents; anything else is binary
STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8"}


def PageIndex() -> ConnexionResponse:  # noqa: N802
    return PageStatic("index.html")


def PageStatic(name: str) -> ConnexionResponse:  # noqa: N802
    files = {p.name: p for p in STATIC.iterdir() if p.is_file()}
    p = files.get(name)
    if p is None:
        raise ApiError(404, f"no static file {name[:80]!r}")
    return ConnexionResponse(status_code=200, body=p.read_bytes(),
                             content_type=STATIC_TYPES.get(p.suffix, "application/octet-stream"),
                             headers={"X-Content-Type-Options": "nosniff",
                                      "Cache-Control": "no-cache"})


def PageSpec(name: str) -> ConnexionResponse:  # noqa: N802
    """The documents as written: connexion routes by copies without their `security` lists."""
    docs = {p.name: p for p in Path(__file__).parent.glob("*.openapi.yaml")}
    if name not in docs:
        raise ApiError(404, f"no document {name[:80]!r}")
    return ConnexionResponse(status_code=200, body=docs[name].read_bytes(),
                             content_type="application/yaml")
