"""Contract-conformant fakes of the SAS science modules (`stellarflow run --fake MODULE`).

Until a module's science exists, its place in the workflow is held by a fake that reads and
writes the same files. In the fake module's image every SAS module's command (msap3_seismology,
...) is a link to ``fake_sas``; called under a module's name with that module's arguments, it
reads the primary input of the module's chunk contract (specs/chunk-<stage>.json in
stellarflow_contracts) and writes ``<chunk_id>.<stage>.h5`` and its summary:
- a star failed upstream stays failed with its error (as in every module);
- every other star gets each attr of the contract as NaN (numbers), 0 (integers) or "" (text),
  and each required dataset empty, with its units; the data later stages read passes through
  (the prepared stage: the light curve, normalised to its median);
- root attrs ``fake_of`` (the module it stands in for) and ``passed_here`` (a JSON record: fake,
  version, host, start, end) say what happened; provenance names this module and image.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
from pathlib import Path

import h5py
import numpy as np

from stellarflow_contracts import conform, lightcurve, profile
from stellarflow_contracts.chunk import StarContext, run_chunk, write_dataset
from stellarflow_contracts.errors import InputError

from . import __version__

PROG = "fake_sas"


def fakeable() -> dict[str, str]:
    """Module -> chunk stage, for every contract written by a module with an input."""
    found = {}
    for stage in conform.stages():
        spec = conform.spec(stage)
        if spec.get("primary_input"):
            found[spec["produced_by"]] = stage
    return found


def _fill(ctx: StarContext, spec: dict, sources: dict[str, list[str]]) -> None:
    out = ctx.out
    if spec["stage"] == "prepared":  # the light curve passes through, normalised
        given = ctx.need("lightcurves")
        if "lightcurve" not in given and not lightcurve.is_reference(given):
            raise InputError(None, f"star {ctx.star_id}: no light curve in the chunk")
        lc = lightcurve.read_chunk_star(given, ctx.star_id, sources)
        t, f, e, q = lc.time, lc.flux, lc.flux_err, lc.quality
        good = np.isfinite(t) & np.isfinite(f) & (q == 0)
        level = float(np.median(f[good])) if good.any() else 1.0
        g = out.create_group("prepared")
        write_dataset(g, "time", t[good], "d")
        write_dataset(g, "flux", f[good] / level, "")
        write_dataset(g, "flux_err", e[good] / level, "")
    for key, a in spec["star_attrs"].items():
        out.attrs[key] = {"float": np.nan, "int": 0, "str": ""}[a["dtype"]]
    if spec["stage"] == "prepared":
        for key in ("teff", "logg", "feh", "cadence_s"):
            out.attrs[key] = float(ctx.need("lightcurves").attrs.get(key, np.nan))
    for name, d in spec["star_datasets"].items():
        if d.get("required", True) and name not in out:
            write_dataset(out, name, np.empty(0, dtype=d["dtype"]), d["units"] or "")


def parse(module: str, argv: list[str]) -> tuple[dict[str, Path], Path, Path | None]:
    """``--<stage> FILE`` pairs, ``--outdir DIR`` and ``--chunk-file FILE`` (MSAP1's chunk
    record): what the module's CWL tool passes."""
    inputs: dict[str, Path] = {}
    outdir = Path(".")
    chunk_file = None
    stages = set(conform.stages())
    it = iter(argv)
    for arg in it:
        if arg == "--version":
            print(f"{module} (fake: {PROG} {__version__})")
            raise SystemExit(0)
        if arg == "--debug":
            continue
        name = arg[2:] if arg.startswith("--") else ""
        value = next(it, None)
        if value is None or not (name in ("outdir", "chunk-file") or name in stages):
            raise InputError(None, f"unexpected argument {arg!r} (a fake takes --outdir, "
                                   "--chunk-file and --<stage> FILE)")
        if name == "outdir":
            outdir = Path(value)
        elif name == "chunk-file":
            chunk_file = Path(value)
        else:
            inputs[name] = Path(value)
    return inputs, outdir, chunk_file


def fake(module: str, argv: list[str]) -> Path:
    stage = fakeable()[module]
    spec = conform.spec(stage)
    inputs, outdir, chunk_file = parse(module, argv)
    sources = lightcurve.chunk_file_sources(chunk_file) if chunk_file is not None else {}
    primary = spec["primary_input"]
    if primary not in inputs:
        raise InputError(None, f"--{primary} is required (the primary input of {module})")
    started = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def finish(fout: h5py.File) -> None:
        fout.attrs["fake_of"] = module
        fout.attrs["passed_here"] = json.dumps({
            "fake": PROG, "version": __version__, "fake_of": module, "host": socket.gethostname(),
            "start": started, "end": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        for key, want in spec["root_attrs"].items():
            fout.attrs[key] = 0 if want == "int" else ""

    out = run_chunk(module="fake_module", version=__version__, stage=stage, inputs=inputs,
                    primary=primary, outdir=outdir, process=lambda ctx: _fill(ctx, spec, sources),
                    finish=finish)
    if stage == "prepared":  # MSAP1's tool also returns the count that gates MSAP3
        with h5py.File(out, "r") as f:
            chunk_id = f.attrs["chunk_id"]
        (outdir / f"{chunk_id}.msap1.json").write_text(json.dumps({"n_seismic_candidates": 0}))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    called = os.path.basename(sys.argv[0])
    known = fakeable()
    if called == PROG:
        if argv[:1] == ["--list"]:
            print("\n".join(sorted(known)))
            return 0
        if not argv or argv[0] not in known:
            print(f"{PROG}: error: name the module to fake, one of {', '.join(sorted(known))} "
                  "(or call this program under that name)", file=sys.stderr)
            return 2
        called, argv = argv[0], argv[1:]
    if called not in known:
        print(f"{PROG}: error: no fake for {called!r}", file=sys.stderr)
        return 2
    status = 1
    try:
        fake(called, argv)
        status = 0
    except InputError as exc:
        status = 2
        if "--debug" in argv:
            raise
        print(f"{called} (fake): {exc}", file=sys.stderr)
    finally:
        _write_profile(called, argv, status)
    return status


def _write_profile(module: str, argv: list[str], status: int) -> None:
    """The step profile every module writes (stellarflow_contracts.profile), as this fake."""
    try:
        inputs, outdir, _ = parse(module, argv)
    except (InputError, SystemExit):
        return
    profile.write(module="fake_module", version=__version__, exit_status=status, outdir=outdir,
                  inputs=list(inputs.items()), extra={"fake_of": module})


if __name__ == "__main__":
    raise SystemExit(main())
