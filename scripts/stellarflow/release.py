"""A release another data centre can run: `make release` and `make import-release DIR=...`.

``build`` writes one folder (default ``build/release``):

- ``workflows/sas.cwl`` and the Dummy Pipeline's features (``workflows/dummy_pipeline/...``):
  ``cwltool --pack`` of the repository's CWL (shared record types included), each validated
  with ``cwltool --validate``, every stellarflow image pinned by id (a ``dockerImageId`` next to
  each ``dockerPull``, in the packed files only: ``cwl/`` is never edited);
- ``images/stellarflow-images.tar`` and ``images/images.digests`` (scripts/build-images
  --export: one archive, each image's id and content hash, the archive's SHA-256);
- ``tests/sas.job.yml`` and its light curves: a three-star job for the packed SAS workflow;
- ``ro-crate-metadata.json``: a Workflow RO-Crate (1.0) of the SAS workflow, WorkflowHub-ready;
- ``release.json`` (version, git revision, images, workflows) and ``SHA256SUMS`` (every file).

``import DIR`` (on a clean checkout) checks every checksum of SHA256SUMS, loads the image
archive (build-images --import checks its SHA-256 and every image id), checks that every pinned
id of the packed workflows is an image it loaded, and records the release in
``build/release-imported.json``; ``stellarflow validate-site --release DIR`` then runs the
Dummy Pipeline from the released files.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError, RunError
from .paths import repo_root
from .provenance import CRATE_VERSION, WFRUN_CONTEXT, git_revision, pack, sha256_file

SUMS = "SHA256SUMS"
ARCHIVE = "stellarflow-images.tar"
DIGESTS = "images.digests"
IMPORTED = "release-imported.json"  # in the checkout's build/
EXAMPLE_JOB = "cwl/workflows/sas.job.yml"  # the .dockstore.yml test parameter file


def dummy_workflows() -> list[Path]:
    """The Dummy Pipeline's feature workflows and the Euclid example, repository-relative."""
    from stellarflow_dummy.validate import FEATURES

    return sorted({Path("dummy_pipeline") / cwl for cwl, _ in FEATURES.values() if cwl})


def read_digests(path: Path) -> dict[str, str]:
    """ref -> image id (sha256:...) of an images.digests list (scripts/build-images)."""
    ids = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#") and parts[0] != "archive" and len(parts) >= 2:
            ids[parts[0]] = parts[1] if parts[1].startswith("sha256:") else f"sha256:{parts[1]}"
    return ids


def pin(doc: Any, ids: dict[str, str]) -> int:
    """Add ``dockerImageId`` next to every stellarflow ``dockerPull`` of a (packed) document;
    returns how many. RunError for an image the list does not hold."""
    count = 0
    if isinstance(doc, dict):
        reqs = [doc] if doc.get("class") == "DockerRequirement" else []
        for key in ("requirements", "hints"):  # the map form: {DockerRequirement: {...}}
            value = doc.get(key)
            if isinstance(value, dict) and isinstance(value.get("DockerRequirement"), dict):
                reqs.append(value["DockerRequirement"])
        for req in reqs:
            count += _pin_one(req, ids)
        count += sum(pin(v, ids) for v in doc.values() if isinstance(v, (dict, list)))
    elif isinstance(doc, list):
        count += sum(pin(v, ids) for v in doc)
    return count


def _pin_one(req: dict, ids: dict[str, str]) -> int:
    from .images import PREFIX

    ref = req.get("dockerPull")
    if not (isinstance(ref, str) and ref.startswith(PREFIX)):
        return 0
    if ref not in ids:
        raise RunError(f"no image id for {ref} in the digest list")
    req["dockerImageId"] = ids[ref]
    return 1


def pinned_ids(doc: Any) -> list[tuple[str, str]]:
    """(dockerPull, dockerImageId) of every pinned DockerRequirement of a document."""
    found = []
    if isinstance(doc, dict):
        if isinstance(doc.get("dockerImageId"), str):
            found.append((doc.get("dockerPull", ""), doc["dockerImageId"]))
        for v in doc.values():
            found += pinned_ids(v)
    elif isinstance(doc, list):
        for v in doc:
            found += pinned_ids(v)
    return found


def cwltool_validate(path: Path) -> None:
    """``cwltool --validate`` (RunError naming the file and cwltool's reason)."""
    from .provenance import cwltool

    cwltool("--validate", str(path))


