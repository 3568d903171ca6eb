"""Fill roc-validator's HTTP cache (requests-cache, SQLite) with the JSON-LD contexts stellarflow's
crates use, from files on this machine, so `rocrate-validator validate --offline` needs no network.

Run with the validator's venv python (scripts/rocrate-validate does): ``python THIS CACHE_PATH``.
- https://w3id.org/ro/crate/1.1/context: the RO-Crate 1.1 context shipped in rocrate 0.14.2
  (installed beside the validator, scripts/tool-venvs/roc-validator.txt);
- https://w3id.org/ro/terms/workflow-run/context: the workflow-run terms (ro-terms), written
  here from their names.
Idempotent: a cache already holding both is left alone.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import rocrate
import urllib3
from requests.adapters import HTTPAdapter
from requests_cache import CachedSession

CRATE_11 = "https://w3id.org/ro/crate/1.1/context"
WFRUN = "https://w3id.org/ro/terms/workflow-run/context"
WFRUN_NS = "https://w3id.org/ro/terms/workflow-run#"
WFRUN_TERMS = ("ParameterConnection", "ContainerImage", "DockerImage", "SIFImage", "connection",
               "sourceParameter", "targetParameter", "md5", "sha1", "sha256", "sha512",
               "environment", "registry", "tag", "containerImage", "resourceUsage")


def bodies() -> dict[str, bytes]:
    ctx = Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld"
    text = ctx.read_bytes()
    if json.loads(text).get("@id") != CRATE_11:
        sys.exit(f"rocrate_offline_cache: {ctx} is not the RO-Crate 1.1 context")
    wfrun = {"@context": {t: WFRUN_NS + t for t in WFRUN_TERMS}}
    return {CRATE_11: text, WFRUN: json.dumps(wfrun, indent=1).encode()}


class LocalFiles(HTTPAdapter):
    """Answers GETs of the known URLs from memory (nothing leaves the machine)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__()
        self.files = files

    def send(self, request, **kwargs):  # noqa: ANN001, ANN201 - requests' adapter interface
        body = self.files[request.url]
        raw = urllib3.HTTPResponse(body=io.BytesIO(body), status=200, preload_content=False,
                                   headers={"Content-Type": "application/ld+json",
                                            "Content-Length": str(len(body))},
                                   request_url=request.url)
        return self.build_response(request, raw)


def main() -> int:
    cache = Path(sys.argv[1])
    cache.parent.mkdir(parents=True, exist_ok=True)
    files = bodies()
    session = CachedSession(cache_name=str(cache), backend="sqlite", expire_after=-1,
                            allowable_methods=("GET",), allowable_codes=(200, 302, 404))
    missing = [u for u in files if not session.cache.contains(url=u)]
    if missing:
        session.mount("https://", LocalFiles(files))
        for url in missing:
            session.get(url).raise_for_status()
        print(f"rocrate_offline_cache: cached {', '.join(missing)} in {cache}.sqlite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
