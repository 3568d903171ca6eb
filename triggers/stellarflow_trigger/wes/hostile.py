"""A corpus of hostile requests against the WES API (tests; `python -m
stellarflow_trigger.wes.hostile URL --data-root DIR --token T` prints the table).

Each case must get a 4xx WES ErrorResponse with a one-line message; nothing may be recorded or
run, and the server must go on answering. ``prepare(data_root, outside)`` makes the light curve
the cases point at and a symlink in the data root that leaves it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

WES = "/ga4gh/wes/v1"


def prepare(data_root: Path, outside: Path) -> None:
    (data_root / "lc").mkdir(parents=True, exist_ok=True)
    if not (data_root / "lc" / "ok.h5").exists():
        (data_root / "lc" / "ok.h5").write_bytes(b"never read: refused before")
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "lc.h5").write_bytes(b"secret")
    link = data_root / "escape"
    if not link.is_symlink():
        link.symlink_to(outside, target_is_directory=True)


def _job(location: str, **star: Any) -> dict[str, Any]:
    return {"observation_id": "hostile",
            "stars": [{"star_id": "s1", "lightcurve": {"class": "File", "location": location},
                       **star}]}


def _manifest(lightcurve: str, **over: Any) -> dict[str, Any]:
    doc = {"manifest_version": 1, "observation_id": "hostile", "workflow": "sas",
           "stars": [{"star_id": "s1", "lightcurve": lightcurve}]}
    doc.update(over)
    return doc


def _form(params: Any, **over: str) -> dict[str, str]:
    form = {"workflow_params": params if isinstance(params, str) else json.dumps(params),
            "workflow_type": "CWL", "workflow_type_version": "v1.2", "workflow_url": "sas"}
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def cases(data_root: Path, outside: Path, token: str, sas_cwl: Path
          ) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, what it tries, request: method, url, data, files, headers, content)."""
    ok_lc = (data_root / "lc" / "ok.h5").as_uri()
    auth = {"Authorization": f"Bearer {token}"}
    sas = sas_cwl.read_bytes()
    big = b"x" * (5 * 1024 * 1024)

    def post(form: dict[str, str], files: list | None = None,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
        return {"method": "POST", "url": f"{WES}/runs", "data": form, "files": files,
                "headers": auth if headers is None else headers}

    return [
        ("broken-json", "workflow_params '{\"stars\": ['", post(_form('{"stars": ['))),
        ("params-not-object", "workflow_params is a JSON list", post(_form("[1, 2]"))),
        ("huge-body", "a 5 MiB workflow_params", post(_form(big.decode()))),
        ("huge-chunked", "a 5 MiB attachment sent chunked (no Content-Length)",
         {"method": "POST", "url": f"{WES}/runs",
          "content": iter([b'--x\r\nContent-Disposition: form-data; name="workflow_attachment"; '
                           b'filename="sas.cwl"\r\n\r\n'] + [big[:1 << 20]] * 5),
          "headers": {**auth, "Content-Type": "multipart/form-data; boundary=x"}}),
        ("url-traversal", "workflow_url '../../../etc/passwd'",
         post(_form(_job(ok_lc), workflow_url="../../../etc/passwd"))),
        ("url-other-cwl", "workflow_url naming a CWL file that is not allow-listed",
         post(_form(_job(ok_lc), workflow_url=str(sas_cwl.parent.parent.parent / "dummy_pipeline"
                                                  / "cwl" / "euclid.cwl")))),
        ("url-remote", "workflow_url 'http://127.0.0.1:1/evil.cwl'",
         post(_form(_job(ok_lc), workflow_url="http://127.0.0.1:1/evil.cwl"))),
        ("param-traversal", "File location '../outside/lc.h5' (relative, leaves the root)",
         post(_form(_job("../outside/lc.h5")))),
        ("param-absolute", "File location file:///etc/passwd", post(_form(_job("file:///etc/passwd")))),
        ("param-remote", "File location http://127.0.0.1:1/lc.h5",
         post(_form(_job("http://127.0.0.1:1/lc.h5")))),
        ("param-symlink", "File location through a symlink that leaves the data root",
         post(_form(_job((data_root / "escape" / "lc.h5").as_uri())))),
        ("param-nul", "File location with a NUL byte",
         post(_form(_job("lc/ok.h5\x00/etc/passwd")))),
        ("param-extra-field", "a star with a 'command' field",
         post(_form(_job(ok_lc, command="rm -rf /")))),
        ("manifest-traversal", "manifest light curve '../../etc/passwd'",
         post(_form(_manifest("../../etc/passwd")))),
        ("manifest-absolute", "manifest light curve '/etc/passwd'",
         post(_form(_manifest("/etc/passwd")))),
        ("manifest-workflow", "manifest naming workflow 'evil'",
         post(_form(_manifest("lc/ok.h5", workflow="evil")))),
        ("shell-id", "observation_id 'x; rm -rf ~'",
         post(_form(_manifest("lc/ok.h5", observation_id="x; rm -rf ~")))),
        ("attach-differs", "attachment sas.cwl with one byte changed",
         post(_form(_job(ok_lc), workflow_url="sas.cwl"),
              files=[("workflow_attachment", ("sas.cwl", sas + b"\n"))])),
        ("attach-other", "attachment evil.cwl beside sas.cwl",
         post(_form(_job(ok_lc), workflow_url="sas.cwl"),
              files=[("workflow_attachment", ("sas.cwl", sas)),
                     ("workflow_attachment", ("evil.cwl", b"cwlVersion: v1.2"))])),
        ("attach-traversal", "attachment named '../sas.cwl'",
         post(_form(_job(ok_lc), workflow_url="sas.cwl"),
              files=[("workflow_attachment", ("../sas.cwl", sas))])),
        ("attach-text-repeated", "workflow_attachment sent 3 times as form text, not files",
         post({**_form(_job(ok_lc)), "workflow_attachment": ["", "", "x"]})),
        ("wdl", "workflow_type WDL", post(_form(_job(ok_lc), workflow_type="WDL"))),
        ("engine-params", "workflow_engine_parameters '{\"--batchSystem\": \"x\"}'",
         post(_form(_job(ok_lc), workflow_engine_parameters='{"--batchSystem": "x"}'))),
        ("missing-field", "no workflow_url", post(_form(_job(ok_lc), workflow_url=None))),
        ("no-token", "submit without a token", post(_form(_job(ok_lc)), headers={})),
        ("wrong-token", "submit with a wrong token",
         post(_form(_job(ok_lc)), headers={"Authorization": "Bearer not-the-token-at-all"})),
        ("basic-auth", "submit with Basic auth", post(_form(_job(ok_lc)),
                                                      headers={"Authorization": "Basic YTpi"})),
        ("cancel-no-token", "cancel without a token",
         {"method": "POST", "url": f"{WES}/runs/1/cancel", "headers": {}}),
        ("cross-origin", "submit from another origin (a web page elsewhere)",
         post(_form(_job(ok_lc)), headers={**auth, "Origin": "http://evil.example"})),
        ("foreign-host", "Host header of another name (DNS rebinding)",
         {"method": "GET", "url": f"{WES}/runs", "headers": {"Host": "evil.example"}}),
        ("unknown-run", "status of run 999999",
         {"method": "GET", "url": f"{WES}/runs/999999/status"}),
        ("run-id-traversal", "run id '..%2F..%2Fetc'",
         {"method": "GET", "url": f"{WES}/runs/..%2F..%2Fetc"}),
        ("cancel-unknown", "cancel run 999999",
         {"method": "POST", "url": f"{WES}/runs/999999/cancel", "headers": auth}),
        ("unknown-task", "task 'nope' of run 999999",
         {"method": "GET", "url": f"{WES}/runs/999999/tasks/nope"}),
        ("bad-page-token", "page_token 'DROP TABLE'",
         {"method": "GET", "url": f"{WES}/runs?page_token=DROP%20TABLE"}),
        ("file-traversal", "page file '..%2F..%2Fetc%2Fpasswd'",
         {"method": "GET", "url": "/ui/files/1/..%2F..%2Fetc%2Fpasswd"}),
        ("unknown-path", "GET /ga4gh/wes/v1/admin", {"method": "GET", "url": f"{WES}/admin"}),
        ("wrong-method", "DELETE /ga4gh/wes/v1/runs", {"method": "DELETE", "url": f"{WES}/runs",
                                                       "headers": auth}),
    ]


def send(client: Any, req: dict[str, Any]) -> Any:
    kw = {k: v for k, v in req.items() if k not in ("method", "url") and v is not None}
    return client.request(req["method"], req["url"], **kw)


def run_all(client: Any, data_root: Path, outside: Path, token: str, sas_cwl: Path,
            each: Callable[[str, str, Any], None] | None = None) -> list[tuple[str, str, int, str]]:
    prepare(data_root, outside)
    rows = []
    for key, what, req in cases(data_root, outside, token, sas_cwl):
        r = send(client, req)
        try:
            msg = r.json().get("msg", "")
        except ValueError:
            msg = f"(not JSON: {r.text[:60]!r})"
        rows.append((key, what, r.status_code, msg))
        if each:
            each(key, what, r)
    return rows


def table(rows: list[tuple[str, str, int, str]]) -> str:
    out = ["| case | input | status | message |", "|---|---|---|---|"]
    for key, what, status, msg in rows:
        cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        out.append(f"| {key} | {cell(what)} | {status} | {cell(msg)} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import httpx

    p = argparse.ArgumentParser(description="send the hostile corpus to a running server")
    p.add_argument("url", help="e.g. http://127.0.0.1:8080")
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--outside", type=Path, required=True, help="a folder outside the data root")
    p.add_argument("--token", required=True)
    p.add_argument("--sas-cwl", type=Path, required=True)
    a = p.parse_args(argv)
    with httpx.Client(base_url=a.url, timeout=30) as c:
        print(table(run_all(c, a.data_root, a.outside, a.token, a.sas_cwl)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