def local_ids() -> dict[str, str]:
    """ref -> id of every module image in local storage (a release without the archive)."""
    from .images import built_images, podman_command

    podman = podman_command()
    if not podman:
        raise RunError("podman is not installed: run scripts/install-system")
    ids = {}
    for ref in built_images():
        r = subprocess.run([podman, "image", "inspect", "--format", "{{.Id}}", ref],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RunError(f"missing container image {ref}: run `make images`")
        ids[ref] = f"sha256:{r.stdout.strip()}"
    return ids


def build(out: Path, *, images: bool = True) -> Path:
    root = repo_root()
    final = Path(out).resolve()
    if final.exists() and any(final.iterdir()) and not (final / "release.json").exists():
        raise InputError(final, "exists and is not a stellarflow release: choose another folder")
    out = final.with_name(final.name + ".partial")  # renamed into place once complete
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    if images:
        p = subprocess.run([str(root / "scripts" / "build-images"), "--export",
                            str(out / "images")], capture_output=True, text=True)
        if p.returncode != 0:
            raise RunError(f"build-images --export failed: {(p.stderr or p.stdout).strip()}")
        ids = read_digests(out / "images" / DIGESTS)
    else:
        ids = local_ids()
        lines = ["# stellarflow images: <reference> <image id>; no archive in this release "
                 "(built with --no-images): the importing site builds or has these images"]
        lines += [f"{ref} {iid}" for ref, iid in sorted(ids.items())]
        (out / "images" / DIGESTS).write_text("\n".join(lines) + "\n")
    workflows = {Path("cwl/workflows/sas.cwl"): Path("workflows/sas.cwl")}
    workflows.update({p: Path("workflows") / p for p in dummy_workflows()})
    listing = []
    for src, dest in workflows.items():
        doc = json.loads(pack(root / src))
        n = pin(doc, ids)
        target = out / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(doc, indent=1) + "\n")
        cwltool_validate(target)
        listing.append({"path": str(dest), "from": str(src), "sha256": sha256_file(target),
                        "pinned_images": n})
    example(root, out)
    revision = git_revision(root)
    info = {"name": "stellarflow", "version": __version__, "git_revision": revision,
            "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "images": ids, "image_archive": (f"images/{ARCHIVE}" if images else None),
            "workflows": listing}
    (out / "release.json").write_text(json.dumps(info, indent=1) + "\n")
    (out / "README.md").write_text(readme(info))
    workflow_crate(out, info)
    write_sums(out)
    if final.exists():
        shutil.rmtree(final)
    out.rename(final)
    return final


def example(root: Path, out: Path) -> None:
    """tests/sas.job.yml: the repository's example job (cwl/workflows/sas.job.yml, the
    .dockstore.yml test parameter file) with its light curves copied beside it."""
    from ruamel.yaml import YAML

    src = root / EXAMPLE_JOB
    yaml = YAML()
    job = yaml.load(src.read_text())
    data = out / "tests" / "data"
    data.mkdir(parents=True)
    for star in job["stars"]:
        lc = star.get("lightcurve")
        if lc:
            path = (src.parent / lc["location"]).resolve()
            shutil.copyfile(path, data / path.name)
            lc["location"] = f"data/{path.name}"
    with open(out / "tests" / "sas.job.yml", "w") as fh:
        fh.write("# The example job of cwl/workflows/sas.job.yml, its light curves in data/:\n"
                 "#   cwltool --podman ../workflows/sas.cwl sas.job.yml\n")
        yaml.dump(job, fh)


def readme(info: dict) -> str:
    return f"""# stellarflow {info['version']} release ({info['git_revision']})

Packed CWL workflows with their container images pinned by id, the images, and checksums.

- `workflows/sas.cwl`: the SAS workflow (`cwltool --pack`); `workflows/dummy_pipeline/`: the
  Dummy Pipeline's features (`stellarflow validate-site --release DIR`);
- `images/{ARCHIVE}` + `images/{DIGESTS}`: every module image (podman save) with its id;
- `tests/sas.job.yml`: a three-star job for `workflows/sas.cwl`;
- `ro-crate-metadata.json`: Workflow RO-Crate of the SAS workflow (WorkflowHub);
- `{SUMS}`: the SHA-256 of every file (`sha256sum -c {SUMS}`).

Import into a checkout of the same revision: `make import-release DIR=<this folder>`, then
`make validate-site RELEASE=<this folder>`. Or run it with any CWL runner:
`cwltool --podman workflows/sas.cwl tests/sas.job.yml`.
"""


