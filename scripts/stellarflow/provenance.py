"""Run provenance: a Provenance Run RO-Crate (0.5) for every run, built with ro-crate-py.

``record_run`` is called by ``stellarflow.run.run_job`` once the outputs are in
``OUTDIR/<observation_id>/`` (so `stellarflow run`, the trigger and the WES server all get one).
It writes, in that folder:

- ``ro-crate-metadata.json``: the workflow as run (packed, with its SHA-256), the engine and its
  version, the site profile, the git revision; the workflow run, each sub-workflow (chunk) run
  and each tool run as CreateActions (tool, container image with its id and content hash,
  module version, start, end, exit status, resource usage, input and output files), each step
  execution as a ControlAction, the engine run as an OrganizeAction; every input and output
  File with its SHA-256;
- ``provenance/``: the packed workflow, the CWL job (the run's parameters), the manifest when
  known, the site profile, the runner's overrides (``--fake``) and ``profile.jsonl``, one JSON
  line per step (stellarflow.profiling).

Each step's measurements come from the step profile its module wrote in its container
(stellarflow_contracts.profile), which the CWL returns as the tool's ``profile`` output; the run
moves them out of the product folder into ``RUN_DIR/steps/``. ``STELLARFLOW_PROVENANCE=0``
turns all of this off (the step profiles are still written: they cost a few system calls).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunError
from .paths import repo_root

ENV_SWITCH = "STELLARFLOW_PROVENANCE"
METADATA = "ro-crate-metadata.json"
PROV_DIR = "provenance"
PACKED_NAME = "workflow.cwl"  # provenance/workflow.cwl: the packed workflow as run
PROFILE_SUFFIX = ".profile.json"
STEPS_DIR = "steps"  # RUN_DIR/steps/: the step profiles of the run

CRATE_VERSION = "1.1"
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/ro/wfrun/provenance/0.5": "Provenance Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}
# propertyID namespace of the resource-usage PropertyValues (docs/provenance.md lists them).
TERMS = "https://w3id.org/stellarflow/profile#"
UNITS = {"s": "https://qudt.org/vocab/unit/SEC", "B": "https://qudt.org/vocab/unit/BYTE",
         "%": "https://qudt.org/vocab/unit/PERCENT"}
FORMATS = {".h5": "application/x-hdf5", ".png": "image/png", ".html": "text/html",
           ".ecsv": "text/x-ecsv", ".json": "application/json", ".jsonl": "application/jsonl",
           ".yaml": "application/yaml", ".yml": "application/yaml", ".fits": "application/fits",
           ".txt": "text/plain", ".cwl": "application/json"}


def enabled() -> bool:
    """False when STELLARFLOW_PROVENANCE is 0/false/no/off (to measure what provenance costs)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# SHA-256 of files already read, by (device, inode, size, mtime): an output keeps its digest when
# the run moves it into place, and digests computed while the runner works are not redone.
_DIGESTS: dict[tuple[int, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    _DIGESTS[key] = digest = h.hexdigest()
    return digest


def digest_files(paths: Iterable[Path], threads: int | None = None) -> None:
    """Compute the SHA-256 of ``paths`` on ``threads`` threads (default: this process's CPUs;
    hashlib works outside the GIL), for the crate to find them done; unreadable files are left
    for the crate to report."""
    from concurrent.futures import ThreadPoolExecutor

    def one(path: Path) -> None:
        try:
            sha256_file(path)
        except OSError:
            pass

    n = threads or max(len(os.sched_getaffinity(0)), 1)
    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, paths))


