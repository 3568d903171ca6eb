"""Container images: which ones the CWL files use, which exist, a clear error if one is missing.

Every module folder ``containers/<name>/`` (a module.yml, a Containerfile) builds one image,
``localhost/stellarflow/<name>:<version>`` with the version of its module.yml
(``scripts/build-images``). A missing image is reported before the run starts, in one line naming
the image and ``make images``, instead of letting cwltool try a registry pull.

Only the standard library is imported at module level (ruamel.yaml when module.yml is read), so
``scripts/build-images`` can use this file early.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

PREFIX = "localhost/stellarflow/"
# Label holding the hash of an image's build inputs (rebuild only when it changes).
HASH_LABEL = "io.stellarflow.content-hash"
OCI_LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.version",
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
)
LANGUAGES = ("python", "c")
MODULE_KEYS = ("name", "version", "language", "description")


class MissingImageError(RuntimeError):
    """One or more images the workflow needs are not in local podman storage."""


class ModuleError(ValueError):
    """A module folder whose module.yml is missing or wrong (one line)."""


def repo_root() -> Path:
    """The checkout this package lives in (scripts/stellarflow -> repo)."""
    return Path(__file__).resolve().parents[2]


def module_dirs(containers_dir: Path | None = None) -> list[Path]:
    """Every module folder: ``containers/<name>/`` holding a module.yml, sorted by name."""
    cdir = containers_dir or repo_root() / "containers"
    return sorted(p.parent for p in cdir.glob("*/module.yml"))


def read_module(mdir: Path) -> dict:
    """A module's module.yml, checked for what every tool relies on (ModuleError if not)."""
    from ruamel.yaml import YAML, YAMLError  # the venv's; only what reads modules needs it

    path = mdir / "module.yml"
    try:
        meta = YAML(typ="safe", pure=True).load(path.read_text())
    except (OSError, YAMLError) as exc:
        raise ModuleError(f"{path}: unreadable ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(meta, dict):
        raise ModuleError(f"{path}: expected a mapping")
    missing = [k for k in MODULE_KEYS if not meta.get(k)]
    if missing:
        raise ModuleError(f"{path}: missing {', '.join(missing)}")
    if meta["name"] != mdir.name:
        raise ModuleError(f"{path}: name {meta['name']!r} differs from its folder {mdir.name!r}")
    if meta["language"] not in LANGUAGES:
        raise ModuleError(f"{path}: language {meta['language']!r}, expected one of "
                          f"{', '.join(LANGUAGES)}")
    meta["version"] = str(meta["version"])
    return meta


def image_ref(name: str, version: str) -> str:
    return f"{PREFIX}{name}:{version}"


def module_image(mdir: Path) -> str:
    """The image a module's folder builds: localhost/stellarflow/<name>:<version>."""
    return image_ref(mdir.name, read_module(mdir)["version"])


def built_images(root: Path | None = None) -> list[str]:
    """The image references ``make images`` builds, one per module."""
    return [module_image(d) for d in module_dirs((root or repo_root()) / "containers")]


def _walk_docker(node: object) -> Iterable[str]:
    if isinstance(node, dict):
        if node.get("class") == "DockerRequirement":
            for key in ("dockerPull", "dockerImageId"):
                if isinstance(node.get(key), str):
                    yield node[key]
        # CWL also allows requirements/hints as a map keyed by class.
        for key in ("requirements", "hints"):
            req = node.get(key)
            if isinstance(req, dict) and isinstance(req.get("DockerRequirement"), dict):
                d = req["DockerRequirement"]
                for k in ("dockerPull", "dockerImageId"):
                    if isinstance(d.get(k), str):
                        yield d[k]
        for v in node.values():
            yield from _walk_docker(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_docker(v)


def _run_refs(node: object) -> Iterable[str]:
    if isinstance(node, dict):
        run = node.get("run")
        if isinstance(run, str):
            yield run
        for v in node.values():
            yield from _run_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _run_refs(v)


def _load_yaml(path: Path) -> object:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(path.read_text())


def cwl_images(paths: Iterable[Path], follow_runs: bool = True) -> dict[str, list[Path]]:
    """Map each image named by a DockerRequirement to the CWL files naming it.

    With ``follow_runs`` the tools a workflow's steps ``run:`` are read too, so passing the top
    workflow gives every image a run needs.
    """
    found: dict[str, list[Path]] = {}
    seen: set[Path] = set()
    todo = [Path(p).resolve() for p in paths]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        doc = _load_yaml(path)
        for image in _walk_docker(doc):
            found.setdefault(image, []).append(path)
        if follow_runs:
            for ref in _run_refs(doc):
                ref = ref.split("#", 1)[0]
                if ref and "://" not in ref:
                    todo.append((path.parent / ref).resolve())
    return found


def podman_command() -> str | None:
    return shutil.which("podman")


def podman_usable() -> tuple[bool, str]:
    """Whether podman can be used here, and if not, why (for tests' skip reasons)."""
    podman = podman_command()
    if not podman:
        return False, "podman is not installed (scripts/install-system)"
    try:
        r = subprocess.run(
            [podman, "info", "--format", "{{.Host.OCIRuntime.Name}}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"podman info failed: {exc}"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"podman info failed: {last}"
    return True, f"podman with runtime {r.stdout.strip()}"


def image_exists(ref: str) -> bool:
    """True if ``ref`` is in local storage (never contacts a registry)."""
    podman = podman_command()
    if not podman:
        return False
    r = subprocess.run([podman, "image", "exists", ref], capture_output=True, timeout=60)
    return r.returncode == 0


def missing_images(refs: Iterable[str]) -> list[str]:
    """The refs not in local storage. One podman call when all are there (the usual case, on
    every run's critical path: ~0.1 s per call); one per ref only to name what is missing."""
    wanted = sorted(set(refs))
    podman = podman_command()
    if wanted and podman:
        r = subprocess.run([podman, "image", "inspect", "--format", "{{.Id}}", *wanted],
                           capture_output=True, timeout=60)
        if r.returncode == 0:
            return []
    return [ref for ref in wanted if not image_exists(ref)]


def check_images(cwl_files: Iterable[Path]) -> list[str]:
    """Raise MissingImageError (one line) unless every image the CWL files need exists locally.

    Returns the images checked.
    """
    used = cwl_images(cwl_files)
    if used and not podman_command():
        raise MissingImageError(
            "podman is not installed: run scripts/install-system (or use --no-container)"
        )
    missing = missing_images(used)
    if missing:
        where = ", ".join(sorted({p.name for ref in missing for p in used[ref]}))
        raise MissingImageError(
            f"missing container image{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(needed by {where}): run `make images`"
        )
    return sorted(used)


def missing_images_error(*cwl_files: Path) -> str | None:
    """The one-line problem if an image the CWL files need is missing, else None."""
    try:
        check_images(cwl_files)
    except MissingImageError as exc:
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m stellarflow.images",
        description="List the images CWL files need, or check that they are built.",
    )
    ap.add_argument("action", choices=["list", "check", "built"])
    ap.add_argument("cwl", nargs="*", type=Path, help="CWL files (workflows: their tools too)")
    args = ap.parse_args(argv)
    if args.action == "built":
        print("\n".join(built_images()))
        return 0
    if args.action == "list":
        for ref, files in sorted(cwl_images(args.cwl).items()):
            print(ref, " ".join(str(f) for f in files))
        return 0
    try:
        checked = check_images(args.cwl)
    except MissingImageError as exc:
        print(f"stellarflow: {exc}", file=sys.stderr)
        return 2
    print(f"all {len(checked)} images present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
