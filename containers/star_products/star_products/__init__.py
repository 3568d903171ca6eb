"""Per-chunk products: a product HDF5 and a PNG per star, and the chunk's catalogue rows.

The product HDF5 is itself a light-curve contract file (root attrs star_id, cadence_s; group
/lightcurve holding the PREPARED light curve), plus /periodogram, /psd, /bls, /parameters (values
with uncertainties) and /provenance/<stage> (module, version, image, host) for every module.
``--lightcurve`` says how /lightcurve holds it: ``copy`` (the default) copies time, flux and
flux_err into the product; ``link`` makes them HDF5 external links into the prepared chunk file
(``--prepared``, named by its base name, so it must lie beside the product; root attr
``lightcurve_file``): the run then stores each light curve once. ``quality`` is in the product
either way.
A stage made by a contract-conformant fake (root attr ``fake_of`` of its chunk file) is marked
``fake = 1`` in the product's provenance and listed in the rows' ``fake_stages`` metadata.
A star whose products cannot be written becomes a failed row; the rest of the chunk goes on.

``--figures`` chooses which stars get a PNG (the figure is most of this module's cost on short
light curves): ``all`` (the default), ``notable`` (failed stars and transit candidates: what an
astronomer opens first) or ``none``. Every star still gets its product HDF5, which holds all the
figure's data. The stars left without a figure are listed in the rows' ``no_figure`` metadata,
so that the report links only figures that exist.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import h5py
import numpy as np

from stellarflow_contracts.catalogue import COLUMN_NAMES, FAKE_STAGES_META, make_table
from stellarflow_contracts.chunk import (
    STATUS_FAILED,
    STATUS_OK,
    attr_float,
    attr_str,
    module_main,
    one_line,
    open_chunk,
    open_chunks,
    provenance,
    quiet_numerics,
    star_ids,
    write_dataset,
)
from stellarflow_contracts.errors import InputError
from stellarflow_contracts.pool import StarPool

MODULE = "star_products"
__version__ = "1.3.0"
FIGURES = ("all", "notable", "none")
LIGHTCURVES = ("copy", "link")
LIGHTCURVE_FILE = "lightcurve_file"  # product root attr: the file its light curve links into
NO_FIGURE_META = "no_figure"  # rows metadata: star ids without a PNG (read by the catalogue)
STAGES = ("lightcurves", "prepared", "rotation", "seismology", "parameters", "transit")

# (product /parameters name, stage, attr, error attr, unit)
PARAMETERS = [
    ("prot_d", "rotation", "prot_d", "prot_err_d", "d"),
    ("activity_sph_ppm", "rotation", "activity_sph_ppm", None, "ppm"),
    ("numax_uhz", "seismology", "numax_uhz", "numax_err_uhz", "uHz"),
    ("dnu_uhz", "seismology", "dnu_uhz", "dnu_err_uhz", "uHz"),
    ("radius_rsun", "parameters", "radius_rsun", "radius_err_rsun", "solRad"),
    ("mass_msun", "parameters", "mass_msun", "mass_err_msun", "solMass"),
    ("age_gyr", "parameters", "age_gyr", "age_err_gyr", "Gyr"),
    ("transit_period_d", "transit", "transit_period_d", "transit_period_err_d", "d"),
    ("transit_t0_d", "transit", "transit_t0_d", "transit_t0_err_d", "d"),
    ("transit_depth_ppm", "transit", "transit_depth_ppm", "transit_depth_err_ppm", "ppm"),
    ("transit_duration_h", "transit", "transit_duration_h", None, "h"),
    ("transit_snr", "transit", "transit_snr", None, ""),
    ("planet_radius_rearth", "transit", "planet_radius_rearth", "planet_radius_err_rearth",
     "earthRad"),
]
PROVENANCE_KEYS = ("module", "module_version", "contracts_version", "image", "image_digest",
                   "runtime", "host", "created_utc")


def _star(files: dict[str, h5py.File], stage: str, sid: str) -> h5py.Group | None:
    f = files.get(stage)
    return f["stars"][sid] if f is not None and sid in f["stars"] else None


def _value(g: h5py.Group | None, key: str | None) -> float:
    return attr_float(g, key) if g is not None and key else math.nan


def star_status(groups: dict[str, h5py.Group | None]) -> tuple[str, str]:
    for stage in STAGES:
        g = groups.get(stage)
        if g is not None and attr_str(g, "status", STATUS_OK) == STATUS_FAILED:
            return STATUS_FAILED, attr_str(g, "error")
    return STATUS_OK, ""


def write_product(path: Path, sid: str, observation_id: str, status: str, error: str,
                  groups: dict[str, h5py.Group | None], files: dict[str, h5py.File],
                  link: str | None = None) -> None:
    """``link``: the prepared chunk file's base name, to link the light curve into (else it is
    copied)."""
    prep = groups.get("prepared")
    if status == STATUS_OK and (prep is None or "prepared" not in prep):
        raise InputError(None, "prepared: no prepared light curve for this star (chunk contract)")
    with h5py.File(path, "w") as f:
        f.attrs["star_id"] = sid
        f.attrs["observation_id"] = observation_id
        f.attrs["status"] = status
        f.attrs["error"] = error
        f.attrs["cadence_s"] = _value(prep, "cadence_s")
        for key in ("teff", "logg", "feh"):
            f.attrs[key] = _value(prep, key)
        if status == STATUS_OK and prep is not None and "prepared" in prep:
            lc = f.create_group("lightcurve")
            lc.attrs["description"] = "prepared light curve (MSAP1): relative flux, median 1"
            n = prep["prepared/time"].shape[0]
            for name, units in (("time", "d"), ("flux", ""), ("flux_err", "")):
                src = prep["prepared"][name]
                if link is None:
                    write_dataset(lc, name, src[()], units)
                    continue
                if "units" not in src.attrs:  # a link shows the target's attrs, not ours
                    raise InputError(None, f"prepared: {name} has no units (chunk contract)")
                lc[name] = h5py.ExternalLink(link, src.name)
            write_dataset(lc, "quality", np.zeros(n, np.uint32), "")
            if link is not None:
                f.attrs[LIGHTCURVE_FILE] = link
        for stage, group in (("rotation", "periodogram"), ("seismology", "psd"),
                             ("transit", "bls")):
            g = groups.get(stage)
            if g is not None and group in g:
                g.copy(g[group], f, name=group)
        par = f.create_group("parameters")
        for name, stage, key, err_key, unit in PARAMETERS:
            g = groups.get(stage)
            d = par.create_dataset(name, data=np.array([_value(g, key), _value(g, err_key)]))
            d.attrs["columns"] = "value, uncertainty"
            d.attrs["units"] = unit
            d.attrs["from"] = stage
        method = groups.get("parameters")
        par.attrs["parameters_method"] = attr_str(method, "parameters_method") if method else ""
        prov = f.create_group("provenance")
        for stage, src in files.items():
            p = prov.create_group(stage)
            for key in PROVENANCE_KEYS:
                if key in src.attrs:
                    p.attrs[key] = attr_str(src, key)
            if "fake_of" in src.attrs:
                p.attrs["fake"] = 1
                p.attrs["fake_of"] = attr_str(src, "fake_of")
            g = groups.get(stage)
            p.attrs["cpu_s"] = _value(g, "cpu_s")
        own = prov.create_group("star_products")  # this module wrote the product itself
        for key, value in provenance(MODULE, __version__).items():
            own.attrs[key] = value


@functools.cache
def load_matplotlib() -> tuple[type, type]:
    """matplotlib's Agg canvas and Figure (imported on first use: a run without figures never
    pays for it; set up once per process)."""
    # CWL sets HOME to the job's output folder: keep matplotlib's font cache out of it and
    # shared between jobs (container images set MPLCONFIGDIR to a cache built at image build).
    os.environ.setdefault("MPLCONFIGDIR", os.path.join("/tmp", f"stellarflow-mpl-{os.getuid()}"))
    built = Path(os.environ["MPLCONFIGDIR"])
    if built.is_dir() and not os.access(built, os.W_OK):
        # A read-only image: matplotlib would ignore the cache built into it and rebuild the
        # font list at every step (seconds). A writable copy of it is used instead.
        private = Path(tempfile.mkdtemp(prefix="stellarflow-mpl-"))
        for cached in built.glob("fontlist-*.json"):
            shutil.copy2(cached, private / cached.name)
        os.environ["MPLCONFIGDIR"] = str(private)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return FigureCanvasAgg, Figure


def plot_star(path: Path, sid: str, status: str, error: str,
              groups: dict[str, h5py.Group | None]) -> None:
    """Light curve, rotation periodogram, PSD and folded transit in one PNG."""
    FigureCanvasAgg, Figure = load_matplotlib()
    fig = Figure(figsize=(11, 7), dpi=72)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    fig.suptitle(f"{sid} — {status}" + (f": {error[:90]}" if error else ""), fontsize=10)
    prep = groups.get("prepared")
    if prep is not None and "prepared" in prep:
        t = prep["prepared/time"][()]
        f = (prep["prepared/flux"][()] - 1.0) * 1e6
        step = max(1, t.size // 20000)
        ax = axes[0, 0]
        ax.plot(t[::step], f[::step], ",", color="0.5")
        ax.set_xlabel("time (BJD_TDB − 2457000)")
        ax.set_ylabel("flux (ppm)")
        ax.set_title("prepared light curve", fontsize=9)
        tr = groups.get("transit")
        period, t0 = _value(tr, "transit_period_d"), _value(tr, "transit_t0_d")
        ax = axes[1, 1]
        if np.isfinite(period) and np.isfinite(t0):
            phase_h = ((t - t0 + 0.5 * period) % period - 0.5 * period) * 24.0
            win = np.abs(phase_h) < max(3 * _value(tr, "transit_duration_h"), 3.0)
            ax.plot(phase_h[win], f[win], ",", color="0.5")
            ax.set_title(f"folded at P = {period:.5f} d", fontsize=9)
        else:
            ax.set_title("no transit detected", fontsize=9)
        ax.set_xlabel("hours from mid-transit")
    rot = groups.get("rotation")
    ax = axes[0, 1]
    if rot is not None and "periodogram" in rot:
        ax.plot(rot["periodogram/period_d"][()], rot["periodogram/power"][()], lw=0.7)
        ax.set_xscale("log")
        prot = _value(rot, "prot_d")
        if np.isfinite(prot):
            ax.axvline(prot, color="C3", lw=0.8)
        ax.set_title(f"rotation periodogram, Prot = {prot:.2f} d", fontsize=9)
        ax.set_xlabel("period (d)")
    seis = groups.get("seismology")
    ax = axes[1, 0]
    if seis is not None and "psd" in seis:
        ax.loglog(seis["psd/frequency_uhz"][()], seis["psd/psd_ppm2_per_uhz"][()], lw=0.5,
                  color="0.4")
        if "background_ppm2_per_uhz" in seis["psd"]:
            ax.loglog(seis["psd/frequency_uhz"][()], seis["psd/background_ppm2_per_uhz"][()],
                      color="C1", lw=0.8)
        numax = _value(seis, "numax_uhz")
        if np.isfinite(numax):
            ax.axvline(numax, color="C3", lw=0.8)
        ax.set_title(f"PSD, νmax = {numax:.0f} µHz, Δν = {_value(seis, 'dnu_uhz'):.2f} µHz",
                     fontsize=9)
        ax.set_xlabel("frequency (µHz)")
    else:
        ax.set_title("seismology not run (no solar-like excess expected)", fontsize=9)
    # Fixed margins: tight_layout measured every tick label first, half the figure's cost.
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.075, top=0.91, wspace=0.18,
                        hspace=0.32)
    fig.savefig(path)


def wants_figure(figures: str, status: str, groups: dict[str, h5py.Group | None]) -> bool:
    """Whether this star gets a PNG under ``--figures``."""
    if figures == "all":
        return True
    if figures == "none":
        return False
    return status == STATUS_FAILED or np.isfinite(_value(groups.get("transit"),
                                                          "transit_period_d"))


def product_of_star(files: dict[str, h5py.File], sid: str, observation_id: str, figures: str,
                    outdir: Path, link: str | None = None) -> tuple[dict, bool]:
    """Write one star's product HDF5 (and PNG); return its catalogue row and whether it has a
    PNG. A star whose products cannot be written becomes a failed row. ``link``: as in
    write_product."""
    t0 = time.process_time()
    groups = {stage: _star(files, stage, sid) for stage in STAGES}
    status, error = star_status(groups)
    product, figure = outdir / f"{sid}.product.h5", outdir / f"{sid}.png"
    with quiet_numerics():
        try:
            write_product(product, sid, observation_id, status, error, groups, files, link)
            if wants_figure(figures, status, groups):
                plot_star(figure, sid, status, error, groups)
        except Exception as exc:  # one failing star never fails its chunk
            status, error = STATUS_FAILED, f"{MODULE}: {one_line(exc)}"
            figure.unlink(missing_ok=True)
            write_product(product, sid, observation_id, status, error, {}, files)
            if wants_figure(figures, status, {}):
                plot_star(figure, sid, status, error, {})
    row = {name: math.nan for name in COLUMN_NAMES}
    row.update(star_id=sid, status=status, error=error)
    for name, stage, key, _, _ in PARAMETERS:
        if name in row:
            row[name] = _value(groups.get(stage), key)
    upstream_cpu = sum(_value(g, "cpu_s") for g in groups.values()
                       if g is not None and np.isfinite(_value(g, "cpu_s")))
    row["cpu_s"] = upstream_cpu + (time.process_time() - t0)
    return row, figure.exists()


def build_products(inputs: dict[str, Path | None], outdir: Path, figures: str = "all",
                   lightcurve: str = "copy") -> Path:
    if figures not in FIGURES:
        raise InputError(None, f"--figures must be one of {', '.join(FIGURES)}, got {figures!r}")
    if lightcurve not in LIGHTCURVES:
        raise InputError(None, f"--lightcurve must be one of {', '.join(LIGHTCURVES)}, got "
                               f"{lightcurve!r}")
    prepared = inputs.get("prepared")
    if prepared is None:
        raise InputError(None, "no prepared chunk file given")
    # A relative name: HDF5 looks for it in the product's own folder, wherever that goes.
    link = Path(prepared).name if lightcurve == "link" else None

    with open_chunk(inputs["prepared"]) as f:  # closed again before the workers are forked
        chunk_id = attr_str(f, "chunk_id")
        observation_id = attr_str(f, "observation_id")
        ids = star_ids(f)
    if figures != "none":
        load_matplotlib()  # once, before the workers are forked: they share it

    def one_star(files: dict[str, h5py.File], sid: str) -> tuple[dict, bool]:
        return product_of_star(files, sid, observation_id, figures, outdir, link)

    with StarPool(one_star, lambda: open_chunks(inputs, ExitStack()), len(ids)) as stars_pool, \
            ExitStack() as stack:
        files = open_chunks(inputs, stack)
        done = dict(stars_pool.map(ids, files))
        prov = provenance(MODULE, __version__)
        fakes = sorted(attr_str(f, "fake_of") for f in files.values() if "fake_of" in f.attrs)
    rows = [done[sid][0] for sid in ids]
    no_figure = [sid for sid in ids if not done[sid][1]]
    table = make_table(rows)
    table.meta.update({"chunk_id": chunk_id, "observation_id": observation_id,
                       "star_products": prov, FAKE_STAGES_META: fakes,
                       NO_FIGURE_META: no_figure})
    out = outdir / f"{chunk_id}.rows.ecsv"
    table.write(out, format="ascii.ecsv", overwrite=True)
    write_rows_summary(rows, chunk_id, outdir)
    return out


def write_rows_summary(rows: list[dict], chunk_id: str, outdir: Path) -> Path:
    """``<chunk_id>.rows.summary.json``: the rows without timings (see the contracts library)."""
    def number(v: float) -> float | None:
        return float(f"{v:.4g}") if np.isfinite(v) else None

    star = {r["star_id"]: {"status": r["status"], "error": r["error"],
                           "row": {k: number(v) for k, v in r.items()
                                   if k not in ("star_id", "status", "error", "cpu_s")}}
            for r in rows}
    counts = {"total": len(rows), STATUS_OK: sum(r["status"] == STATUS_OK for r in rows)}
    counts[STATUS_FAILED] = counts["total"] - counts[STATUS_OK]
    path = outdir / f"{chunk_id}.rows.summary.json"
    path.write_text(json.dumps({"chunk_id": chunk_id, "stage": "rows", "module": MODULE,
                                "module_version": __version__, "stars": counts, "star": star},
                               indent=1, ensure_ascii=False) + "\n")
    return path


def _args(p: argparse.ArgumentParser) -> None:
    for stage in STAGES:
        p.add_argument(f"--{stage}", type=Path, required=stage not in ("seismology",),
                       help=f"chunk file from the {stage} stage")
    p.add_argument("--figures", choices=FIGURES, default="all",
                   help="which stars get a PNG: all (default), notable (failed stars and "
                        "transit candidates) or none; every star gets its product HDF5")
    p.add_argument("--lightcurve", choices=LIGHTCURVES, default="copy",
                   help="copy (default): the product holds the prepared light curve; link: its "
                        "time, flux and flux_err are HDF5 external links into the --prepared "
                        "file, which must then lie beside the products")


def _run(args: argparse.Namespace) -> None:
    build_products({stage: getattr(args, stage) for stage in STAGES}, args.outdir,
                   figures=args.figures, lightcurve=args.lightcurve)


def main(argv: list[str] | None = None) -> int:
    return module_main(argv, module=MODULE, version=__version__,
                       description="Per-star product HDF5 and PNG, and the chunk's catalogue rows",
                       add_arguments=_args, run=_run)


if __name__ == "__main__":
    raise SystemExit(main())
