"""The fake-module program: `fake_module --spec SPEC [inputs] [load]`.

Reads the HDF5 inputs its declaration names (checking the declared datasets and secondary files),
optionally burns CPU, memory, tmpdir I/O and wall time, can fail on purpose (always, or on its
first N attempts), and writes the declared outputs: HDF5 files with the declared datasets and
attributes plus a ``/passed_here`` group holding one record per module the data passed through
(this one last: module, version, host, image, start/end, attempt, resources seen and consumed,
and the SHA-256 of every input), or JSON files holding the declared parameter fields.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stellarflow_contracts.errors import InputError

from . import __version__
from .spec import normalise

CHUNK = 1 << 20
STR = h5py.string_dtype()


class Failure(Exception):
    """An expected failure: one line on stderr, exit 1."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def utc(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_spec(value: str) -> dict[str, Any]:
    """A declaration file: JSON (what the generated CWL tools stage) or YAML."""
    p = Path(value)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(p, f"cannot read fake-module declaration ({exc.strerror})") from None
    if p.suffix == ".json":
        return normalise(json.loads(text), p)
    from ruamel.yaml import YAML

    return normalise(YAML(typ="safe").load(text), p)


def build_parser(spec: dict[str, Any]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"fake_module ({spec['name']})", description=spec["doc"])
    p.add_argument("--spec", required=True)
    p.add_argument("--outdir", type=Path, default=Path("."))
    for i in spec["inputs"]:
        many = bool(i.get("array"))
        p.add_argument(f"--in-{i['name']}", dest=f"in_{i['name']}", type=Path,
                       nargs="*" if many else None, default=[] if many else None)
    kinds = {"int": int, "float": float, "string": str}
    for par in spec["parameters"]:
        p.add_argument(f"--{par['name']}", type=kinds[par["type"]], default=par.get("default"))
    load = spec["load"]
    p.add_argument("--cpu-seconds", type=float, default=load["cpu_seconds"])
    p.add_argument("--memory-mb", type=int, default=load["memory_mb"])
    p.add_argument("--io-mb", type=int, default=load["io_mb"])
    p.add_argument("--sleep", type=float, default=load["sleep"])
    p.add_argument("--fail-first-n-attempts", type=int, default=0)
    p.add_argument("--attempt-dir", type=Path, help="where attempts are counted (shared FS)")
    p.add_argument("--attempt-key", default="")
    p.add_argument("--fail-with", default="", help="always fail with this message on stderr")
    p.add_argument("--tmpdir", type=Path, default=None)
    p.add_argument("--runtime-cores", type=float, default=float("nan"))
    p.add_argument("--runtime-ram-mb", type=float, default=float("nan"))
    p.add_argument("--runtime-outdir", default="")
    p.add_argument("--require-gpu", action="store_true")
    p.add_argument("--debug", action="store_true", help="tracebacks")
    return p


def check_inputs(spec: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, Path]]:
    """Every declared input present, readable HDF5, holding its declared datasets/sidecars."""
    found: list[tuple[str, Path]] = []
    for decl in spec["inputs"]:
        value = getattr(args, f"in_{decl['name']}")
        paths = value if decl.get("array") else ([value] if value else [])
        if not paths and not decl.get("optional"):
            raise Failure(f"input {decl['name']} is required by {spec['name']}'s interface")
        for path in paths:
            try:
                with h5py.File(path, "r") as f:
                    missing = [d for d in decl.get("datasets", []) if d not in f]
            except OSError as exc:
                raise Failure(f"{path}: not readable HDF5 ({exc})") from None
            if missing:
                raise Failure(f"{path}: missing dataset(s) {', '.join(missing)} declared for "
                              f"input {decl['name']} of {spec['name']}")
            for ext in decl.get("secondary_files", []):
                side = Path(str(path) + ext)
                if not side.is_file():
                    raise Failure(f"{path}: secondary file {side.name} was not staged")
                if ext == ".sha256" and side.read_text().split()[0] != sha256(path):
                    raise Failure(f"{side}: checksum does not match {path.name}")
            found.append((decl["name"], path))
    return found


