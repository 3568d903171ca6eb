"""Chunk files and the per-star loop every science module shares.

A chunk file (HDF5) holds one group per star under ``/stars/<star_id>`` with attrs ``status``
(ok|failed), ``error`` and ``cpu_s`` (CPU seconds this module spent on the star), plus the
module's own datasets/attrs. Root attrs say which chunk, observation, module, version and image
made it. Each module reads the upstream chunk files it needs and writes one new file holding
only what it adds, so no stage rewrites another stage's data.

A star that fails (any exception) gets ``status=failed`` and a one-line error; the rest of the
chunk goes on. A star failed upstream is carried as failed without being processed again.

Beside each chunk file a module writes ``<chunk_id>.<stage>.summary.json``: per star its status,
error, results (4 significant digits) and dataset shapes, without timings, so that the same
inputs always give the same bytes (the CWL tool tests compare it).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import logging
import os
import platform
import signal
import socket
import sys
import time
import typing
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from . import CONTRACT_MAJOR, pool, profile
from . import __version__ as CONTRACTS_VERSION
from .errors import InputError

log = logging.getLogger("stellarflow")

STATUS_OK = "ok"
STATUS_FAILED = "failed"


def image_name() -> str:
    """The container image this process runs in (set by its Containerfile), or 'none'."""
    return os.environ.get("STELLARFLOW_IMAGE", "none (no container)")


# What the module ran on (a module pins its own stack: this is what its image holds).
RUNTIME = (f"python {platform.python_version()}; numpy {np.__version__}; "
           f"h5py {h5py.__version__}; HDF5 {h5py.version.hdf5_version}")


def provenance(module: str, version: str) -> dict[str, str]:
    """Root attrs of every file a module writes: who made it, with what, where and when."""
    return {
        "module": module,
        "module_version": version,
        "contracts_version": CONTRACTS_VERSION,
        "image": image_name(),
        "image_digest": os.environ.get("STELLARFLOW_IMAGE_HASH", ""),
        "runtime": RUNTIME,
        "host": socket.gethostname(),
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def one_line(exc: BaseException) -> str:
    if isinstance(exc, InputError):
        return str(exc)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def attr_str(group: h5py.Group | h5py.File, key: str, default: str = "") -> str:
    v = group.attrs.get(key, default)
    return v.decode() if isinstance(v, bytes) else str(v)


def attr_float(group: h5py.Group, key: str) -> float:
    v = group.attrs.get(key)
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


class NotMeasurable(Exception):
    """The data cannot support this measurement (e.g. a baseline too short for a period
    search). The star stays ``ok``, the module's results are NaN, and the reason is kept in
    the star's ``note`` attr: a short light curve is not a failure of the star."""


@dataclass
class StarContext:
    """What a module's per-star function gets: the star's group in each input, and its output."""

    star_id: str
    inputs: dict[str, h5py.Group | None]
    out: h5py.Group

    def need(self, name: str) -> h5py.Group:
        g = self.inputs.get(name)
        if g is None:
            raise KeyError(f"no '{name}' input for star {self.star_id}")
        return g


def open_chunk(path: Path) -> h5py.File:
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"unreadable chunk HDF5 ({exc})") from None
    if "stars" not in f or "chunk_id" not in f.attrs:
        f.close()
        raise InputError(path, "not a stellarflow chunk file (no /stars or chunk_id)")
    written = attr_str(f, "contracts_version", CONTRACTS_VERSION)
    if written.split(".")[0] != str(CONTRACT_MAJOR):
        f.close()
        raise InputError(path, f"written with contracts {written}, this module reads "
                               f"{CONTRACT_MAJOR}.x")
    return f


def star_ids(f: h5py.File) -> list[str]:
    ids = f.attrs.get("star_ids")
    if ids is None:
        return list(f["stars"].keys())
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]


def write_dataset(group: h5py.Group, name: str, data: object, units: str,
                  dtype: object = None) -> h5py.Dataset:
    """A dataset with its ``units`` attribute (the contract requires one on every dataset);
    compressed when large (lzf: fast, in every h5py)."""
    arr = np.asarray(data, dtype=dtype)
    opts = {"compression": "lzf", "shuffle": True} if arr.size > 4096 else {}
    ds = group.create_dataset(name, data=arr, **opts)
    ds.attrs["units"] = units
    return ds