def start_digesting_inputs(job: dict) -> threading.Thread | None:
    """While the runner starts (one core busy), digest the job's light curves and load the
    crate library in a background thread: the crate, written when the run ends, then finds
    them done. None when provenance is off."""
    if not enabled():
        return None
    paths = []
    for star in job.get("stars") or []:
        lcs = star.get("lightcurve")
        for lc in lcs if isinstance(lcs, list) else [lcs]:
            path = _local_path(lc) if isinstance(lc, dict) else None
            if path is not None:
                paths.append(path)

    def work() -> None:
        import rocrate.rocrate  # noqa: F401 (its import is a noticeable part of writing a crate)

        digest_files(paths, threads=1)

    thread = threading.Thread(target=work, name="stellarflow-digest-inputs", daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------------------ the workflow as run

def cwl_sources(cwl: Path) -> list[Path]:
    """Every CWL/YAML file a workflow may load (its folder tree's cwl/ files)."""
    root = cwl.resolve().parents[1]  # cwl/workflows/x.cwl -> cwl/
    return sorted(p for p in root.rglob("*") if p.suffix in (".cwl", ".yml", ".yaml")
                  and p.is_file() and not p.name.endswith((".job.yml", ".cwltest.yml")))


def cwltool(*args: str) -> str:
    """Run cwltool in this process (``--enable-ext``: the Dummy Pipeline's GPU step uses
    cwltool's CUDARequirement); its stdout, or RunError with the last line it logged."""
    import io

    from cwltool.main import main as cwltool_main

    out, err = io.StringIO(), io.StringIO()
    cwl_log = logging.getLogger("cwltool")
    propagate, cwl_log.propagate = cwl_log.propagate, False  # its INFO lines stay in `err`
    try:
        rc = cwltool_main(["--quiet", "--enable-ext", *args], stdout=out, stderr=err,
                          logger_handler=logging.StreamHandler(err))
    finally:
        cwl_log.propagate = propagate
    if rc != 0:
        lines = [" ".join(ln.split()) for ln in err.getvalue().splitlines() if ln.strip()]
        raise RunError(f"cwltool {' '.join(args)} failed: {lines[-1] if lines else rc}")
    return out.getvalue()


def pack(cwl: Path) -> str:
    """``cwltool --pack`` of a workflow (JSON text). Raises RunError with cwltool's reason."""
    return cwltool("--pack", str(cwl))


def packed_workflow(cwl: Path) -> str:
    """The packed workflow, cached by the content of every CWL file it may load (packing loads
    cwltool and schema-salad: ~2 s, once per change of the CWL)."""
    cwl = Path(cwl).resolve()
    h = hashlib.sha256(str(cwl).encode())
    for p in cwl_sources(cwl):
        h.update(str(p).encode() + b"\0" + p.read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stellarflow"
    path = cache / "packed" / f"{cwl.stem}-{h.hexdigest()[:20]}.cwl"
    if path.exists():
        return path.read_text()
    text = pack(cwl)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        pass  # no cache: pack again next time
    return text


def git_revision(root: Path) -> str:
    """``<commit>`` of the checkout, ``<commit>-dirty`` with uncommitted changes, or 'unknown'."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=20)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=20)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def engine_version(runner: str) -> tuple[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    name = {"toil": "toil", "cwltool": "cwltool"}.get(runner, runner)
    try:
        return ("toil-cwl-runner" if runner == "toil" else name), version(name)
    except PackageNotFoundError:
        return name, "unknown"


def image_ids(refs: list[str]) -> dict[str, tuple[str, str]]:
    """ref -> (image id, content-hash label) from local podman storage ({} without podman).
    One podman call for all (~0.15 s each); a missing image is only left out."""
    from .images import HASH_LABEL, podman_command

    podman = podman_command()
    wanted = sorted({r for r in refs if r and not r.startswith("none")})
    if not podman or not wanted:
        return {}
    r = subprocess.run([podman, "image", "inspect", "--format",
                        "{{.Id}} {{index .Labels \"" + HASH_LABEL + "\"}} "
                        "{{range .RepoTags}}{{.}},{{end}}", *wanted],
                       capture_output=True, text=True, timeout=60)
    found = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            for tag in parts[2].split(","):
                if tag in wanted:
                    found[tag] = (parts[0], "" if parts[1] == "<no value>" else parts[1])
    return found


# ------------------------------------------------------------------ the packed workflow's shape

@dataclass
class Step:
    id: str            # packed id, e.g. "#sas_chunk.cwl/sas_chunk/msap4"
    name: str          # "msap4"
    run: str           # packed id of what it runs, e.g. "#msap4_rotation.cwl"
    position: int
    workflow: str      # packed id of the workflow it belongs to
    scattered: bool = False


@dataclass
class Process:
    id: str
    cls: str
    name: str
    doc: dict
    steps: list[Step] = field(default_factory=list)


def index(packed: dict) -> dict[str, Process]:
    """Packed id -> process (workflows with their steps, tools)."""
    graph = packed.get("$graph") or [packed]
    procs = {}
    for doc in graph:
        pid = doc["id"]
        name = pid.lstrip("#").removesuffix(".cwl") if pid != "#main" else "main"
        p = Process(pid, doc.get("class", ""), name, doc)
        for i, s in enumerate(doc.get("steps") or []):
            p.steps.append(Step(s["id"], s["id"].rsplit("/", 1)[-1], s["run"], i, pid,
                                bool(s.get("scatter"))))
        procs[pid] = p
    return procs


def tool_of(procs: dict[str, Process], tool: str) -> Process | None:
    return procs.get(f"#{tool}.cwl")


def step_running(procs: dict[str, Process], run: str) -> Step | None:
    for p in procs.values():
        for s in p.steps:
            if s.run == run:
                return s
    return None


def requested(doc: dict) -> dict[str, float | None]:
    """What a tool asks for (ResourceRequirement, ToolTimeLimit; hints or requirements):
    cores, RAM/tmpdir/outdir in bytes, time limit in s. Expressions: None."""
    out: dict[str, float | None] = {"cores": None, "ram_bytes": None, "tmpdir_bytes": None,
                                    "outdir_bytes": None, "time_limit_s": None}
    for entry in list(doc.get("hints") or []) + list(doc.get("requirements") or []):
        cls = entry.get("class")
        if cls == "ResourceRequirement":
            for key, name, scale in (("coresMin", "cores", 1), ("ramMin", "ram_bytes", 2**20),
                                     ("tmpdirMin", "tmpdir_bytes", 2**20),
                                     ("outdirMin", "outdir_bytes", 2**20)):
                v = entry.get(key)
                if isinstance(v, (int, float)):
                    out[name] = v * scale
        elif cls == "ToolTimeLimit" and isinstance(entry.get("timelimit"), (int, float)):
            out["time_limit_s"] = entry["timelimit"] or None
    return out


def cwl_type(t: Any) -> str:
    """additionalType of a FormalParameter for a CWL type."""
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if isinstance(t, dict):
        return {"array": "Collection", "record": "Collection", "enum": "Text"}.get(
            t.get("type"), "DataType")
    t = str(t).rstrip("?")
    if t.endswith("[]"):
        return "Collection"
    return {"File": "File", "Directory": "Dataset", "string": "Text", "int": "Integer",
            "long": "Integer", "float": "Float", "double": "Float", "boolean": "Boolean"
            }.get(t, "Collection" if "#" in t else "DataType")


# ------------------------------------------------------------------ step records

def collect_step_profiles(staging: Path, run_dir: Path) -> list[Path]:
    """Move the step profiles the workflow returned out of the outputs into RUN_DIR/steps/."""
    dest = run_dir / STEPS_DIR
    found = sorted(staging.glob(f"*{PROFILE_SUFFIX}"))
    if found:
        dest.mkdir(exist_ok=True)
    moved = []
    for p in found:
        target = dest / p.name
        os.replace(p, target)
        moved.append(target)
    return moved


def load_steps(run_dir: Path) -> list[dict]:
    """The step profiles of a run, in start order, each with ``file`` (its name)."""
    steps = []
    for p in sorted((Path(run_dir) / STEPS_DIR).glob(f"*{PROFILE_SUFFIX}")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        rec["file"] = p.name
        # A file the step was given that CWL staged into its output folder (InitialWorkDir:
        # ingest's chunk.json) is an input, not something the step made.
        given = {i.get("name") for i in rec.get("inputs") or []}
        rec["outputs"] = [o for o in rec.get("outputs") or [] if o.get("name") not in given]
        steps.append(rec)
    return sorted(steps, key=lambda r: (r.get("start_utc", ""), r["file"]))


def step_tool(rec: dict) -> str:
    """The CWL tool a step record belongs to (a fake runs the tool it stands in for)."""
    return rec.get("fake_of") or rec.get("module", "")


def step_chunk(rec: dict) -> str | None:
    name = rec.get("file", "")
    head = name.split(".", 1)[0]
    return head if head.startswith("chunk-") else None


# ------------------------------------------------------------------ the crate

@dataclass
class RunInfo:
    """What run_job knows about a run (everything the crate says besides the files)."""

    observation_id: str
    workflow: str
    cwl: Path
    runner: str
    site: str
    container: bool
    run_dir: Path
    outdir: Path          # OUTDIR/<observation_id>: the crate's root
    started: str
    ended: str
    job: dict
    returncode: int = 0
    manifest: Path | None = None
    fakes: list[str] = field(default_factory=list)
    error: str | None = None


class CrateBuilder:
    """Builds the crate of one run with ro-crate-py (entities, links); see the module doc."""

    def __init__(self, info: RunInfo, packed_text: str, steps: list[dict],
                 sacct_rows: list[dict] | None = None) -> None:
        from rocrate.rocrate import ROCrate

        self.info = info
        self.packed = json.loads(packed_text)
        self.packed_text = packed_text
        self.procs = index(self.packed)
        self.steps = steps
        self.sacct_rows = sacct_rows or []
        # A member of a merged trigger run: its files and stars were renamed by the split.
        self.rename_files: dict[str, str] = {}
        self.star_alias: dict[str, str] = {}
        self.lines: list[dict] = []         # profile lines, one per tool run
        # RO-Crate 1.1: the version the Workflow Run Crate profiles (0.5) are written against.
        self.crate = ROCrate(version=CRATE_VERSION)
        self.crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
        self.run_uuid = str(uuid.uuid4())
        self.wf_path = f"{PROV_DIR}/{PACKED_NAME}"
        self.files: dict[str, Any] = {}     # crate id -> File entity
        self.hashes: dict[str, str] = {}    # crate id -> sha256

    # -- small helpers
    def entity(self, ident: str, props: dict) -> Any:
        from rocrate.model.contextentity import ContextEntity

        existing = self.crate.get(ident)
        if existing is not None:
            return existing
        return self.crate.add(ContextEntity(self.crate, ident, properties=props))

    def pid(self, packed_id: str) -> str:
        """Crate id of something in the packed workflow."""
        return f"{self.wf_path}{packed_id}" if packed_id != "#main" else self.wf_path

    def add_file(self, path: Path, crate_id: str, props: dict | None = None,
                 digest: bool = True) -> Any:
        """A File data entity for a file in the crate (crate_id relative) or outside it
        (``file://`` URI), with size, format and SHA-256."""
        if crate_id in self.files:
            return self.files[crate_id]
        st = path.stat()
        p = {"name": path.name, "contentSize": str(st.st_size),
             "encodingFormat": FORMATS.get(path.suffix, "application/octet-stream")}
        if digest:
            p["sha256"] = sha256_file(path)
            self.hashes[crate_id] = p["sha256"]
        p.update(props or {})
        if crate_id.startswith("file://"):
            ent = self.entity(crate_id, {"@type": "File", **p})
            self.crate.root_dataset.append_to("hasPart", ent)
        else:
            ent = self.crate.add_file(path, dest_path=crate_id, properties=p)
        self.files[crate_id] = ent
        return ent

    def intermediate(self, name: str, size: int | None, run_tag: str) -> Any:
        """A file that lived only in the runner's work space (a chunk file between steps)."""
        ident = f"#{run_tag}/{name}"
        props = {"@type": "File", "name": name,
                 "description": "intermediate file (in the runner's job store, not kept)"}
        if size is not None:
            props["contentSize"] = str(size)
        return self.entity(ident, props)

    def formal_params(self, proc: Process) -> None:
        ent = self.crate.get(self.pid(proc.id))
        for kind in ("inputs", "outputs"):
            for port in proc.doc.get(kind) or []:
                fid = self.pid(port["id"])
                props = {"@type": "FormalParameter", "name": port["id"].rsplit("/", 1)[-1],
                         "additionalType": cwl_type(port.get("type")),
                         "conformsTo": {"@id": "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"}}
                if port.get("format"):
                    props["encodingFormat"] = port["format"]
                if port.get("doc"):
                    props["description"] = " ".join(str(port["doc"]).split())
                if kind == "inputs":
                    props["valueRequired"] = not _optional(port.get("type")) and \
                        "default" not in port
                self.entity(fid, props)
                ent.append_to("input" if kind == "inputs" else "output", self.crate.get(fid))

    # -- the prospective part: workflow, sub-workflows, tools, steps
    def add_workflow(self) -> None:
        from rocrate.model.computerlanguage import get_lang

        info = self.info
        prov = info.outdir / PROV_DIR
        prov.mkdir(exist_ok=True)
        wf_file = prov / PACKED_NAME
        wf_file.write_text(self.packed_text)
        lang = get_lang(self.crate, "cwl", version="v1.2")
        self.crate.add(lang)
        main = self.procs["#main"]
        revision = git_revision(repo_root())
        props = {"@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
                 "name": f"{info.workflow} ({main.doc.get('label', info.workflow)})",
                 "description": f"cwltool --pack of {info.cwl.relative_to(repo_root())} at "
                                f"revision {revision}",
                 "programmingLanguage": {"@id": lang.id},
                 "version": revision,
                 "codeRepository": str(repo_root()),
                 "isBasedOn": {"@id": f"file://{info.cwl}"}}
        wf = self.add_file(wf_file, self.wf_path, props)
        self.crate.mainEntity = wf
        src = self.entity(f"file://{info.cwl}", {"@type": ["File", "SoftwareSourceCode"],
                                                 "name": info.cwl.name,
                                                 "description": f"the repository's workflow, "
                                                                f"git revision {revision}"})
        self.crate.root_dataset.append_to("hasPart", src)
        for pid, proc in self.procs.items():
            if pid == "#main":
                continue
            types = (["SoftwareSourceCode", "ComputationalWorkflow", "HowTo"]
                     if proc.cls == "Workflow" else ["SoftwareApplication"])
            props = {"@type": types, "name": proc.name}
            if proc.doc.get("label"):
                props["description"] = proc.doc["label"]
            version = proc.doc.get("s:softwareVersion") or proc.doc.get(
                "https://schema.org/softwareVersion")
            if version:
                props["softwareVersion"] = str(version)
            if proc.cls == "Workflow":
                props["programmingLanguage"] = {"@id": lang.id}
            self.entity(self.pid(pid), props)
        for pid, proc in self.procs.items():
            owner = self.crate.get(self.pid(pid))
            self.formal_params(proc)
            for s in proc.steps:
                step = self.entity(self.pid(s.id), {
                    "@type": "HowToStep", "name": s.name, "position": str(s.position),
                    "workExample": {"@id": self.pid(s.run)}})
                owner.append_to("step", step)
                owner.append_to("hasPart", self.crate.get(self.pid(s.run)))

    # -- the retrospective part
    def add_run(self) -> None:
        info = self.info
        tag = self.run_uuid
        wf = self.crate.get(self.wf_path)
        objects, stars_lc = self.inputs()
        results = self.outputs()
        status = "http://schema.org/CompletedActionStatus" if info.returncode == 0 else \
            "http://schema.org/FailedActionStatus"
        run = self.entity(f"#{tag}", {
            "@type": "CreateAction", "name": f"Run of {info.workflow} on {info.observation_id}",
            "instrument": {"@id": wf.id}, "startTime": info.started, "endTime": info.ended,
            "actionStatus": {"@id": status}})
        if info.error:
            run["error"] = info.error
        # The engine's configuration (site profile, overrides, command line) is an input of
        # the run here: the validator's shape allows only ControlActions as the
        # OrganizeAction's object, where the profile text would also put them.
        config = self.config_files()
        run["object"] = objects + config
        run["result"] = results
        self.crate.root_dataset.append_to("mentions", run)
        controls = self.step_actions(stars_lc, tag)
        name, version = engine_version(info.runner)
        engine = self.entity(f"#engine-{name}", {
            "@type": "SoftwareApplication", "name": f"{name} {version}",
            "softwareVersion": version})
        if info.runner == "toil":
            _, cwltool_v = engine_version("cwltool")
            engine["softwareRequirements"] = self.entity(
                "#engine-cwltool", {"@type": "SoftwareApplication",
                                    "name": f"cwltool {cwltool_v}", "softwareVersion": cwltool_v})
        org = self.entity(f"#{tag}-engine", {
            "@type": "OrganizeAction", "name": f"Run of {name} {version} ({info.site})",
            "instrument": {"@id": engine.id}, "result": {"@id": run.id},
            "startTime": info.started, "endTime": info.ended, "actionStatus": {"@id": status}})
        org["object"] = controls

    def inputs(self) -> tuple[list, dict[str, list]]:
        """The run's object: every light curve File (sha256), the parameters, the job file and
        the manifest; returns them and star_id -> its light-curve entities."""
        info = self.info
        main_in = {p["id"].rsplit("/", 1)[-1]: self.pid(p["id"])
                   for p in self.procs["#main"].doc.get("inputs") or []}
        objects: list[Any] = []
        by_star: dict[str, list] = {}
        for star in info.job.get("stars") or []:
            lcs = star.get("lightcurve")  # one File, or several (stitched by ingest)
            for lc in lcs if isinstance(lcs, list) else [lcs]:
                path = _local_path(lc) if isinstance(lc, dict) else None
                if path is None or not path.exists():
                    continue
                ent = self.add_file(path, path.resolve().as_uri(), {
                    "description": f"light curve of {star.get('star_id')}",
                    "identifier": str(star.get("star_id")),
                    "exampleOfWork": {"@id": main_in.get("stars", self.wf_path)}})
                by_star.setdefault(str(star.get("star_id")), []).append(ent)
                if ent not in objects:
                    objects.append(ent)
        for key in ("observation_id", "chunk_size"):
            if key in info.job:
                objects.append(self.entity(f"#{self.run_uuid}-param-{key}", {
                    "@type": "PropertyValue", "name": key, "value": str(info.job[key]),
                    "exampleOfWork": {"@id": main_in.get(key, self.wf_path)}}))
        prov = info.outdir / PROV_DIR
        job = prov / "job.json"
        job.write_text(json.dumps(info.job, indent=1))
        objects.append(self.add_file(job, f"{PROV_DIR}/job.json", {
            "description": "the CWL job: the run's parameters (stars with their light curves)"}))
        if info.manifest and Path(info.manifest).is_file():
            dest = prov / f"manifest{Path(info.manifest).suffix or '.yaml'}"
            shutil.copyfile(info.manifest, dest)
            objects.append(self.add_file(dest, f"{PROV_DIR}/{dest.name}", {
                "description": f"the observation manifest ({info.manifest})"}))
        return objects, by_star

    def outputs(self) -> list[Any]:
        """Every product in the crate's folder (catalogue, report, products, figures)."""
        info = self.info
        ports = {}
        try:
            out = json.loads((info.run_dir / "outputs.json").read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            out = {}
        main_out = {p["id"].rsplit("/", 1)[-1]: self.pid(p["id"])
                    for p in self.procs["#main"].doc.get("outputs") or []}
        for port, value in out.items():
            for f in _files_in(value):
                ports[f.get("basename") or Path(f.get("path", "")).name] = port
        results = []
        for p in sorted(info.outdir.iterdir()):
            if not p.is_file() or p.name == METADATA or p.name.startswith("."):
                continue
            props = {}
            port = ports.get(p.name)
            if port and port in main_out:
                props["exampleOfWork"] = {"@id": main_out[port]}
            results.append(self.add_file(p, p.name, props))
        return results

    def config_files(self) -> list[Any]:
        info = self.info
        prov = info.outdir / PROV_DIR
        found = []
        if info.runner == "toil":
            from . import sites

            try:
                src = sites.profile_path(info.site)
            except Exception:  # noqa: BLE001 - a profile that vanished: none recorded
                src = None
            if src is not None:
                dest = prov / f"site-{info.site}.yaml"
                shutil.copyfile(src, dest)
                found.append(self.add_file(dest, f"{PROV_DIR}/{dest.name}", {
                    "description": f"the site profile {info.site} (toil-cwl-runner --config)"}))
        for name, what in (("overrides.json", "the runner's overrides (--fake)"),
                           ("command.json", "the runner's command line")):
            src = info.run_dir / name
            if src.exists():
                dest = prov / name
                shutil.copyfile(src, dest)
                found.append(self.add_file(dest, f"{PROV_DIR}/{name}", {"description": what}))
        return found

    def step_actions(self, stars_lc: dict[str, Any], tag: str) -> list[Any]:
        """CreateAction per tool run, per chunk (sub-workflow run) and for the chunking; a
        ControlAction per step execution. Returns the ControlActions."""
        from . import profiling

        refs = sorted({r.get("image", "") for r in self.steps})
        ids = image_ids(refs) if self.info.container else {}
        produced: dict[str, Any] = {}   # file name -> entity, as steps produce them
        final = {f.get("name"): f for f in self.files.values()}
        controls: list[Any] = []
        chunks: dict[str, list[Any]] = {}
        from . import slurm_accounting

        sacct = profiling.match_sacct(self.steps, slurm_accounting.steps(self.sacct_rows))
        for i, rec in enumerate(self.steps):
            tool = tool_of(self.procs, step_tool(rec))
            if tool is None:
                continue
            step = step_running(self.procs, tool.id)
            chunk = step_chunk(rec)
            aid = f"#{tag}-{chunk or 'run'}-{step.name if step else tool.name}"
            objects = []
            for item in rec.get("inputs") or []:
                name = item.get("name", "")
                sid = self.star_alias.get(item.get("star_id"), item.get("star_id"))
                if sid and sid in stars_lc:
                    match = [e for e in stars_lc[sid] if e.get("name") == name]
                    for ent in match or stars_lc[sid]:
                        if ent not in objects:
                            objects.append(ent)
                elif sid and self.star_alias:
                    continue  # another member's star of a merged run
                elif name in produced:
                    objects.append(produced[name])
                else:
                    objects.append(self.intermediate(name, item.get("size"), tag))
            results = []
            for item in rec.get("outputs") or []:
                name = item.get("name", "")
                ent = final.get(self.rename_files.get(name, name)) or self.intermediate(
                    name, item.get("size"), tag)
                produced[name] = ent
                results.append(ent)
            ok = rec.get("exit_status", 0) == 0
            props = {"@type": "CreateAction",
                     "name": f"{tool.name} {rec.get('module_version', '')} on "
                             f"{chunk or self.info.observation_id}",
                     "instrument": {"@id": self.pid(tool.id)},
                     "startTime": rec.get("start_utc"), "endTime": rec.get("end_utc"),
                     "actionStatus": {"@id": "http://schema.org/CompletedActionStatus" if ok
                                      else "http://schema.org/FailedActionStatus"},
                     "description": f"module {rec.get('module')} {rec.get('module_version')}"
                                    f" (contracts {rec.get('contracts_version')}) on "
                                    f"{rec.get('host')}, exit status {rec.get('exit_status')}"}
            if not ok:
                props["error"] = f"exit status {rec.get('exit_status')}"
            action = self.entity(aid, props)
            action["object"] = objects
            action["result"] = results
            image = self.container_image(rec, ids)
            if image is not None:
                action["containerImage"] = image
            req = requested(tool.doc)
            line = profiling.step_line(rec, req, sacct.get(i), info=self.info, step=step)
            self.lines.append(line)
            action["resourceUsage"] = self.usage(aid, line)
            if step is not None:
                controls.append(self.entity(f"{aid}-step", {
                    "@type": "ControlAction", "name": f"orchestrate {tool.name}",
                    "instrument": {"@id": self.pid(step.id)}, "object": {"@id": aid},
                    "actionStatus": props["actionStatus"]}))
            if chunk:
                chunks.setdefault(chunk, []).append((rec, action))
        controls += self.chunk_actions(chunks, stars_lc, tag)
        return controls

    def chunk_actions(self, chunks: dict[str, list], stars_lc: dict[str, Any],
                      tag: str) -> list[Any]:
        """A CreateAction per sub-workflow run (one chunk) and the ControlActions of the
        scattered step; one CreateAction for the workflow that scatters them, whose input
        ``chunks`` (sliced by its parent step's expression) maps each chunk to its stars."""
        controls = []
        every_result: list[Any] = []
        workflow_steps = [s for p in self.procs.values() for s in p.steps
                          if self.procs.get(s.run) and self.procs[s.run].cls == "Workflow"]
        sub_step = next((s for s in workflow_steps if s.scattered), None)
        chunk_step = next((s for s in workflow_steps
                           if sub_step is not None and s.run == sub_step.workflow), None)
        members = {}
        for rec_actions in chunks.values():
            for rec, _ in rec_actions:
                for item in rec.get("inputs") or []:
                    if item.get("star_id"):
                        sid = self.star_alias.get(item["star_id"], item["star_id"])
                        members.setdefault(step_chunk(rec), []).append(sid)
        for chunk, rec_actions in sorted(chunks.items()):
            if sub_step is None:
                break
            actions = [a for _, a in rec_actions]
            starts = [r.get("start_utc") for r, _ in rec_actions if r.get("start_utc")]
            ends = [r.get("end_utc") for r, _ in rec_actions if r.get("end_utc")]
            stars = members.get(chunk, [])
            last = rec_actions[-1][1]
            sub = self.entity(f"#{tag}-{chunk}", {
                "@type": "CreateAction", "name": f"{self.procs[sub_step.run].name} on {chunk}",
                "instrument": {"@id": self.pid(sub_step.run)},
                "startTime": min(starts) if starts else None,
                "endTime": max(ends) if ends else None,
                "description": f"{chunk}: {len(stars)} stars ({', '.join(stars)})",
                "actionStatus": {"@id": "http://schema.org/CompletedActionStatus"}})
            sub["object"] = [e for s in dict.fromkeys(stars) for e in stars_lc.get(s, [])]
            result = list(last.get("result") or [])
            # The chunk also returns earlier steps' files that the run delivers: MSAP1's
            # prepared light curves, into which the products link.
            delivered = {e.id for e in self.files.values()}
            result += [e for _, a in rec_actions[:-1] for e in a.get("result") or []
                       if e.id in delivered and e not in result]
            sub["result"] = result
            every_result += result
            controls.append(self.entity(f"#{tag}-{chunk}-step", {
                "@type": "ControlAction", "name": f"orchestrate {sub_step.name} ({chunk})",
                "instrument": {"@id": self.pid(sub_step.id)}, "object": {"@id": sub.id}}))
            del actions
        if chunk_step is not None:
            scatter_wf = self.procs[chunk_step.run]
            value = json.dumps({c: members.get(c, []) for c in sorted(chunks)})
            chunks_pv = self.entity(f"#{tag}-chunks", {
                "@type": "PropertyValue", "name": "chunks", "value": value,
                "exampleOfWork": {"@id": self.pid(
                    f"{scatter_wf.id}/{scatter_wf.name}/chunks")}})
            act = self.entity(f"#{tag}-chunk", {
                "@type": "CreateAction", "name": f"{scatter_wf.name} on every chunk",
                "instrument": {"@id": self.pid(chunk_step.run)},
                "description": f"the stars sliced into chunks by the expression of step "
                               f"{chunk_step.name} (evaluated by the engine itself), then "
                               f"{sub_step.name} scattered over the chunks",
                "actionStatus": {"@id": "http://schema.org/CompletedActionStatus"}})
            act["object"] = [e for ents in stars_lc.values() for e in ents] + [chunks_pv]
            act["result"] = every_result
            controls.insert(0, self.entity(f"#{tag}-chunk-step", {
                "@type": "ControlAction", "name": f"orchestrate {chunk_step.name}",
                "instrument": {"@id": self.pid(chunk_step.id)}, "object": {"@id": act.id}}))
        return controls

    def container_image(self, rec: dict, ids: dict[str, tuple[str, str]]) -> Any | None:
        ref = rec.get("image", "")
        if not ref or ref.startswith("none"):
            return None
        iid, label = ids.get(ref, ("", ""))
        repo, _, tag = ref.rpartition(":")
        registry, _, name = repo.partition("/")
        props = {"@type": "ContainerImage",
                 "additionalType": {"@id": "https://w3id.org/ro/terms/workflow-run#DockerImage"},
                 "registry": registry, "name": name, "tag": tag,
                 "description": f"content hash {rec.get('image_digest') or 'unknown'}"}
        if iid and (not rec.get("image_digest") or label == rec.get("image_digest")):
            props["sha256"] = iid.removeprefix("sha256:")
        elif iid:
            props["description"] += (f"; the local image {ref} is now {iid[:19]} with content "
                                     f"hash {label}: rebuilt since the run")
        ident = f"#image-{name.replace('/', '-')}-{tag}-{(rec.get('image_digest') or 'x')[:12]}"
        return self.entity(ident, props)

    def usage(self, aid: str, line: dict) -> list[Any]:
        """resourceUsage PropertyValues of one tool run (used, and requested)."""
        from .profiling import USAGE_FIELDS

        out = []
        for section in ("used", "requested"):
            for key, value in (line.get(section) or {}).items():
                if value is None or key not in USAGE_FIELDS:
                    continue
                unit, label = USAGE_FIELDS[key]
                name = f"{section}_{key}" if section == "requested" else key
                props = {"@type": "PropertyValue", "name": name,
                         "propertyID": TERMS + name, "value": str(value),
                         "description": f"{label} ({section}, {line.get('source')})"}
                if unit in UNITS:
                    props["unitCode"] = UNITS[unit]
                out.append(self.entity(f"{aid}-{name}", props))
        return out

    # -- write
    def build(self) -> Path:
        info = self.info
        # A run that failed before any step profile came back (they stay in the job store) is
        # a Workflow Run Crate: what ran, on what, why it failed; no step executions to show.
        profiles = {u: n for u, n in PROFILES.items()
                    if self.steps or "provenance" not in u}
        for url, name in profiles.items():
            self.entity(url, {"@type": "CreativeWork", "name": name,
                              "version": url.rsplit("/", 1)[-1]})
        self.crate.root_dataset["conformsTo"] = [{"@id": u} for u in profiles]
        self.crate.root_dataset["name"] = f"{info.workflow} run of {info.observation_id}"
        self.crate.root_dataset["description"] = (
            f"Outputs and provenance of the {info.workflow} run of observation "
            f"{info.observation_id} ({info.runner}, site {info.site}).")
        if getattr(self, "note", None):
            self.crate.root_dataset["description"] += " " + self.note
        self.crate.root_dataset["datePublished"] = info.ended
        self.crate.root_dataset["license"] = {"@id": "https://spdx.org/licenses/Apache-2.0"}
        self.entity("https://spdx.org/licenses/Apache-2.0", {"@type": "CreativeWork",
                                                              "name": "Apache-2.0"})
        self.add_workflow()
        self.add_run()
        self.add_profile()
        return self.write()

    def add_profile(self) -> None:
        """profile.jsonl (and a Slurm run's sacct rows) in the crate and the run folder."""
        from .profiling import LINES, write_lines

        prov = self.info.outdir / PROV_DIR
        write_lines(self.lines, prov / LINES, self.info.run_dir / LINES)
        self.add_file(prov / LINES, f"{PROV_DIR}/{LINES}", {
            "description": "one JSON line per step: requested and used resources "
                           "(stellarflow profile)"})
        if self.sacct_rows:
            (prov / "sacct.json").write_text(json.dumps(self.sacct_rows, indent=1))
            self.add_file(prov / "sacct.json", f"{PROV_DIR}/sacct.json", {
                "description": "the sacct rows (slurmdbd) of the run's Slurm jobs"})

    def write(self) -> Path:
        # The metadata file only: every data entity is already in place.
        import warnings

        info = self.info
        tmp = info.outdir / f".{METADATA}.tmp"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = json.dumps(self.crate.metadata.generate(), indent=1, ensure_ascii=False)
        tmp.write_text(text + "\n")
        os.replace(tmp, info.outdir / METADATA)
        return info.outdir / METADATA


def _optional(t: Any) -> bool:
    return (isinstance(t, list) and "null" in t) or (isinstance(t, str) and t.endswith("?"))


def _local_path(file_obj: dict) -> Path | None:
    loc = file_obj.get("path") or file_obj.get("location") or ""
    if loc.startswith("file://"):
        from urllib.parse import unquote, urlparse

        loc = unquote(urlparse(loc).path)
    return Path(loc) if loc and "://" not in loc else None


def _files_in(value: Any) -> list[dict]:
    if isinstance(value, dict) and value.get("class") == "File":
        return [value]
    if isinstance(value, list):
        return [f for v in value for f in _files_in(v)]
    return []


RUN_INFO = "run-info.json"  # RUN_DIR/run-info.json: what a later crate of the run needs


def record_run(info: RunInfo, *, sacct_rows: list[dict] | None = None) -> Path | None:
    """Write the crate and the profile lines of a finished run (see the module doc); None when
    provenance is switched off."""
    if not enabled():
        return None
    saved = {k: (str(v) if isinstance(v, Path) else v) for k, v in info.__dict__.items()}
    (info.run_dir / RUN_INFO).write_text(json.dumps(saved, indent=1))
    if sacct_rows:
        (info.run_dir / "sacct.json").write_text(json.dumps(sacct_rows, indent=1))
    steps = load_steps(info.run_dir)
    if info.outdir.is_dir():  # the outputs' digests on every CPU, before the crate needs them
        digest_files(p for p in info.outdir.rglob("*") if p.is_file())
    return CrateBuilder(info, packed_workflow(info.cwl), steps, sacct_rows).build()


def member_crate(run_dir: Path, member_dir: Path, observation_id: str,
                 star_ids: dict[str, str], merged: str) -> Path | None:
    """The crate of one manifest's share of a merged trigger run (stellarflow_trigger.batch):
    the merged run's workflow, engine and step runs, with this member's light curves and its
    files (per-star files renamed back, its rows of the catalogue and its report, which the split
    wrote). ``star_ids``: batch id -> the manifest's id."""
    saved_path = Path(run_dir) / RUN_INFO
    if not enabled() or not saved_path.exists():
        return None
    saved = json.loads(saved_path.read_text())
    for key in ("cwl", "run_dir", "outdir", "manifest"):
        if saved.get(key):
            saved[key] = Path(saved[key])
    info = RunInfo(**saved)
    job = dict(info.job)
    job["stars"] = [{**s, "star_id": star_ids[s["star_id"]]} for s in job.get("stars") or []
                    if s.get("star_id") in star_ids]
    job["observation_id"] = observation_id
    info.job, info.outdir, info.observation_id = job, Path(member_dir), observation_id
    info.manifest = None
    sacct = Path(run_dir) / "sacct.json"
    rows = json.loads(sacct.read_text()) if sacct.exists() else None
    builder = CrateBuilder(info, packed_workflow(info.cwl), load_steps(info.run_dir), rows)
    builder.star_alias = dict(star_ids)
    for rec in builder.steps:
        for item in rec.get("outputs") or []:
            name = item.get("name", "")
            for bid, orig in sorted(star_ids.items(), key=lambda kv: -len(kv[0])):
                if name.startswith(bid) and name[len(bid):len(bid) + 1] in (".", "_"):
                    builder.rename_files[name] = orig + name[len(bid):]
                    break
    builder.note = (f"This observation's share of the merged trigger run {merged}: its stars' "
                    "files renamed back to its star ids; catalogue.ecsv and report.html hold its "
                    "rows of the merged run's catalogue (written by the split).")
    return builder.build()