def attempt_number(args: argparse.Namespace, module: str) -> int:
    """Count attempts in a file on a shared filesystem (a retried job gets a fresh sandbox)."""
    if args.attempt_dir is None:
        return 1
    args.attempt_dir.mkdir(parents=True, exist_ok=True)
    counter = args.attempt_dir / f"{args.attempt_key or module}.attempts"
    n = int(counter.read_text() or 0) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


def burn_cpu(seconds: float) -> float:
    start = time.process_time()
    x = 0.0
    while time.process_time() - start < seconds:
        x += sum(i * 0.5 for i in range(10_000))
    return time.process_time() - start


def touch_memory(mb: int) -> None:
    if mb > 0:
        block = np.ones(mb * (1 << 20) // 8)  # np.ones writes every page: really resident
        block[::512] += 1.0


def tmpdir_io(tmpdir: Path | None, mb: int) -> dict[str, Any]:
    """Write then read back MB mebibytes in the step's tmpdir; checksum must round-trip."""
    if mb <= 0:
        return {"io_mb": 0, "io_verified": 0, "io_path": ""}
    base = tmpdir or Path(os.environ.get("TMPDIR", "/tmp"))
    work = base / f"fake-io-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    rng = np.random.default_rng(mb)
    h_write = hashlib.sha256()
    with open(work / "blob.bin", "wb") as f:
        for _ in range(mb):
            block = rng.integers(0, 256, CHUNK, dtype=np.uint8).tobytes()
            h_write.update(block)
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    ok = sha256(work / "blob.bin") == h_write.hexdigest()
    shutil.rmtree(work)
    return {"io_mb": mb, "io_verified": int(ok), "io_path": str(base)}


def gpu_name() -> str:
    nvsmi = shutil.which("nvidia-smi")
    if not nvsmi:
        raise Failure("a GPU was required but nvidia-smi is not available in this step")
    import subprocess

    out = subprocess.run([nvsmi, "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise Failure(f"a GPU was required but nvidia-smi found none ({out.stderr.strip()})")
    return out.stdout.strip().splitlines()[0]


def write_record(group: h5py.Group, rec: dict[str, Any], inputs: list[tuple[str, str, str]]):
    for k, v in rec.items():
        group.attrs[k] = v
    arr = np.array(inputs, dtype=[("name", STR), ("file", STR), ("sha256", STR)]) if inputs \
        else np.zeros(0, dtype=[("name", STR), ("file", STR), ("sha256", STR)])
    group.create_dataset("inputs", data=arr)


def copy_lineage(fout: h5py.File, sources: list[Path]) -> int:
    """Copy the passed-here records of every input (each record once), oldest first."""
    seen: dict[str, tuple[str, Path, str]] = {}
    for src in sources:
        with h5py.File(src, "r") as f:
            for name, g in f.get("passed_here", {}).items():
                rid = str(g.attrs.get("record_id", name))
                seen.setdefault(rid, (str(g.attrs.get("start_utc", "")), src, name))
    ordered = sorted(seen.values())
    dest = fout.require_group("passed_here")
    for i, (_, src, name) in enumerate(ordered):
        with h5py.File(src, "r") as f:
            f.copy(f["passed_here"][name], dest, name=f"{i:05d}_{name.split('_', 1)[-1]}")
    return len(ordered)


def seed_from(parts: list[str]) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "little")


def write_outputs(spec, args, rec, inputs, sources, params) -> None:
    args.outdir.mkdir(parents=True, exist_ok=True)
    seed = seed_from([spec["name"]] + [c for _, _, c in inputs] + [json.dumps(params)])
    rng = np.random.default_rng(seed)
    for o in spec["outputs"]:
        path = args.outdir / o["file"]
        if o["file"].endswith(".json"):
            doc = {"module": spec["name"], "module_version": spec["version"],
                   **{f: params[f] for f in o.get("fields", [])},
                   **o.get("attributes", {}), "passed_here": rec,
                   "inputs": [dict(zip(("name", "file", "sha256"), x, strict=True))
                              for x in inputs]}
            path.write_text(json.dumps(doc, indent=1, default=str))
        else:
            with h5py.File(path, "w") as f:
                f.attrs["module"] = spec["name"]
                f.attrs["module_version"] = spec["version"]
                f.attrs["image"] = rec["image"]
                f.attrs["host"] = rec["host"]
                for k, v in o.get("attributes", {}).items():
                    f.attrs[k] = v
                for k, v in params.items():
                    f.attrs[f"param_{k}"] = v
                for name, d in o.get("datasets", {}).items():
                    f.create_dataset(name, data=rng.standard_normal(d["shape"]).astype(d["dtype"]))
                n = copy_lineage(f, sources)
                write_record(f["passed_here"].create_group(f"{n:05d}_{spec['name']}"), rec,
                             inputs)
        if o.get("sidecar") == "sha256":
            Path(str(path) + ".sha256").write_text(f"{sha256(path)}  {path.name}\n")


def run(argv: list[str]) -> int:
    start = time.time()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--spec")
    known, _ = pre.parse_known_args(argv)
    if not known.spec:
        print("fake_module: --spec (a declaration file or module name) is required",
              file=sys.stderr)
        return 2
    spec = read_spec(known.spec)
    args = build_parser(spec).parse_args(argv)
    module = spec["name"]
    attempt = attempt_number(args, module)
    if args.fail_with:
        raise Failure(args.fail_with)
    found = check_inputs(spec, args)
    inputs = [(name, p.name, sha256(p)) for name, p in found]
    if attempt <= args.fail_first_n_attempts:
        raise Failure(f"failing attempt {attempt} of the first {args.fail_first_n_attempts} "
                      "on purpose (--fail-first-n-attempts)")
    gpu = gpu_name() if args.require_gpu else ""
    cpu_s = burn_cpu(args.cpu_seconds)
    touch_memory(args.memory_mb)
    io = tmpdir_io(args.tmpdir, args.io_mb)
    if args.sleep > 0:
        time.sleep(args.sleep)
    params = {p["name"]: getattr(args, p["name"]) for p in spec["parameters"]}
    end = time.time()
    rec = {
        "record_id": uuid.uuid4().hex, "module": module, "module_version": spec["version"],
        "program": f"fake_module {__version__}",
        "host": socket.gethostname(),
        "image": os.environ.get("STELLARFLOW_IMAGE", "none (no container)"),
        "start_utc": utc(start), "end_utc": utc(end), "wall_s": round(end - start, 3),
        "attempt": attempt, "cpu_s_burned": round(cpu_s, 3),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "memory_mb_requested_load": args.memory_mb, "sleep_s": args.sleep,
        "runtime_cores": args.runtime_cores, "runtime_ram_mb": args.runtime_ram_mb,
        "runtime_tmpdir": str(args.tmpdir or ""), "runtime_outdir": args.runtime_outdir,
        "gpu": gpu, "secondary_verified": int(any(i.get("secondary_files")
                                                  for i in spec["inputs"]) and bool(found)),
        **io,
        **{f"param_{k}": v for k, v in params.items()},
    }
    write_outputs(spec, args, rec, inputs, [p for _, p in found], params)
    print(json.dumps({"module": module, "attempt": attempt, "wall_s": rec["wall_s"],
                      "inputs": len(inputs)}))
    return 0


def _terminated(signum: int, frame: Any) -> None:
    # In a container this program is PID 1, which ignores SIGTERM unless it has a handler:
    # without one a runner's time limit (ToolTimeLimit) could never stop the step.
    raise Failure(f"terminated by signal {signum} (time limit or cancellation)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return run(argv)
    except InputError as exc:
        print(f"fake_module: {exc}", file=sys.stderr)
        return 2
    except Failure as exc:
        print(f"fake_module: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if "--debug" in argv:
            raise
        print(f"fake_module: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