def write_star_status(g: h5py.Group, status: str, error: str, cpu_s: float) -> None:
    g.attrs["status"] = status
    g.attrs["error"] = error
    g.attrs["cpu_s"] = float(cpu_s)


def _summary_value(v: object) -> object:
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        return [_summary_value(x) for x in v.tolist()]
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(f"{float(v):.4g}") if np.isfinite(v) else None
    return str(v)


def dataset_shapes(g: h5py.Group) -> dict[str, list[int]]:
    """Path (relative to ``g``) -> shape of every dataset below ``g``."""
    shapes: dict[str, list[int]] = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            shapes[name] = list(obj.shape)

    g.visititems(visit)
    return shapes


def summarise(fout: h5py.File) -> dict:
    """What a chunk file says, without timings: per star status, error, attrs (numbers to 4
    significant digits, NaN as null) and the shape of every dataset."""
    stars: dict[str, dict] = {}
    counts = {"total": 0, STATUS_OK: 0, STATUS_FAILED: 0}
    for sid in star_ids(fout):
        g = fout["stars"][sid]
        status = attr_str(g, "status", STATUS_OK)
        counts["total"] += 1
        counts[status] = counts.get(status, 0) + 1
        attrs = {k: _summary_value(v) for k, v in sorted(g.attrs.items())
                 if k not in ("status", "cpu_s")}
        shapes = dataset_shapes(g)
        entry: dict[str, object] = {"status": status, "attrs": attrs}
        if shapes:
            entry["datasets"] = dict(sorted(shapes.items()))
        stars[sid] = entry
    return {"chunk_id": attr_str(fout, "chunk_id"), "stage": attr_str(fout, "stage"),
            "module": attr_str(fout, "module"), "module_version": attr_str(fout, "module_version"),
            "stars": counts, "star": stars}


def write_summary(fout: h5py.File, outdir: Path) -> Path:
    """``<chunk_id>.<stage>.summary.json`` beside the chunk file (see the module docstring)."""
    path = outdir / f"{attr_str(fout, 'chunk_id')}.{attr_str(fout, 'stage')}.summary.json"
    path.write_text(json.dumps(summarise(fout), indent=1, ensure_ascii=False) + "\n")
    return path


def write_root_attrs(fout: h5py.File, *, chunk_id: str, observation_id: str, stage: str,
                     ids: list[str], module: str, version: str) -> None:
    """The root attrs of the chunk contract (docs/contracts.md)."""
    fout.attrs["chunk_id"] = chunk_id
    fout.attrs["observation_id"] = observation_id
    fout.attrs["stage"] = stage
    fout.attrs["star_ids"] = np.array(ids, dtype=h5py.string_dtype())
    for k, v in provenance(module, version).items():
        fout.attrs[k] = v


@contextmanager
def quiet_numerics() -> Iterator[None]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def process_star(ctx: StarContext, module: str, process: Callable[[StarContext], None],
                 select: Callable[[StarContext], bool] | None) -> None:
    """Run ``process`` on one star and write its status attrs into ``ctx.out``: any exception
    becomes ``failed`` with a one-line error (the chunk goes on), ``NotMeasurable`` a note."""
    g_out = ctx.out
    t0 = time.process_time()
    try:
        with quiet_numerics():
            if select is None or select(ctx):
                process(ctx)
        status, error = STATUS_OK, ""
    except NotMeasurable as exc:
        for key in list(g_out.keys()):
            del g_out[key]
        g_out.attrs["note"] = f"{module}: {exc}"
        status, error = STATUS_OK, ""
    except Exception as exc:  # one failing star never fails its chunk
        log.debug("star %s failed in %s", ctx.star_id, module, exc_info=True)
        for key in list(g_out.keys()):
            del g_out[key]
        status, error = STATUS_FAILED, f"{module}: {one_line(exc)}"
    write_star_status(g_out, status, error, time.process_time() - t0)


def _star_groups(files: dict[str, h5py.File], sid: str) -> dict[str, h5py.Group | None]:
    return {k: (f["stars"][sid] if sid in f["stars"] else None) for k, f in files.items()}


def open_chunks(inputs: dict[str, Path | None], stack: ExitStack) -> dict[str, h5py.File]:
    """Stage -> open chunk file for every input given (None: not given), closed with ``stack``."""
    return {k: stack.enter_context(open_chunk(p)) for k, p in inputs.items() if p is not None}