def workflow_crate(out: Path, info: dict) -> None:
    """ro-crate-metadata.json: a Workflow RO-Crate 1.0 (RO-Crate 1.1) of the SAS workflow."""
    import warnings

    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    crate = ROCrate(version=CRATE_VERSION)
    crate.metadata.extra_contexts.append(WFRUN_CONTEXT)  # defines sha256
    crate.name = f"stellarflow SAS workflow {info['version']}"
    crate.description = ("PLATO-like Stellar Analysis System as CWL: ingest, MSAP1/3/4/5, "
                         "transit search, products and catalogue, each step in its own container "
                         "image, pinned by id; packed with cwltool --pack.")
    crate.license = "Apache-2.0"
    org = crate.add(ContextEntity(crate, "#stellarflow-developers", properties={
        "@type": "Organization", "name": "stellarflow developers"}))
    crate.creator = org
    crate.publisher = org
    crate.add(ContextEntity(crate, "https://spdx.org/licenses/Apache-2.0", properties={
        "@type": "CreativeWork", "name": "Apache License 2.0"}))
    crate.root_dataset["license"] = {"@id": "https://spdx.org/licenses/Apache-2.0"}
    crate.root_dataset["version"] = info["version"]
    wf = crate.add_workflow(out / "workflows" / "sas.cwl", dest_path="workflows/sas.cwl",
                            main=True, lang="cwl", lang_version="v1.2")
    wf["name"] = "sas"
    wf["version"] = info["git_revision"]
    wf["sha256"] = sha256_file(out / "workflows" / "sas.cwl")
    wf["creator"] = org
    wf["license"] = {"@id": "https://spdx.org/licenses/Apache-2.0"}
    wf["description"] = "packed, images pinned by id (dockerImageId)"
    readme_file = crate.add_file(out / "README.md", dest_path="README.md", properties={
        "encodingFormat": "text/markdown", "about": {"@id": "./"}})
    del readme_file
    for rel in sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()):
        if rel in ("README.md", "workflows/sas.cwl", SUMS, "ro-crate-metadata.json"):
            continue
        props = {"sha256": sha256_file(out / rel)}
        if rel.endswith(".cwl"):
            props["encodingFormat"] = "application/json"
            props["programmingLanguage"] = {"@id": wf.lang.id}
        crate.add_file(out / rel, dest_path=rel, properties=props)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crate.metadata.write(out)


def write_sums(out: Path) -> None:
    lines = [f"{sha256_file(p)}  {p.relative_to(out).as_posix()}"
             for p in sorted(out.rglob("*")) if p.is_file() and p.name != SUMS]
    (out / SUMS).write_text("\n".join(lines) + "\n")


def check_sums(release: Path) -> int:
    sums = release / SUMS
    if not sums.is_file():
        raise InputError(release, f"no {SUMS}: not a stellarflow release (make release)")
    n = 0
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        path = release / rel
        if not path.is_file():
            raise RunError(f"{path}: missing (listed in {SUMS})")
        if sha256_file(path) != digest:
            raise RunError(f"{path}: SHA-256 differs from {SUMS} (damaged or changed copy)")
        n += 1
    return n


def import_release(release: Path) -> dict:
    root = repo_root()
    release = Path(release).resolve()
    n = check_sums(release)
    info = json.loads((release / "release.json").read_text())
    images_dir = release / "images"
    if (images_dir / ARCHIVE).exists():
        p = subprocess.run([str(root / "scripts" / "build-images"), "--import", str(images_dir)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RunError(f"build-images --import failed: {(p.stderr or p.stdout).strip()}")
    ids = read_digests(images_dir / DIGESTS)
    have = local_ids_for(ids)
    wrong = [ref for ref, iid in ids.items() if have.get(ref) != iid]
    if wrong:
        raise RunError(f"image id differs from {DIGESTS} for {', '.join(wrong)} (this release "
                       "ships no archive: build the images of its revision, or use a release "
                       "made with them)")
    pins = 0
    for wf in info["workflows"]:
        doc = json.loads((release / wf["path"]).read_text())
        for ref, iid in pinned_ids(doc):
            if ids.get(ref) != iid:
                raise RunError(f"{wf['path']}: {ref} pinned to {iid}, the digest list says "
                               f"{ids.get(ref)}")
            pins += 1
    record = {"release": str(release), "version": info["version"],
              "git_revision": info["git_revision"], "checksums": n, "images": len(ids),
              "pins": pins,
              "imported_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    (root / "build").mkdir(exist_ok=True)
    (root / "build" / IMPORTED).write_text(json.dumps(record, indent=1) + "\n")
    return record


def local_ids_for(ids: dict[str, str]) -> dict[str, str]:
    from .images import podman_command

    podman = podman_command()
    found = {}
    for ref in ids:
        r = subprocess.run([podman or "podman", "image", "inspect", "--format", "{{.Id}}", ref],
                           capture_output=True, text=True)
        if r.returncode == 0:
            found[ref] = f"sha256:{r.stdout.strip()}"
    return found


def main(argv: list[str] | None = None) -> int:
    from .cli import _guard

    p = argparse.ArgumentParser(prog="python -m stellarflow.release",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="write the release folder")
    b.add_argument("--out", type=Path, default=None, help="default build/release")
    b.add_argument("--no-images", action="store_true",
                   help="no image archive: pin to the local images' ids (tests)")
    i = sub.add_parser("import", help="check a release and load its images")
    i.add_argument("release", type=Path)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)

    def go() -> int:
        if args.action == "build":
            out = build(args.out or repo_root() / "build" / "release", images=not args.no_images)
            total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            print(f"release: {out} ({total / 2**20:.1f} MiB); check it with `sha256sum -c "
                  f"{SUMS}` there, import it with `make import-release DIR={out}`")
            return 0
        rec = import_release(args.release)
        print(f"import-release: {rec['checksums']} checksums match, {rec['images']} images "
              f"with the released ids, {rec['pins']} pinned steps agree; next: "
              f"make validate-site RELEASE={rec['release']}")
        return 0

    return _guard(go, args.debug)


if __name__ == "__main__":
    sys.exit(main())
