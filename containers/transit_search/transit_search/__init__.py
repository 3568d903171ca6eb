"""Transit search and characterisation (box least squares).

Science (``search``): the relative light curve is binned to 10 min and flattened by a robust
local quartic fit over a 0.75-d window (iterated: bins more than 4 sigma below the trend, with
30 min either side, and 5-sigma flares are left out of the fit, so transits are not eaten by it
while spot signals down to ~1-d periods are followed to better than 1 %; a running median of
that width leaves 10-60 % of such spot signals behind, which then fold into false transits).
astropy's BoxLeastSquares then searches periods 0.5 d .. baseline/2 on a grid uniform in
log-period (phase drift over the baseline <= 1/3 of the shortest box) with boxes of 1-10 h,
at most 12 % of the period. The best peak with >= 2 observed transits is refined on a fine
grid, the trend is recomputed with those transits masked (window >= 3x the masked width) and
period, duration and epoch are refined once more on the unbinned samples.

Detection needs all of
- SNR = depth * sqrt(N_transits) / sigma_D >= ``SNR_MIN``, sigma_D being the robust scatter of
  the out-of-transit flattened light curve averaged over one transit duration: red noise and
  spot residuals on that time scale count, not just white noise (Pont et al. 2006);
- SDE = (peak - mean) / std of the BLS spectrum (its slow rise with period removed)
  >= ``SDE_MIN``: the peak must stand out of the whole periodogram;
- N_transits >= 2, and a box fitting better than a sinusoid at that period (astropy's
  harmonic_delta_log_likelihood <= 0: rejects spot residuals and pulsations).
60 d of 25-s photometry reaches a few ppm per hour, so noise maxima of the search are high:
over 100 simulated quiet stars (white 100-300 ppm, AR(1) red noise up to 200 ppm with 0.05-1 d
time scales, spots with 1-20 d periods and 0.03-1 % amplitudes) box-like best peaks reached
SNR 15 or SDE 10.2 but never both, hence SNR_MIN = 12 and SDE_MIN = 10; four fast rotators
(Prot 1-2.4 d) passed both at Prot/k and were rejected by the sine test alone.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from astropy.timeseries import BoxLeastSquares

from stellarflow_contracts.chunk import (
    NotMeasurable,
    StarContext,
    attr_float,
    module_main,
    run_chunk,
    write_dataset,
)
from stellarflow_contracts.errors import InputError
from stellarflow_contracts.timeseries import (
    bin_lightcurve,
    downsample,
    finite_sorted,
    mad_std,
    running_median,
)

MODULE = "transit_search"
__version__ = "1.0.0"
BLS_STORED = 5000  # BLS spectrum points kept in the chunk file (peaks survive)

BIN_D = 10.0 / 1440.0  # 10-min bins: >= 6 samples in the shortest searched transit
DETREND_WINDOW_D = 0.75
PMIN_D = 0.5
DURATIONS_H = (1.0, 1.5, 2.0, 3.0, 4.5, 6.5, 10.0)
PHASE_OVERSAMPLE = 3.0  # log-period step: drift over the baseline <= shortest duration / this
SNR_MIN = 12.0  # calibrated on simulated quiet stars (see the module docstring)
SDE_MIN = 10.0
DUTY_MAX = 0.12  # longest box tried, as a fraction of the period (Sun-like star at 0.5 d: 0.1)
FLARE_NSIGMA = 5.0  # bins this far above the trend (flares, hits) are dropped before the search
DIP_NSIGMA = 4.0  # bins this far below the trend are kept out of it (transits)
DIP_PAD = 3  # ... with this many bins either side (ingress/egress)
R_EARTH_PER_R_SUN = 109.08


@dataclass
class TransitResult:
    detected: bool
    period_d: float
    t0_d: float  # first transit mid-time inside the data, input time system
    depth_ppm: float
    duration_h: float
    snr: float
    sde: float
    n_transits: int
    planet_radius_rearth: float
    planet_radius_err_rearth: float
    depth_err_ppm: float
    # the best peak whatever the thresholds said
    candidate_period_d: float
    candidate_t0_d: float
    candidate_depth_ppm: float
    candidate_duration_h: float
    candidate_snr: float
    candidate_sde: float
    candidate_n_transits: int
    odd_even_mismatch_sigma: float
    sine_preference: float  # harmonic_delta_log_likelihood of astropy's compute_stats
    bls_period_d: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    bls_power: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def local_poly_trend(values: np.ndarray, mask: np.ndarray, half: int) -> np.ndarray:
    """Local polynomial (box window of +-``half`` samples) smooth of a regular series,
    evaluated at each sample, ignoring masked/NaN samples. Degree 4 where the window has data
    on both sides (follows spot signals of ~1 d periods to < 1 %, as a running median does
    not), linear near edges and gaps where a quartic would extrapolate wildly."""
    m = (~mask & np.isfinite(values)).astype(np.float64)
    y = np.where(m > 0, values, 0.0)
    u = np.arange(-half, half + 1) / half

    def corr(x: np.ndarray, k: np.ndarray) -> np.ndarray:
        return np.convolve(x, k[::-1], mode="same")

    mom = np.stack([corr(m, u ** k) for k in range(9)], axis=-1)  # sum m u^k, k=0..8
    rhs = np.stack([corr(m * y, u ** k) for k in range(5)], axis=-1)
    left = corr(m, (u < 0).astype(np.float64))
    right = corr(m, (u > 0).astype(np.float64))
    two_sided = np.minimum(left, right) >= 0.3 * half

    trend = np.full(values.size, np.nan)
    two = np.flatnonzero(two_sided)
    if two.size:
        idx = np.arange(5)
        a = mom[two][:, idx[:, None] + idx[None, :]]
        coef = _solve(a, rhs[two])
        trend[two] = coef[:, 0]
        # near edges and gaps: the nearest full window's polynomial, evaluated off-centre
        # (as Savitzky-Golay does at the ends), when one lies within reach
        one = np.flatnonzero(~two_sided & (m > 0) | ~two_sided & (mom[:, 0] >= 3))
        if one.size:
            pos = np.clip(np.searchsorted(two, one), 1, two.size - 1) if two.size > 1 else 0
            cand = np.stack([two[np.maximum(pos - 1, 0)], two[np.minimum(pos, two.size - 1)]])
            near = np.where(np.abs(cand[0] - one) <= np.abs(cand[1] - one), cand[0], cand[1])
            ok = np.abs(near - one) <= half
            k = np.searchsorted(two, near[ok])
            du = (one[ok] - near[ok]) / half
            trend[one[ok]] = np.sum(coef[k] * du[:, None] ** np.arange(5), axis=1)
    # what no full window reaches (segments shorter than ~0.6 window): local linear fit
    rest = ~np.isfinite(trend) & (mom[:, 0] >= 3)
    if rest.any():
        idx = np.arange(2)
        a = mom[rest][:, idx[:, None] + idx[None, :]]
        trend[rest] = _solve(a, rhs[rest][:, :2])[:, 0]
    return trend


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        try:
            return np.linalg.solve(a, b[..., None])[..., 0]
        except np.linalg.LinAlgError:  # a singular window somewhere: least squares each
            return np.array([np.linalg.lstsq(ai, bi, rcond=None)[0]
                             for ai, bi in zip(a, b, strict=True)])


def flatten(binned: np.ndarray, mask: np.ndarray | None = None, iterations: int = 3,
            window_d: float = DETREND_WINDOW_D) -> tuple[np.ndarray, np.ndarray]:
    """Binned flux minus a robust local-polynomial trend. Dips below ``DIP_NSIGMA`` and
    flares above ``FLARE_NSIGMA`` (robust sigma) are left out of the trend and the fit is
    repeated, so transits deep enough to matter are not eaten by the filter; ``mask`` (True =
    known transit) is left out from the start. Returns (residual, trend); flares come back as
    NaN residuals."""
    half = int(round(window_d / 2 / BIN_D))
    base = ~np.isfinite(binned)
    if mask is not None:
        base = base | mask
    cur = base.copy()
    flares = np.zeros(binned.size, dtype=bool)
    for _ in range(iterations):
        trend = local_poly_trend(binned, cur, half)
        bad = ~np.isfinite(trend)
        if bad.all():
            raise ValueError("no data to detrend")
        if bad.any():
            idx = np.arange(trend.size)
            trend[bad] = np.interp(idx[bad], idx[~bad], trend[~bad])
        resid = binned - trend
        sigma = mad_std(resid[~cur])
        dips = resid < -DIP_NSIGMA * sigma
        dips = np.convolve(dips, np.ones(2 * DIP_PAD + 1), mode="same") > 0
        flares = resid > FLARE_NSIGMA * sigma
        cur = base | dips | flares
    resid = binned - trend
    resid[flares] = np.nan
    return resid, trend


def _period_grid(baseline: float) -> np.ndarray:
    dlnp = min(DURATIONS_H) / 24.0 / (PHASE_OVERSAMPLE * baseline)
    return np.exp(np.arange(math.log(PMIN_D), math.log(baseline / 2.0), dlnp))


def _sde(power: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Signal detection efficiency per period, after removing the spectrum's slow rise with
    period (fewer transits at long periods) with a wide running median."""
    width = max(51, (power.size // 50) | 1)
    trend = running_median(power, width)
    flat = power - trend
    return (flat - np.mean(flat)) / np.std(flat)


def _transit_count(t: np.ndarray, period: float, t0: float, duration: float) -> int:
    """Number of distinct transit epochs with at least one sample inside the transit."""
    phase = (t - t0 + 0.5 * period) % period - 0.5 * period
    inside = np.abs(phase) < 0.5 * duration
    return int(np.unique(np.round((t[inside] - t0) / period)).size)


def _first_epoch(t0: float, period: float, tmin: float, duration: float) -> float:
    return t0 + math.ceil((tmin - 0.5 * duration - t0) / period) * period


def _in_transit(t: np.ndarray, period: float, t0: float, width: float) -> np.ndarray:
    return np.abs((t - t0 + 0.5 * period) % period - 0.5 * period) < 0.5 * width


def _snr(t: np.ndarray, resid: np.ndarray, period: float, t0: float, duration: float,
         depth: float, n_tr: int) -> tuple[float, float]:
    """(SNR, depth error) with sigma_D = robust scatter of out-of-transit residuals averaged
    in bins of one transit duration."""
    oot = ~_in_transit(t, period, t0, 2.0 * duration) & np.isfinite(resid)
    if oot.sum() < 20 or n_tr < 1:
        return float("nan"), float("nan")
    idx = np.floor((t[oot] - t[oot][0]) / duration).astype(np.int64)
    cnt = np.bincount(idx)
    tot = np.bincount(idx, weights=resid[oot])
    full = cnt >= 0.5 * np.max(cnt)
    means = tot[full] / cnt[full]
    sigma_d = mad_std(means)
    if not np.isfinite(sigma_d) or sigma_d <= 0 or means.size < 10:
        return float("nan"), float("nan")
    err = sigma_d / math.sqrt(n_tr)
    return depth / err, err


def planet_radius(depth: float, depth_err: float, r_star: float, r_star_err: float
                  ) -> tuple[float, float]:
    """R_p = R* sqrt(depth) in Earth radii, error from depth and R* errors (first order)."""
    if not (np.isfinite(r_star) and r_star > 0 and np.isfinite(depth) and depth > 0):
        return float("nan"), float("nan")
    rp = r_star * math.sqrt(depth) * R_EARTH_PER_R_SUN
    rel_r = (r_star_err / r_star) if np.isfinite(r_star_err) and r_star_err >= 0 else 0.0
    rel_d = (0.5 * depth_err / depth) if np.isfinite(depth_err) else float("nan")
    return rp, rp * math.hypot(rel_r, rel_d)


def _bls_spectrum(bls: BoxLeastSquares, periods: np.ndarray, durations: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BLS power, best duration and mid-time per period, trying at each period only the
    durations up to DUTY_MAX of it (a 10-h box on a 0.5-d orbit would fit any wiggle)."""
    power = np.zeros(periods.size)
    dur = np.full(periods.size, np.nan)
    tt = np.full(periods.size, np.nan)
    for k in range(durations.size):
        lo = durations[k] / DUTY_MAX
        hi = durations[k + 1] / DUTY_MAX if k + 1 < durations.size else np.inf
        sel = (periods >= lo) & (periods < hi) if k else periods < hi
        if not sel.any():
            continue
        r = bls.power(periods[sel], durations[: k + 1], objective="likelihood",
                      method="fast", oversample=5)
        pw = np.asarray(r.power, dtype=np.float64)
        pw[~np.isfinite(pw) | (np.asarray(r.depth) <= 0)] = 0.0
        power[sel], dur[sel], tt[sel] = pw, r.duration, r.transit_time
    return power, dur, tt


def search(time_d: np.ndarray, flux_rel: np.ndarray, stellar_radius_rsun: float = float("nan"),
           stellar_radius_err_rsun: float = float("nan")) -> TransitResult:
    """Search a relative light curve (median ~1, days) for periodic transits."""
    nan = float("nan")
    t, f = finite_sorted(time_d, flux_rel, min_points=100)
    f = f / np.median(f) - 1.0
    centres, binned, count = bin_lightcurve(t, f, BIN_D)
    baseline = float(t.max() - t.min())
    if baseline / 2.0 <= PMIN_D * 1.1:
        raise NotMeasurable(f"baseline {baseline:.2f} d too short for a transit search "
                         f"(two transits of P >= {PMIN_D} d need > {2 * PMIN_D} d)")
    resid, _ = flatten(binned)
    sigma = mad_std(resid)
    good = np.isfinite(resid)
    tb, yb, nb = centres[good], resid[good], count[good]
    dy = sigma * np.sqrt(np.median(nb) / nb)

    durations = np.array(DURATIONS_H) / 24.0
    periods = _period_grid(baseline)
    bls = BoxLeastSquares(tb, yb, dy)
    power, dur_best, t_best = _bls_spectrum(bls, periods, durations)
    sde = _sde(power, periods)

    # Best peak that shows >= 2 transits in the data (a single dip aliases to long periods).
    best = None
    for i in np.argsort(power)[::-1][:50]:
        p, dur, tt = float(periods[i]), float(dur_best[i]), float(t_best[i])
        if _transit_count(tb, p, tt, dur) >= 2:
            best = int(i)
            break
    if best is None:
        best = int(np.argmax(power))
    p0, dur0, sde0 = float(periods[best]), float(dur_best[best]), float(sde[best])

    # Refine period and duration on a fine grid around the peak.
    step = periods[min(best + 1, periods.size - 1)] - periods[max(best - 1, 0)]
    fine_p = np.linspace(p0 - 1.5 * step, p0 + 1.5 * step, 121)
    fine_d = np.unique(np.clip(dur0 * np.linspace(0.6, 1.6, 11), 0.5 * durations[0],
                               DUTY_MAX * fine_p.min()))
    fres = bls.power(fine_p, fine_d, objective="likelihood", method="fast", oversample=20)
    j = int(np.nanargmax(fres.power))
    period, duration, tref = float(fine_p[j]), float(fres.duration[j]), float(fres.transit_time[j])

    # Trend again with the transits masked, so the filter does not eat them.
    # (a window of >= 3 masked widths keeps data on both sides of a long transit)
    width = min(1.5 * duration, 0.5 * period)
    mask = _in_transit(centres, period, tref, width)
    resid2, trend2 = flatten(binned, mask, window_d=max(DETREND_WINDOW_D, 3.0 * width))
    good2 = np.isfinite(resid2)
    tb2, yb2 = centres[good2], resid2[good2]

    # Final refinement and statistics on the unbinned samples (no 10-min rounding of t0).
    ibin = np.floor((t - t.min()) / BIN_D).astype(np.int64)
    keep_pts = good2[ibin]
    tu = t[keep_pts]
    yu = f[keep_pts] - np.interp(tu, centres, trend2)
    sig_u = mad_std(yu[~_in_transit(tu, period, tref, 2.0 * duration)])
    blsu = BoxLeastSquares(tu, yu, np.full(tu.size, sig_u))
    dstep = fine_p[1] - fine_p[0]
    up = np.linspace(period - 2 * dstep, period + 2 * dstep, 41)
    ud = np.unique(np.clip(duration * np.linspace(0.8, 1.25, 7), 0.5 * durations[0],
                           DUTY_MAX * up.min()))
    ures = blsu.power(up, ud, objective="likelihood", method="fast", oversample=30)
    k = int(np.nanargmax(ures.power))
    period, duration, tref = float(up[k]), float(ures.duration[k]), float(ures.transit_time[k])
    stats = blsu.compute_stats(period, duration, tref)
    depth = float(stats["depth"][0])
    n_tr = int(np.count_nonzero(np.asarray(stats["per_transit_count"]) > 0))
    snr, depth_err = _snr(tb2, yb2, period, tref, duration, depth, n_tr)
    d_odd, e_odd = (float(v) for v in stats["depth_odd"])
    d_even, e_even = (float(v) for v in stats["depth_even"])
    odd_even = abs(d_odd - d_even) / math.hypot(e_odd, e_even) if e_odd > 0 and e_even > 0 else nan
    t0 = _first_epoch(tref, period, float(t.min()), duration)
    # > 0: a sinusoid at this period fits better than a box (spot residuals, pulsations)
    sine_pref = float(stats["harmonic_delta_log_likelihood"])

    detected = bool(n_tr >= 2 and np.isfinite(snr) and snr >= SNR_MIN and sde0 >= SDE_MIN
                    and depth > 0 and not sine_pref > 0)
    rp, rp_err = planet_radius(depth, depth_err, stellar_radius_rsun, stellar_radius_err_rsun)
    order = np.argsort(periods)

    def keep(x: float) -> float:
        return x if detected else nan

    return TransitResult(
        detected=detected,
        period_d=keep(period), t0_d=keep(t0), depth_ppm=keep(depth * 1e6),
        duration_h=keep(duration * 24.0), snr=keep(snr), sde=keep(sde0),
        n_transits=n_tr if detected else 0,
        planet_radius_rearth=keep(rp), planet_radius_err_rearth=keep(rp_err),
        depth_err_ppm=keep(depth_err * 1e6),
        candidate_period_d=period, candidate_t0_d=t0, candidate_depth_ppm=depth * 1e6,
        candidate_duration_h=duration * 24.0, candidate_snr=snr, candidate_sde=sde0,
        candidate_n_transits=n_tr, odd_even_mismatch_sigma=odd_even, sine_preference=sine_pref,
        bls_period_d=periods[order], bls_power=power[order],
    )


def _stellar_radius(group: h5py.Group | None) -> tuple[float, float]:
    if group is None:
        return float("nan"), float("nan")
    return attr_float(group, "radius_rsun"), attr_float(group, "radius_err_rsun")


def process(ctx: StarContext) -> None:
    g = ctx.need("prepared")
    if "prepared" not in g:
        raise InputError(None, f"star {ctx.star_id}: no 'prepared' light curve in the chunk")
    r_star, r_err = _stellar_radius(ctx.inputs.get("parameters"))
    res = search(g["prepared/time"][()], g["prepared/flux"][()], r_star, r_err)
    a = ctx.out.attrs
    a["transit_detected"] = int(res.detected)
    a["transit_period_d"] = res.period_d
    a["transit_t0_d"] = res.t0_d
    a["transit_depth_ppm"] = res.depth_ppm
    a["transit_duration_h"] = res.duration_h
    a["transit_snr"] = res.snr
    a["transit_sde"] = res.sde
    a["n_transits"] = res.n_transits
    a["planet_radius_rearth"] = res.planet_radius_rearth
    a["planet_radius_err_rearth"] = res.planet_radius_err_rearth
    a["transit_depth_err_ppm"] = res.depth_err_ppm
    for key in ("period_d", "t0_d", "depth_ppm", "duration_h", "snr", "sde", "n_transits"):
        a[f"candidate_{key}"] = getattr(res, f"candidate_{key}")
    a["odd_even_mismatch_sigma"] = res.odd_even_mismatch_sigma
    a["transit_sine_preference"] = res.sine_preference
    p, pw = downsample(res.bls_period_d, res.bls_power, BLS_STORED)
    grp = ctx.out.create_group("bls")
    write_dataset(grp, "period_d", p, "d", np.float64)
    write_dataset(grp, "power", pw, "", np.float64)


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prepared", type=Path, required=True, help="prepared chunk file (MSAP1)")
    p.add_argument("--parameters", type=Path, default=None,
                   help="stellar parameters chunk file (MSAP5), for planet radii")


def _run(args: argparse.Namespace) -> None:
    run_chunk(module=MODULE, version=__version__, stage="transit",
              inputs={"prepared": args.prepared, "parameters": args.parameters},
              primary="prepared", outdir=args.outdir, process=process)


def main(argv: list[str] | None = None) -> int:
    return module_main(argv, module=MODULE, version=__version__,
                       description="Transit search (box least squares) and characterisation",
                       add_arguments=_args, run=_run)


if __name__ == "__main__":
    raise SystemExit(main())