def run_chunk(
    *,
    module: str,
    version: str,
    stage: str,
    inputs: dict[str, Path | None],
    primary: str,
    outdir: Path,
    process: Callable[[StarContext], None],
    select: Callable[[StarContext], bool] | None = None,
    finish: Callable[[h5py.File], None] | None = None,
) -> Path:
    """Run ``process`` on every star of the chunk; write ``<chunk_id>.<stage>.h5`` in outdir.

    ``select`` (optional) says whether a star is processed by this module at all; stars it
    declines are written with status ok and no results (e.g. seismology on a hot star).
    The stars run in worker processes (:mod:`stellarflow_contracts.pool`): each writes its star
    into an in-memory HDF5 file, which this process copies into the chunk file.
    """
    def star_in_memory(files: dict[str, h5py.File], sid: str) -> bytes:
        with h5py.File(f"{sid}.mem", "w", driver="core", backing_store=False) as mem:
            ctx = StarContext(star_id=sid, inputs=_star_groups(files, sid),
                              out=mem.create_group(sid))
            process_star(ctx, module, process, select)
            mem.flush()
            return mem.id.get_file_image()

    def open_in_worker() -> dict[str, h5py.File]:
        return open_chunks(inputs, ExitStack())  # closed when the worker exits

    primary_path = inputs[primary]
    if primary_path is None:
        raise InputError(None, f"no {primary} chunk file given")
    with open_chunk(primary_path) as f:  # closed again before the workers are forked
        n_stars = len(star_ids(f))
    with pool.StarPool(star_in_memory, open_in_worker, n_stars) as stars_pool, \
            ExitStack() as stack:
        files = open_chunks(inputs, stack)
        src = files[primary]
        chunk_id = attr_str(src, "chunk_id")
        ids = star_ids(src)
        out_path = outdir / f"{chunk_id}.{stage}.h5"
        with h5py.File(out_path, "w") as fout:
            write_root_attrs(fout, chunk_id=chunk_id,
                             observation_id=attr_str(src, "observation_id"), stage=stage,
                             ids=ids, module=module, version=version)
            stars_out = fout.create_group("stars")
            todo = []
            for sid in ids:
                groups = _star_groups(files, sid)
                upstream_error = next(
                    (attr_str(g, "error") for g in groups.values()
                     if g is not None and attr_str(g, "status", STATUS_OK) == STATUS_FAILED),
                    None)
                if upstream_error is not None:
                    write_star_status(stars_out.create_group(sid), STATUS_FAILED,
                                      upstream_error, 0.0)
                else:
                    todo.append(sid)
            for sid, image in stars_pool.map(todo, files):
                with h5py.File(io.BytesIO(image), "r") as mem:
                    mem.copy(mem[sid], stars_out, name=sid)
            if finish is not None:
                finish(fout)
            write_summary(fout, outdir)
        return out_path


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``MODULE: error: ...``) and exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def module_main(
    argv: list[str] | None,
    *,
    module: str,
    version: str,
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], object],
) -> int:
    """Common CLI: ``--version``, ``--debug``; expected errors are one line and exit 2.

    After ``run`` (done or not), the step's profile goes beside its outputs
    (``<prefix>.profile.json``, :mod:`stellarflow_contracts.profile`)."""
    parser = OneLineParser(prog=module, description=description)
    parser.add_argument("--version", action="version", version=f"{module} {version}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--outdir", type=Path, default=Path("."), help="where to write outputs")
    add_arguments(parser)
    args = parser.parse_args(argv)
    # In a container the module is PID 1, which ignores SIGTERM without a handler: a runner's
    # time limit (ToolTimeLimit, a scheduler's walltime) could then not stop it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format=f"{module}: %(message)s")
    status = 1  # an unexpected exception: Python exits 1 with its traceback
    try:
        run(args)
        status = 0
    except InputError as exc:
        status = 2
        if args.debug:
            raise
        print(f"{module}: {exc}", file=sys.stderr)
    except SystemExit as exc:  # SIGTERM (the handler above) or a module's own exit
        status = exc.code if isinstance(exc.code, int) else 1
        raise
    finally:
        # After the outputs, whatever happened: what the step used (profile.py).
        profile.write(module=module, version=version, exit_status=status, outdir=args.outdir,
                      inputs=profile.input_files(vars(args)) + profile.noted_inputs())
    return status
