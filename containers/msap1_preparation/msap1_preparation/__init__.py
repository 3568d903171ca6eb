"""MSAP1 light-curve preparation: quality mask, sigma clipping, gaps, detrending, normalisation.

The prepared light curve keeps what later stages measure: oscillations (minutes), transits
(hours) and rotation (days). Detrending is therefore gentle: each segment between long gaps is
divided by its own linear trend, which removes instrumental offsets and drifts between
segments but not stellar signals shorter than the segment.

A star that ingest left in its input file (``lightcurve_in_input``, contracts 1.3.0) is read
from that file, found through the chunk record (``--chunk-file``, the record ingest was given).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from astropy.stats import mad_std, sigma_clip

from stellarflow_contracts import lightcurve, profile, solar
from stellarflow_contracts.chunk import (
    StarContext,
    attr_float,
    module_main,
    open_chunk,
    run_chunk,
    star_ids,
    write_dataset,
)

MODULE = "msap1_preparation"
__version__ = "1.2.0"

SEGMENT_GAP_D = 0.5  # a gap longer than this starts a new detrending segment
CLIP_SIGMA_UPPER = 4.0  # cosmic rays and unflagged outliers are upward; transits are not clipped
CLIP_WINDOW_D = 1.0 / 24.0  # running reference for the clipping residuals
TEFF_MAX_SOLAR_LIKE_K = 7000.0  # hotter stars have no convective envelope to drive p modes


@dataclass
class Prepared:
    time: np.ndarray
    flux: np.ndarray  # relative, median 1
    flux_err: np.ndarray
    n_input: int
    n_quality_masked: int
    n_nonfinite: int
    n_clipped: int
    n_gaps: int
    n_segments: int
    rms_ppm: float


def _segments(time: np.ndarray, gap_d: float) -> list[slice]:
    breaks = np.flatnonzero(np.diff(time) > gap_d) + 1
    edges = np.concatenate(([0], breaks, [time.size]))
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _binned_reference(time: np.ndarray, flux: np.ndarray, width_d: float) -> np.ndarray:
    """Median of flux in bins of width_d, interpolated back onto time (a cheap running median).

    ``time`` must be sorted."""
    idx = np.floor((time - time[0]) / width_d).astype(np.int64)
    uniq, starts = np.unique(idx, return_index=True)
    ends = np.append(starts[1:], idx.size)
    meds = np.array([np.median(flux[s:e]) for s, e in zip(starts, ends, strict=True)])
    centres = time[0] + (uniq + 0.5) * width_d
    return np.interp(time, centres, meds)


def prepare(lc: lightcurve.LightCurve) -> Prepared:
    """Turn a contract light curve into the prepared, normalised light curve."""
    n_input = lc.time.size
    finite = np.isfinite(lc.time) & np.isfinite(lc.flux)
    flagged = lc.quality != 0
    good = finite & ~flagged
    if good.sum() < 10:
        raise ValueError(f"only {int(good.sum())} finite samples with quality 0 "
                         "(all-NaN or all-flagged flux)")
    order = np.argsort(lc.time[good], kind="stable")
    t = lc.time[good][order]
    f = lc.flux[good][order]
    e = lc.flux_err[good][order]
    cadence_d = (lc.cadence_s if np.isfinite(lc.cadence_s) and lc.cadence_s > 0
                 else np.median(np.diff(t)) * 86400.0) / 86400.0
    n_gaps = int(np.count_nonzero(np.diff(t) > 10 * cadence_d))

    rel = np.empty_like(f)
    rel_err = np.empty_like(e)
    segments = _segments(t, SEGMENT_GAP_D)
    for seg in segments:
        ts, fs = t[seg], f[seg]
        level = np.median(fs)
        if not np.isfinite(level) or level == 0:
            raise ValueError("flux median is zero or not finite in a segment")
        if ts.size > 20 and ts[-1] - ts[0] > 1.0:
            coef = np.polyfit(ts - ts[0], fs / level, 1)
            trend = level * np.polyval(coef, ts - ts[0])
        else:
            trend = np.full_like(fs, level)
        rel[seg] = fs / trend
        rel_err[seg] = e[seg] / trend

    resid = rel - _binned_reference(t, rel, CLIP_WINDOW_D)
    clipped = sigma_clip(resid, sigma_upper=CLIP_SIGMA_UPPER, sigma_lower=1e9, maxiters=5,
                         cenfunc="median", stdfunc="mad_std")
    keep = ~np.ma.getmaskarray(clipped)
    t, rel, rel_err = t[keep], rel[keep], rel_err[keep]
    rel /= np.median(rel)
    # Missing errors: the point-to-point scatter is an honest per-point noise estimate.
    bad_err = ~np.isfinite(rel_err) | (rel_err <= 0)
    if bad_err.any():
        p2p = float(mad_std(np.diff(rel)) / math.sqrt(2.0))
        rel_err[bad_err] = p2p if np.isfinite(p2p) and p2p > 0 else 1e-3
    return Prepared(
        time=t, flux=rel, flux_err=rel_err, n_input=int(n_input),
        n_quality_masked=int(np.count_nonzero(flagged)),
        n_nonfinite=int(np.count_nonzero(~finite)),
        n_clipped=int(np.count_nonzero(~keep)), n_gaps=n_gaps, n_segments=len(segments),
        rms_ppm=float(mad_std(rel - 1.0) * 1e6),
    )


def numax_guess(teff: float, logg: float) -> float:
    """Scaling-relation νmax (µHz) from Teff and log g; NaN when either is unknown. MSAP3
    uses it only to rank candidates (a prior), never to narrow its search."""
    return solar.numax_from_logg(teff, logg)


def seismic_candidate(teff: float, logg: float, cadence_s: float) -> bool:
    """Whether MSAP3 should look for a solar-like power excess: every star cool enough to
    have a convective envelope (or of unknown Teff). log g does not decide it: a catalogue
    log g may be wrong by a whole evolutionary state, and MSAP3 searches from ~5 µHz (red
    giants) up to its Nyquist limit whatever the log g says."""
    return not (np.isfinite(teff) and teff > TEFF_MAX_SOLAR_LIKE_K)


def process(ctx: StarContext, sources: dict[str, list[str]] | None = None) -> None:
    src = ctx.need("lightcurves")
    lc = lightcurve.read_chunk_star(src, ctx.star_id, sources)
    prep = prepare(lc)
    out = ctx.out
    teff, logg, feh = (attr_float(src, k) for k in ("teff", "logg", "feh"))
    for key, value in (("teff", teff), ("logg", logg), ("feh", feh)):
        out.attrs[key] = value
    out.attrs["cadence_s"] = float(lc.cadence_s)
    for key in ("n_input", "n_quality_masked", "n_nonfinite", "n_clipped", "n_gaps",
                "n_segments", "rms_ppm"):
        out.attrs[key] = getattr(prep, key)
    out.attrs["numax_guess_uhz"] = numax_guess(teff, logg)
    out.attrs["seismic_candidate"] = int(seismic_candidate(teff, logg, lc.cadence_s))
    g = out.create_group("prepared")
    write_dataset(g, "time", prep.time, "d")
    write_dataset(g, "flux", prep.flux, "")
    write_dataset(g, "flux_err", prep.flux_err, "")


def _count_candidates(fout: h5py.File) -> None:
    n = sum(int(g.attrs.get("seismic_candidate", 0)) for g in fout["stars"].values()
            if g.attrs.get("status") == "ok")
    fout.attrs["n_seismic_candidates"] = n


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lightcurves", type=Path, required=True, help="chunk file from ingest")
    p.add_argument("--chunk-file", type=Path,
                   help="the chunk record ingest was given (JSON): where the stars that ingest "
                        "left in their input files (lightcurve_in_input) are read")


def read_sources(chunk_file: Path | None, lightcurves: Path) -> dict[str, list[str]]:
    """Star id -> input files, from the chunk record; the files read for referred stars are
    noted as the step's inputs (its profile, for the lineage)."""
    if chunk_file is None:
        return {}
    sources = lightcurve.chunk_file_sources(chunk_file)
    with open_chunk(lightcurves) as f:
        for sid in star_ids(f):
            if sid in f["stars"] and lightcurve.is_reference(f["stars"][sid]):
                for path in sources.get(sid, []):
                    profile.note_input(path, "lightcurve", sid)
    return sources


def _run(args: argparse.Namespace) -> None:
    sources = read_sources(args.chunk_file, args.lightcurves)
    out = run_chunk(module=MODULE, version=__version__, stage="prepared",
                    inputs={"lightcurves": args.lightcurves}, primary="lightcurves",
                    outdir=args.outdir, process=functools.partial(process, sources=sources),
                    finish=_count_candidates)
    # A small JSON beside the chunk so the workflow can decide whether MSAP3 runs (CWL `when`).
    with h5py.File(out, "r") as f:
        n = int(f.attrs["n_seismic_candidates"])
        chunk_id = str(f.attrs["chunk_id"])
    (args.outdir / f"{chunk_id}.msap1.json").write_text(json.dumps({"n_seismic_candidates": n}))


def main(argv: list[str] | None = None) -> int:
    return module_main(argv, module=MODULE, version=__version__,
                       description="MSAP1: prepare light curves (mask, clip, detrend, normalise)",
                       add_arguments=_args, run=_run)


if __name__ == "__main__":
    raise SystemExit(main())
