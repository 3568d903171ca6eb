"""The ASGI application: connexion 3 over the two OpenAPI documents, behind an access guard.

The guard (a plain ASGI wrapper, so that it sees every request before routing) enforces the
bearer token, the request-size limit, same-origin writes and loopback Host names; everything it
refuses, and every error connexion or a handler raises, is a WES ErrorResponse
``{"msg": one line, "status_code": N}``. No CORS middleware: no cross-origin reads.
"""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from . import handlers

HERE = Path(__file__).parent
WES_SPEC = HERE / "wes.openapi.yaml"
PAGE_SPEC = HERE / "page.openapi.yaml"
MAX_BODY = 4 * 1024 * 1024  # a manifest's own limit; the multipart envelope fits in the rest
log = logging.getLogger("stellarflow.wes")


def load_spec(path: Path) -> dict[str, Any]:
    """The document as written, less its `security` lists (the guard enforces them: connexion
    cannot make them depend on --insecure-loopback)."""
    doc = YAML(typ="safe", pure=True).load(path.read_text())

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("security", None)
            for v in node.values():
                strip(v)

    strip(doc.get("paths", {}))
    doc.pop("security", None)
    return doc


def allowed_methods(specs: list[Path]) -> list[tuple[Any, str]]:
    """(path regex, 'GET, POST') for every path of the documents, for 405's Allow header."""
    import re

    out = []
    for spec in specs:
        doc = load_spec(spec)
        base = doc.get("servers", [{}])[0].get("url", "").rstrip("/")
        for path, ops in doc.get("paths", {}).items():
            rx = re.compile(re.escape(base + path).replace(r"\{", "{").replace(r"\}", "}")
                            .replace("{run_id}", "[^/]+").replace("{task_id}", "[^/]+")
                            .replace("{name}", "[^/]+"))
            methods = sorted(m.upper() for m in ops if m in ("get", "post", "put", "delete"))
            if "GET" in methods:
                methods.append("HEAD")
            out.append((rx, ", ".join(methods)))
    return out


def error_body(status: int, msg: str) -> bytes:
    return json.dumps({"msg": " ".join(str(msg).split())[:500], "status_code": status}).encode()


async def send_error(send: Any, status: int, msg: str) -> None:
    body = error_body(status, msg)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Access control in front of the app (see module doc)."""

    def __init__(self, app: Any, *, token: str | None, loopback: bool, reads_need_token: bool,
                 writes_need_token: bool, max_body: int = MAX_BODY) -> None:
        self.app, self.token, self.loopback = app, token, loopback
        self.reads_need_token, self.writes_need_token = reads_need_token, writes_need_token
        self.max_body = max_body

    def _authorized(self, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if not auth:
            return 401, "missing bearer token (Authorization: Bearer <token from the token file>)"
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return 401, "Authorization must be 'Bearer <token>'"
        if self.token is None or not hmac.compare_digest(value.strip().encode(),
                                                         self.token.encode()):
            return 401, "wrong bearer token"
        return None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        method = scope["method"]
        host = headers.get(b"host", b"").decode("latin-1")
        if self.loopback and host.rsplit(":", 1)[0].strip("[]") not in (
                "127.0.0.1", "localhost", "::1"):
            # a loopback server answers loopback names only (DNS rebinding)
            await send_error(send, 403, f"Host {host[:60]!r} is not this loopback server's")
            return
        write = method not in ("GET", "HEAD", "OPTIONS")
        if write:
            origin = headers.get(b"origin")
            if origin is not None and origin.decode("latin-1") not in (
                    f"http://{host}", f"https://{host}"):
                await send_error(send, 403, "cross-origin request refused")
                return
        public = not write and (scope["path"] == "/" or scope["path"].startswith("/static/"))
        if (write and self.writes_need_token) or (self.reads_need_token and not public):
            refused = self._authorized(headers)
            if refused:
                await send_error(send, *refused)
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                await send_error(send, 400, "Content-Length is not a number")
                return
            if n > self.max_body:
                await send_error(send, 413, f"request body of {n} bytes is more than the "
                                            f"{self.max_body} accepted")
                return
        if not write:
            await self.app(scope, receive, send)
            return
        # Read the body here, bounded, then hand it on whole: a body cut short inside the app's
        # own reading would look like an empty one there, not like a refused one.
        chunks, seen = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            seen += len(msg.get("body", b""))
            if seen > self.max_body:
                await send_error(send, 413, f"request body is more than the {self.max_body} "
                                            "bytes accepted")
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def create_app(ctx: handlers.Context, *, token: str | None = None, loopback: bool = True,
               insecure_loopback: bool = False, validate_responses: bool = False,
               max_body: int = MAX_BODY) -> Guard:
    from connexion import AsyncApp
    from connexion.exceptions import ProblemException
    from connexion.lifecycle import ConnexionResponse
    from connexion.options import SwaggerUIOptions
    from connexion.resolver import Resolver
    from starlette.exceptions import HTTPException
    from starlette.formparsers import MultiPartException

    handlers.CTX = ctx
    # connexion warns on every submit that the form has two content types (both are documented)
    logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)
    app = AsyncApp(__name__)
    allow = allowed_methods([WES_SPEC, PAGE_SPEC])
    resolver = Resolver(function_resolver=lambda name: getattr(handlers, name))
    # the page's document (base path /) first: connexion matches the APIs in reverse order
    for spec in (PAGE_SPEC, WES_SPEC):
        app.add_api(load_spec(spec), resolver=resolver, validate_responses=validate_responses,
                    strict_validation=True, pythonic_params=False,
                    swagger_ui_options=SwaggerUIOptions(swagger_ui=False, serve_spec=False))

    def respond(status: int, msg: str, headers: dict | None = None) -> ConnexionResponse:
        return ConnexionResponse(status_code=status, body=error_body(status, msg),
                                 content_type="application/json", headers=headers or {})

    def on_api_error(_req: Any, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, handlers.ApiError)
        return respond(exc.status, exc.msg)

    def on_problem(_req: Any, exc: Exception) -> ConnexionResponse:
        status = int(getattr(exc, "status", None) or getattr(exc, "status_code", 500))
        detail = getattr(exc, "detail", None) or getattr(exc, "title", None) or str(exc)
        if status >= 500:
            log.error("request failed: %s", detail)
        headers = dict(getattr(exc, "headers", None) or {})
        if status == 405:  # Allow: what the documents say this path supports
            path = getattr(getattr(_req, "url", None), "path", "")
            headers["Allow"] = next((m for rx, m in allow if rx.fullmatch(path)),
                                    headers.get("Allow", ""))
        return respond(status, str(detail).splitlines()[0] if detail else f"HTTP {status}",
                       headers)

    def on_error(_req: Any, exc: Exception) -> ConnexionResponse:
        log.error("unexpected error", exc_info=exc)  # a handler, not an except block
        return respond(500, f"internal error: {type(exc).__name__}")

    def on_multipart(_req: Any, exc: Exception) -> ConnexionResponse:
        return respond(400, f"malformed multipart body: {exc}")

    app.add_error_handler(handlers.ApiError, on_api_error)
    app.add_error_handler(MultiPartException, on_multipart)
    app.add_error_handler(ProblemException, on_problem)
    app.add_error_handler(HTTPException, on_problem)
    for code in (400, 404, 405, 406, 413, 415, 422):
        app.add_error_handler(code, on_problem)
    app.add_error_handler(Exception, on_error)
    writes_need = not (insecure_loopback and loopback)
    return Guard(app, token=token, loopback=loopback, reads_need_token=not loopback,
                 writes_need_token=writes_need, max_body=max_body)
