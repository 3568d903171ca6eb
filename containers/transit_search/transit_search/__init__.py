"""Transit search and characterisation: a box search by the fast folding algorithm, then
vetting of each candidate.

Science (``search``):
1. Flatten. The relative light curve is binned to 10 min and flattened by a robust local
   quartic fit over a 0.75-d window (iterated: bins more than 4 sigma below the trend, with
   30 min either side, and 5-sigma flares are left out of the fit, so transits are not eaten
   while spot signals down to ~1-d periods are followed to better than 1 %).
2. Search. Periods from 0.5 d to the baseline (two transits can fall in it) are searched
   octave by octave with the fast folding algorithm (FFA, Staelin 1969): the residuals are
   summed in bins of about a third of the shortest plausible transit at that period, and the
   FFA folds them at every period whose phase drift over the baseline is at most one bin
   (the frequency step follows the transit duration, as in Ofir 2014), sharing partial sums
   between neighbouring periods. Boxes of durations between the shortest and the longest
   plausible transit at each period (stellar density from MSAP5 when known, else 0.1-3
   solar; grazing to slightly eccentric orbits; at most 12 % of the period) are matched to
   every folded profile; the statistic is the box depth over its white-noise error. Cost:
   O(N log N) per octave in the number of bins, which fall with the period (see
   docs/science.md).
3. Candidates. The highest peaks of the spectrum (its slow rise with period removed, SDE)
   are refined in turn with astropy's BoxLeastSquares on a fine grid, the trend recomputed
   with the transits masked, and period, duration and epoch refined on the unbinned samples.
4. Vetting. A candidate is a detection when all of these hold:
   - SNR = depth * sqrt(N_transits) / sigma_D >= ``SNR_MIN``, sigma_D being the robust scatter
     of the out-of-transit residuals averaged over one transit duration (red noise counts,
     Pont et al. 2006); SDE >= ``SDE_MIN``; N_transits >= 2;
   - a box fits better than a sinusoid at that period (harmonic_delta_log_likelihood <= 0);
   - the individual transits' depths agree (chi^2 probability >= ``DEPTH_CONSISTENCY_P``)
     and no single transit carries most of the signal, and odd and even transits agree
     within ``ODD_EVEN_MAX_SIGMA``;
   - uniqueness (a simplified model-shift test, Coughlin et al. 2016): the folded light curve
     has no other dip or bump, elsewhere in phase, of more than ``UNIQUENESS_MAX`` of the
     transit's significance (oscillations, granulation and spot residuals fold into several).
   A candidate failing the depth test because one transit dominates is a single event (a
   long-period planet, an eclipse, a systematic): that event is masked and the search
   repeated, up to ``MAX_SEARCHES`` times.
Thresholds are justified in docs/science.md by the false-alarm and completeness figures.
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
from stellarflow_contracts.solar import R_EARTH_PER_R_SUN
from stellarflow_contracts.timeseries import (
    bin_lightcurve,
    clean,
    dominant_period,
    downsample,
    robust_std,
    running_median,
)

MODULE = "transit_search"
__version__ = "1.2.0"

BIN_D = 10.0 / 1440.0  # 10-min bins: >= 6 samples in the shortest searched transit
DETREND_WINDOW_D = 0.75
# Long transits need a longer flattening window (>= 3 durations, as wotan's authors advise);
# each octave of periods uses the shortest of these that is long enough for it.
DETREND_WINDOWS_D = (0.75, 1.5, 3.0)
WINDOW_PER_DURATION = 3.0
WINDOW_NOISE_TOLERANCE = 1.15  # ... unless its residuals scatter this much more (spots)
PMIN_D = 0.5
PMAX_BASELINE_FRACTION = 0.98  # two transits, one near each end
MIN_DURATION_D = 1.0 / 24.0  # shortest box
DUTY_MAX = 0.12  # longest box, as a fraction of the period (Sun-like star at 0.5 d: 0.1)
# Transit durations searched at period P: Q_MIN..Q_MAX times the central-transit duration of
# a circular orbit, 13 h (P/365.25 d)^(1/3) (rho/rho_sun)^(-1/3), for densities within a
# factor RHO_FACTOR of MSAP5's (or RHO_RANGE without one). Q_MIN = 0.5: impact parameters to
# 0.87 (shorter, grazing transits are V-shaped and shallow); Q_MAX = 1.3: eccentric orbits.
Q_MIN, Q_MAX = 0.5, 1.3
RHO_FACTOR = 3.0
RHO_RANGE = (0.1, 3.0)
DURATION_STEP = 1.6  # ratio between successive box durations
PHASE_BINS_PER_DURATION = 2.5  # FFA bin = shortest duration / this (drift <= one bin)
FFA_MIN_ROWS = 4  # fewer cycles than this in the data: fold trial periods directly
DIRECT_BATCH_ELEMENTS = 3_000_000  # memory bound of one batch of direct folds
SNR_MIN = 12.0
SDE_MIN = 10.0
N_CANDIDATES = 5  # spectrum peaks refined and vetted per search
MAX_SEARCHES = 4  # the first search plus up to three with single events masked
DEPTH_CONSISTENCY_P = 1e-3  # chi^2 probability of the individual depths around their mean
DEPTH_SYSTEMATIC = 0.15  # ... each depth also uncertain by this fraction (binning of ingress
# and egress, spots crossed, detrending): deep transits' depths agree to ~10 %, not to 0.1 %
SINGLE_EVENT_SHARE = 0.7  # one transit carrying more than this of the total (S/N)^2
SINGLE_EVENT_SNR = 7.0  # ... and significant on its own: a single event, masked
ODD_EVEN_MAX_SIGMA = 4.0
# A candidate at a ratio p/q (q <= 3, up to VARIABILITY_RATIO_MAX) of the period of a strong
# stellar variability (Lomb-Scargle power >= 0.2 of the 30-min light curve, 0.2-15 d), whose
# depth is smaller than that variability's semi-amplitude, is a residual of it (fast spotted
# stars). Such a star's light curve is also flattened with a window of VARIABILITY_WINDOW_FRACTION
# of its period when that is shorter than the default.
VARIABILITY_POWER_MIN = 0.2
VARIABILITY_PERIOD_TOL = 0.015
VARIABILITY_RATIO_MAX = 6.0
VARIABILITY_WINDOW_FRACTION = 0.4
MIN_WINDOW_D = 0.25
UNIQUENESS_MAX = 0.5
# The depth measured against a local straight-line baseline in the light curve itself (not
# flattened) must be at least this fraction of the flattened depth: the trend, interpolated
# across masked transits of long duration, can invent a dip (seen on red giants).
RAW_DEPTH_MIN_FRACTION = 0.5  # strongest other dip/bump / the transit's significance, folded
FLARE_NSIGMA = 5.0  # bins this far above the trend (flares, hits) are dropped before the search
DIP_NSIGMA = 4.0  # bins this far below the trend are kept out of it (transits)
DIP_PAD = 3  # ... with this many bins either side (ingress/egress)


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
    vetting: str = ""  # "pass" or why the best candidate was not a detection
    n_searches: int = 1  # searches run (single events masked between them)
    depth_consistency_p: float = float("nan")
    uniqueness: float = float("nan")
    bls_period_d: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    bls_power: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def local_poly_trend(values: np.ndarray, mask: np.ndarray, half: int) -> np.ndarray:
    """Local polynomial (box window of +-``half`` samples) smooth of a regular series,
    evaluated at each sample, ignoring masked/NaN samples. Degree 4 where the window has data
    on both sides (follows spot signals of ~1 d periods to < 1 %, as a running median does
    not), linear near edges and gaps where a quartic would extrapolate wildly."""
    m = (~mask & np.isfinite(values)).astype(np.float64)
    y = np.where(m > 0, values, 0.0)
    j = np.arange(-half, half + 1, dtype=np.float64)
    u = j / half

    # The window sums must not depend on the CPU. np.convolve sums through BLAS (ddot), whose
    # kernels and so its rounding differ by CPU. Sums of 0/1 weights times integer powers are
    # integers: exact in any order while below 2**53. The flux sums are taken in a fixed order.
    def exact_corr(x01: np.ndarray, k: np.ndarray) -> np.ndarray:
        return np.convolve(x01, k[::-1], mode="same")

    def ordered_corr(x: np.ndarray, k: np.ndarray) -> np.ndarray:  # sum_i x[n + i - half] k[i]
        out = np.zeros_like(x)
        n = x.size
        for i, ki in enumerate(k):
            d = i - half
            if ki == 0.0 or abs(d) >= n:
                continue
            if d >= 0:
                out[:n - d] += ki * x[d:]
            else:
                out[-d:] += ki * x[:n + d]
        return out

    if j.size * float(half) ** 8 < 2.0 ** 53:
        mom = np.stack([exact_corr(m, j ** k) / float(half) ** k for k in range(9)], axis=-1)
    else:
        mom = np.stack([ordered_corr(m, u ** k) for k in range(9)], axis=-1)  # sum m u^k
    rhs = np.stack([ordered_corr(m * y, u ** k) for k in range(5)], axis=-1)
    left = exact_corr(m, (j < 0).astype(np.float64))
    right = exact_corr(m, (j > 0).astype(np.float64))
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
    """Solve the small symmetric positive-definite systems ``a @ x = b`` (the local fits' normal
    equations, one per window) by elimination in elementwise numpy arithmetic. Every CPU gives
    the same bits, which LAPACK does not: OpenBLAS picks its kernels by CPU, and a last-bit
    difference in a trend can move a bin across a clipping threshold, and a candidate with it.
    A window whose elimination breaks down (a pivot not > 0) is solved by least squares."""
    u = np.array(a, dtype=np.float64)
    x = np.array(b, dtype=np.float64)
    n = u.shape[-1]
    with np.errstate(all="ignore"):
        bad = np.zeros(u.shape[0], dtype=bool)
        for k in range(n):
            pivot = u[:, k, k]
            bad |= ~(pivot > 0)
            for i in range(k + 1, n):
                f = u[:, i, k] / pivot
                for j in range(k, n):
                    u[:, i, j] = u[:, i, j] - f * u[:, k, j]
                x[:, i] = x[:, i] - f * x[:, k]
        for k in range(n - 1, -1, -1):
            acc = x[:, k]
            for j in range(k + 1, n):
                acc = acc - u[:, k, j] * x[:, j]
            x[:, k] = acc / u[:, k, k]
        bad |= ~np.isfinite(x).all(axis=1)
        for i in np.flatnonzero(bad):
            x[i] = np.linalg.lstsq(a[i], b[i], rcond=None)[0]
    return x


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
        sigma = robust_std(resid[~cur])
        dips = resid < -DIP_NSIGMA * sigma
        dips = np.convolve(dips, np.ones(2 * DIP_PAD + 1), mode="same") > 0
        flares = resid > FLARE_NSIGMA * sigma
        cur = base | dips | flares
    resid = binned - trend
    resid[flares] = np.nan
    return resid, trend


def _sde(power: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Signal detection efficiency per period: (power - median) / robust sigma of the
    spectrum, after removing its slow rise with period (fewer transits at long periods) by a
    running median over 2 % of the trial periods, computed on every k-th trial (at most 5000)
    and interpolated (O(N)). Median and MAD, not mean and standard deviation: the long-period
    end of a spectrum carries the aliases of every single event, a heavy tail that would
    otherwise hide the peak it is compared with."""
    step = max(1, power.size // 5000)
    sub = power[::step]
    trend = np.interp(np.arange(power.size), np.arange(0, power.size, step),
                      running_median(sub, max(51, (sub.size // 50) | 1)))
    flat = power - trend
    scale = robust_std(flat)
    if not scale > 0:  # most trials without any dip (e.g. a giant's short periods)
        scale = float(np.std(flat)) or 1.0
    return (flat - np.median(flat)) / scale


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
    sigma_d = robust_std(means)
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


def density_range(radius_rsun: float = math.nan, mass_msun: float = math.nan
                  ) -> tuple[float, float]:
    """Stellar densities (solar units) whose transit durations are searched."""
    if np.isfinite(radius_rsun) and radius_rsun > 0:
        m = mass_msun if np.isfinite(mass_msun) and mass_msun > 0 else radius_rsun**0.8
        rho = m / radius_rsun**3
        return rho / RHO_FACTOR, rho * RHO_FACTOR
    return RHO_RANGE


def duration_range(period: float, rho: tuple[float, float]) -> tuple[float, float]:
    """(shortest, longest) transit duration (days) searched at ``period``."""
    central = 13.0 / 24.0 * (period / 365.25) ** (1.0 / 3.0)  # Sun, b = 0, circular
    dmin = max(MIN_DURATION_D, Q_MIN * central * rho[1] ** (-1.0 / 3.0))
    dmax = min(DUTY_MAX * period, Q_MAX * central * rho[0] ** (-1.0 / 3.0))
    return dmin, max(dmax, dmin)


def ffa(x: np.ndarray) -> np.ndarray:
    """Fast folding algorithm (Staelin 1969). ``x`` holds m rows (m a power of two) of p
    samples; row s of the result is the sum over rows r of row r shifted left by about
    r s / (m - 1) samples (the recursive shifts stay within log2(m)/6 samples of it): the
    series folded at period p + s/(m - 1) samples. Cost m p log2(m): partial sums are
    shared between the m trial periods."""
    m, p = x.shape
    cur = x.reshape(m, 1 * p)
    g = 1
    cols = np.arange(p)
    while g < m:
        groups = m // (2 * g)
        pairs = cur.reshape(groups, 2, g * p)
        s = np.arange(2 * g)
        half = (s // 2)[:, None] * p
        tail_idx = (half + (cols[None, :] + ((s + 1) // 2)[:, None]) % p).ravel()
        head_idx = (half + cols[None, :]).ravel()
        cur = pairs[:, 0][:, head_idx] + pairs[:, 1][:, tail_idx]
        g *= 2
    return cur.reshape(m, p)


@dataclass
class Spectrum:
    period: np.ndarray  # trial periods (days), ascending
    power: np.ndarray  # (box depth / its white-noise error)^2 of the best dip, 0 if none
    t0: np.ndarray  # mid-time of that box (days)
    duration: np.ndarray  # its duration (days)
    bin_d: np.ndarray  # FFA bin of that period's octave (days)
    window_d: np.ndarray  # flattening window used at that period (days)


def _best_boxes(ext: np.ndarray, n_start: int, widths: np.ndarray, sigma: float,
                max_width: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best dip box of each row of folded profiles. ``ext`` (rows, n_start + max(widths))
    holds sums + 1j * weights, the first columns repeated at the end (circular); boxes start
    at columns 0..n_start-1. Returns (z, start column, width) of the most significant dip,
    z = -sum / (sigma sqrt(weight)), boxes with less than half their bins filled skipped."""
    rows = ext.shape[0]
    zero = np.zeros((rows, 1), np.float32)
    cs = np.concatenate([zero, ext.real], axis=1).cumsum(axis=1, dtype=np.float32)
    cu = np.concatenate([zero, ext.imag], axis=1).cumsum(axis=1, dtype=np.float32)
    best = np.zeros(rows, np.float32)
    best_j = np.zeros(rows, dtype=np.int64)
    best_w = np.full(rows, int(widths[0]))
    r_idx = np.arange(rows)
    for w in widths:
        s = cs[:, w:w + n_start] - cs[:, :n_start]
        u = cu[:, w:w + n_start] - cu[:, :n_start]
        # dips only; a box with little data is penalised (weight floored at half the box)
        s = np.minimum(s, np.float32(0.0))
        q = s * s
        q /= np.maximum(u, np.float32(0.5 * w))
        if max_width is not None and np.ndim(max_width):
            q[w > max_width] = 0.0
        j = np.argmax(q, axis=1)
        qj = q[r_idx, j]
        better = qj > best
        best = np.where(better, qj, best)
        best_j = np.where(better, j, best_j)
        best_w = np.where(better, w, best_w)
    return np.sqrt(best.astype(np.float64)) / sigma, best_j, best_w


def ffa_spectrum(t_start: float, binned: np.ndarray, count: np.ndarray, masked: np.ndarray,
                 pmin: float, pmax: float, rho: tuple[float, float],
                 windows: tuple[float, ...] = DETREND_WINDOWS_D) -> Spectrum:
    """Box search of a regular series (``BIN_D`` bins from ``t_start``: ``binned`` the mean
    relative flux, ``count`` the samples per bin, ``masked`` bins left out) at every period
    from pmin to pmax, octave by octave (see the module docstring). Each octave uses residuals
    of a flattening window of at least WINDOW_PER_DURATION typical transit durations there.
    Where a period holds many cycles the FFA folds; where it holds few (FFA_MIN_ROWS), trial
    periods are folded directly in batches."""
    cache: dict[float, tuple[np.ndarray, np.ndarray, float]] = {}
    full = float(np.median(count[count > 0]))

    def series_for(window: float) -> tuple[np.ndarray, np.ndarray, float]:
        if window not in cache:
            resid, _ = flatten(binned, window_d=window)
            ok = np.isfinite(resid) & ~masked
            wts = np.where(ok, count / full, 0.0)
            cache[window] = (np.where(ok, resid * wts, 0.0), wts, robust_std(resid[ok]))
        return cache[window]

    out_p, out_pow, out_t0, out_dur, out_bin, out_win = [], [], [], [], [], []
    lo = pmin
    while lo < pmax:
        hi = min(2.0 * lo, pmax)
        dmin_lo, _ = duration_range(lo, rho)
        _, dmax_hi = duration_range(hi, rho)
        typical = 13.0 / 24.0 * (math.sqrt(lo * hi) / 365.25) ** (1 / 3) / math.sqrt(
            rho[0] * rho[1]) ** (1 / 3)
        window = windows[0]
        for w in windows[1:]:
            if window >= WINDOW_PER_DURATION * typical:
                break
            # a longer window only where it does not leave stellar variability behind
            if series_for(w)[2] > WINDOW_NOISE_TOLERANCE * series_for(windows[0])[2]:
                break
            window = w
        sw, weights, sigma = series_for(window)
        k = max(1, int(dmin_lo / PHASE_BINS_PER_DURATION / BIN_D))
        b = k * BIN_D
        n = -(-sw.size // k) * k
        sk = np.pad(sw, (0, n - sw.size)).reshape(-1, k).sum(axis=1)
        uk = np.pad(weights, (0, n - sw.size)).reshape(-1, k).sum(axis=1)
        series = (sk + 1j * uk).astype(np.complex64)  # single precision: memory-bound
        size = series.size
        n_w = int(math.ceil(math.log(max(dmax_hi / dmin_lo, 1.0)) / math.log(DURATION_STEP))) + 1
        widths = np.unique(np.round(np.geomspace(max(2.0, dmin_lo / b), max(2.0, dmax_hi / b),
                                                 n_w)).astype(int))
        wmax = int(widths.max())
        # Trial periods in bins: p + s / (rows - 1), the drift over the data <= one bin.
        p = max(2.0, math.floor(lo / b))
        p_end = hi / b
        ffa_p: list[int] = []
        direct: list[float] = []
        while p <= p_end:
            rows = -(-size // int(p))
            if rows >= FFA_MIN_ROWS:
                ffa_p.append(int(p))
                p += 1.0
            else:
                direct.append(p)
                p += 1.0 / max(rows - 1, 1)
        for pi in ffa_p:
            rows = -(-size // pi)
            m = 1 << (rows - 1).bit_length()
            x = np.zeros(m * pi, dtype=np.complex64)
            x[:size] = series
            folded = ffa(x.reshape(m, pi))
            reps = -(-wmax // pi)
            ext = np.concatenate([folded] + [folded] * reps, axis=1)[:, :pi + wmax]
            per = (pi + np.arange(m) / (m - 1)) * b
            z, j, w = _best_boxes(ext, pi, widths, sigma, max_width=DUTY_MAX * per / b)
            out_p.append(per)
            out_pow.append(z)
            out_t0.append(t_start + (j + 0.5 * w) * b)
            out_dur.append(w * b)
            out_bin.append(np.full(m, b))
            out_win.append(np.full(m, window))
        if direct:
            trials = np.array(direct)
            padded = np.concatenate([series, np.zeros(int(trials.max()) * 2 + wmax + 2,
                                                      np.complex64)])
            lens = np.floor(trials).astype(np.int64)
            rows_t = -(-size // lens)
            start = 0
            while start < trials.size:
                span = int(lens[start] + wmax)
                r_max = int(rows_t[start])
                batch = max(1, int(DIRECT_BATCH_ELEMENTS // (span * r_max)))
                sl = slice(start, min(start + batch, trials.size))
                pt, lt = trials[sl], lens[sl]
                j = np.arange(int(lt.max()) + wmax)
                base = j[None, :] % lt[:, None]
                prof = np.zeros(base.shape, np.complex64)
                zero_at = padded.size - 1  # the padding is zero: rows past the data add nothing
                for r in range(int(rows_t[sl].max())):
                    off = np.where(r < rows_t[sl], np.round(r * pt).astype(np.int64), zero_at)
                    prof += padded[np.minimum(base + off[:, None], zero_at)]
                z, jj, w = _best_boxes(prof, int(lt.max()), widths, sigma,
                                       max_width=DUTY_MAX * pt)
                jj = jj % lt
                out_p.append(pt * b)
                out_pow.append(z)
                out_t0.append(t_start + (jj + 0.5 * w) * b)
                out_dur.append(w * b)
                out_bin.append(np.full(pt.size, b))
                out_win.append(np.full(pt.size, window))
                start = sl.stop
        lo = hi
    period = np.concatenate(out_p)
    order = np.argsort(period, kind="stable")
    keep = (period[order] >= pmin) & (period[order] <= pmax)
    order = order[keep]
    return Spectrum(period=period[order], power=np.maximum(np.concatenate(out_pow)[order], 0) ** 2,
                    t0=np.concatenate(out_t0)[order], duration=np.concatenate(out_dur)[order],
                    bin_d=np.concatenate(out_bin)[order],
                    window_d=np.concatenate(out_win)[order])


def _epochs_with_data(has_data: np.ndarray, t_start: float, period: float, t0: float,
                      duration: float) -> int:
    """Transits (epochs) at least half covered by bins with data."""
    n_bins = has_data.size
    first = t0 - math.floor((t0 - t_start) / period) * period
    mids = np.arange(first, t_start + n_bins * BIN_D + period, period)
    half = max(1, int(round(0.5 * duration / BIN_D)))
    good = 0
    for mid in mids:
        c = int((mid - t_start) / BIN_D)
        a, b = max(c - half, 0), min(c + half + 1, n_bins)
        if b > a and has_data[a:b].mean() >= 0.5 * min(1.0, (b - a) / (2 * half + 1)):
            good += 1
    return good


def _peaks(spec: Spectrum, n: int, has_data: np.ndarray, t_start: float,
           max_looked: int = 2000) -> list[int]:
    """Indices of the n highest spectrum peaks that show >= 2 transits with data, at least
    1 % apart in period (a single dip aliases to many long periods: those are skipped)."""
    chosen: list[int] = []
    for i in np.argsort(spec.power)[::-1][:max_looked]:
        if spec.power[i] <= 0:
            break
        if any(abs(spec.period[i] / spec.period[j] - 1.0) <= 0.01 for j in chosen):
            continue
        if _epochs_with_data(has_data, t_start, float(spec.period[i]), float(spec.t0[i]),
                             float(spec.duration[i])) < 2:
            continue
        chosen.append(int(i))
        if len(chosen) >= n:
            break
    return chosen


@dataclass
class _Candidate:
    period: float
    duration: float
    tref: float
    depth: float
    depth_err: float
    snr: float
    sde: float
    n_tr: int
    odd_even: float
    sine_pref: float
    t0: float
    tb: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    yb: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    sigma_d: float = math.nan
    consistency_p: float = math.nan
    uniqueness: float = math.nan
    single_event_t: float = math.nan
    vetting: str = ""


def _refine(t: np.ndarray, f: np.ndarray, centres: np.ndarray, binned: np.ndarray,
            p0: float, dur0: float, step: float, sde0: float, window: float,
            short_window: float = DETREND_WINDOW_D) -> _Candidate | None:
    """Fine BLS grid around a spectrum peak, the trend redone with the transits masked, and
    period, duration and epoch refined on the unbinned samples."""
    good = np.isfinite(binned)
    resid, _ = flatten(binned, window_d=window)
    ok = np.isfinite(resid) & good
    tb, yb = centres[ok], resid[ok]
    if tb.size < 50:
        return None
    sig = robust_std(yb)
    bls = BoxLeastSquares(tb, yb, np.full(tb.size, sig))
    fine_p = np.linspace(p0 - 2.0 * step, p0 + 2.0 * step, 81)
    fine_d = np.unique(np.clip(dur0 * np.geomspace(0.6, 1.6, 11), MIN_DURATION_D * 0.5,
                               DUTY_MAX * fine_p.min()))
    fres = bls.power(fine_p, fine_d, objective="likelihood", method="fast", oversample=20)
    pw = np.where(np.asarray(fres.depth) > 0, np.asarray(fres.power), -np.inf)
    j = int(np.argmax(pw))
    period, duration, tref = float(fine_p[j]), float(fres.duration[j]), float(fres.transit_time[j])

    width = min(1.5 * duration, 0.5 * period)
    mask = _in_transit(centres, period, tref, width)
    resid2, trend2 = flatten(binned, mask, window_d=max(window, 3.0 * width)
                             if window > short_window else window)
    good2 = np.isfinite(resid2) & good
    tb2, yb2 = centres[good2], resid2[good2]

    ibin = np.clip(np.floor((t - centres[0] + 0.5 * BIN_D) / BIN_D).astype(np.int64), 0,
                   centres.size - 1)
    keep_pts = good2[ibin]
    tu = t[keep_pts]
    if tu.size < 50:
        return None
    yu = f[keep_pts] - np.interp(tu, centres, trend2)
    sig_u = robust_std(yu[~_in_transit(tu, period, tref, 2.0 * duration)])
    blsu = BoxLeastSquares(tu, yu, np.full(tu.size, sig_u))
    dstep = fine_p[1] - fine_p[0]
    up = np.linspace(period - 2 * dstep, period + 2 * dstep, 41)
    ud = np.unique(np.clip(duration * np.linspace(0.8, 1.25, 7), MIN_DURATION_D * 0.5,
                           DUTY_MAX * up.min()))
    ures = blsu.power(up, ud, objective="likelihood", method="fast", oversample=30)
    upw = np.where(np.asarray(ures.depth) > 0, np.asarray(ures.power), -np.inf)
    k = int(np.argmax(upw))
    period, duration, tref = float(up[k]), float(ures.duration[k]), float(ures.transit_time[k])
    stats = blsu.compute_stats(period, duration, tref)
    depth = float(stats["depth"][0])
    n_tr = int(np.count_nonzero(np.asarray(stats["per_transit_count"]) > 0))
    snr, depth_err = _snr(tb2, yb2, period, tref, duration, depth, n_tr)
    d_odd, e_odd = (float(v) for v in stats["depth_odd"])
    d_even, e_even = (float(v) for v in stats["depth_even"])
    odd_even = (abs(d_odd - d_even) / math.hypot(e_odd, e_even, DEPTH_SYSTEMATIC * depth)
                if e_odd > 0 and e_even > 0 else math.nan)
    return _Candidate(period=period, duration=duration, tref=tref, depth=depth,
                      depth_err=depth_err, snr=snr, sde=sde0, n_tr=n_tr, odd_even=odd_even,
                      sine_pref=float(stats["harmonic_delta_log_likelihood"]),
                      t0=_first_epoch(tref, period, float(t.min()), duration), tb=tb2, yb=yb2,
                      sigma_d=(depth_err * math.sqrt(n_tr) if np.isfinite(depth_err)
                               else math.nan))


def raw_depth(centres: np.ndarray, binned: np.ndarray, period: float, tref: float,
              duration: float) -> float:
    """Depth of the transits in the light curve itself, not flattened: for each transit, the
    in-transit mean below a straight line through the data 0.75-2 durations either side
    (the local baseline); the mean over transits. NaN without such data."""
    good = np.isfinite(binned)
    x, y = centres[good], binned[good]
    first = tref - math.floor((tref - x[0]) / period) * period
    depths = []
    for mid in np.arange(first, x[-1] + period, period):
        a, b = np.searchsorted(x, [mid - 2.0 * duration, mid + 2.0 * duration])
        dx, dy = x[a:b] - mid, y[a:b]
        inside = np.abs(dx) < 0.5 * duration
        side = np.abs(dx) > 0.75 * duration
        if inside.sum() < 2 or (side & (dx < 0)).sum() < 2 or (side & (dx > 0)).sum() < 2:
            continue
        slope, icpt = np.polyfit(dx[side], dy[side], 1)
        depths.append(float(np.mean(icpt + slope * dx[inside] - dy[inside])))
    return float(np.mean(depths)) if depths else math.nan


def _vet(c: _Candidate, variability: tuple[float, float, float] = (math.nan,) * 3,
         raw: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Sets c.vetting ("pass" or the first failed test), the depth-consistency probability,
    the uniqueness ratio and, when one transit dominates, that single event's time.
    ``variability`` is (period, power, semi-amplitude) of the star's strongest periodicity."""
    from scipy.stats import chi2

    if not (np.isfinite(c.snr) and c.depth > 0 and np.isfinite(c.sigma_d)):
        c.vetting = "no measurable depth"
        return
    if raw is not None:
        d_raw = raw_depth(raw[0], raw[1], c.period, c.tref, c.duration)
        if np.isfinite(d_raw) and d_raw < RAW_DEPTH_MIN_FRACTION * c.depth:
            c.vetting = (f"the dip is not in the light curve itself ({d_raw * 1e6:.0f} ppm "
                         f"against its own baseline, {c.depth * 1e6:.0f} ppm flattened)")
            return
    p_var, power, amp = variability
    if np.isfinite(power) and power >= VARIABILITY_POWER_MIN and amp >= c.depth:
        # residuals of a periodic signal fold coherently at its rational multiples
        x = c.period / p_var
        for q in (1, 2, 3):
            if x * q >= 1.0 - VARIABILITY_PERIOD_TOL and x <= VARIABILITY_RATIO_MAX and abs(
                    x * q / round(x * q) - 1.0) < VARIABILITY_PERIOD_TOL:
                c.vetting = (f"at {round(x * q)}/{q} of the stellar variability's period "
                             f"({p_var:.3f} d)")
                return
    # Individual transits: depth and error of each epoch with >= half its duration covered.
    phase = (c.tb - c.tref + 0.5 * c.period) % c.period - 0.5 * c.period
    inside = np.abs(phase) < 0.5 * c.duration
    epoch = np.round((c.tb[inside] - c.tref) / c.period).astype(np.int64)
    # a bin stands for max(bin, cadence): long-cadence data fill one 10-min bin in three
    step = max(BIN_D, float(np.median(np.diff(c.tb)))) if c.tb.size > 1 else BIN_D
    depths, stat, times = [], [], []
    for e in np.unique(epoch):
        sel = epoch == e
        cover = sel.sum() * step / c.duration
        if cover < 0.5:
            continue
        depths.append(-float(np.mean(c.yb[inside][sel])))
        stat.append(c.sigma_d / math.sqrt(min(cover, 1.0)))
        times.append(c.tref + e * c.period)
    d, es, tt = np.array(depths), np.array(stat), np.array(times)
    e = np.hypot(es, DEPTH_SYSTEMATIC * c.depth)
    if d.size < 2:
        c.vetting = f"{d.size} transit(s) with data"
        if d.size == 1 and d[0] / es[0] >= SINGLE_EVENT_SNR:
            c.single_event_t = float(tt[0])
        return
    w = 1.0 / e**2
    mean = float(np.sum(w * d) / np.sum(w))
    c.consistency_p = float(chi2.sf(float(np.sum(((d - mean) / e) ** 2)), d.size - 1))
    sn2 = np.clip(d / e, 0.0, None) ** 2
    share = float(sn2.max() / sn2.sum()) if sn2.sum() > 0 else 1.0
    if c.consistency_p < DEPTH_CONSISTENCY_P or share > SINGLE_EVENT_SHARE:
        k = int(np.argmax(sn2))
        if d[k] / es[k] >= SINGLE_EVENT_SNR:
            c.single_event_t = float(tt[k])
        c.vetting = ("one transit dominates" if share > SINGLE_EVENT_SHARE
                     else "transit depths differ")
        return
    if np.isfinite(c.odd_even) and c.odd_even > ODD_EVEN_MAX_SIGMA:
        c.vetting = "odd and even depths differ"
        return
    if c.sine_pref > 0:
        c.vetting = "a sinusoid fits better than a box"
        return
    # Uniqueness: the folded residuals averaged over one duration at every phase.
    nb = max(6, int(round(3.0 * c.period / c.duration)))
    ph = ((c.tb - c.tref) / c.period + 0.5) % 1.0  # transit at phase 0.5
    idx = np.minimum((ph * nb).astype(np.int64), nb - 1)
    s_sum = np.bincount(idx, weights=c.yb, minlength=nb)
    s_cnt = np.bincount(idx, minlength=nb).astype(np.float64)
    ext_s = np.concatenate([s_sum[-1:], s_sum, s_sum[:1]])
    ext_c = np.concatenate([s_cnt[-1:], s_cnt, s_cnt[:1]])
    box_s = ext_s[:-2] + ext_s[1:-1] + ext_s[2:]
    box_c = ext_c[:-2] + ext_c[1:-1] + ext_c[2:]
    with np.errstate(invalid="ignore", divide="ignore"):
        err = c.sigma_d / np.sqrt(box_c * step / c.duration)
        z = np.where(box_c > 0, box_s / box_c / err, 0.0)
    centre = (np.arange(nb) + 0.5) / nb - 0.5
    far = np.abs(centre) > 1.5 * c.duration / c.period
    primary = float(-z[~far].min()) if (~far).any() else c.snr
    other = float(np.max(np.abs(z[far]))) if far.any() else 0.0
    c.uniqueness = other / primary if primary > 0 else math.inf
    if c.uniqueness > UNIQUENESS_MAX:
        c.vetting = "other dips or bumps in the folded light curve"
        return
    if c.n_tr < 2 or c.snr < SNR_MIN or c.sde < SDE_MIN:
        c.vetting = f"below thresholds (SNR {c.snr:.1f}, SDE {c.sde:.1f}, {c.n_tr} transits)"
        return
    c.vetting = "pass"


def search(time_d: np.ndarray, flux_rel: np.ndarray, stellar_radius_rsun: float = float("nan"),
           stellar_radius_err_rsun: float = float("nan"),
           stellar_mass_msun: float = float("nan")) -> TransitResult:
    """Search a relative light curve (median ~1, days) for periodic transits."""
    nan = float("nan")
    t, f = clean(time_d, flux_rel, min_points=100)
    f = f / np.median(f) - 1.0
    centres, binned, count = bin_lightcurve(t, f, BIN_D)
    baseline = float(t.max() - t.min())
    pmax = PMAX_BASELINE_FRACTION * baseline
    if pmax <= PMIN_D * 1.1:
        raise NotMeasurable(f"baseline {baseline:.2f} d too short for a transit search "
                            f"(two transits of P >= {PMIN_D} d)")
    rho = density_range(stellar_radius_rsun, stellar_mass_msun)
    variability = dominant_period(t, f)
    windows = DETREND_WINDOWS_D
    if (np.isfinite(variability[1]) and variability[1] >= VARIABILITY_POWER_MIN
            and VARIABILITY_WINDOW_FRACTION * variability[0] < DETREND_WINDOWS_D[0]):
        windows = (max(MIN_WINDOW_D, VARIABILITY_WINDOW_FRACTION * variability[0]),)
    t_start = float(centres[0] - 0.5 * BIN_D)
    cadence_d = float(np.median(np.diff(t)))

    first: _Candidate | None = None
    found: _Candidate | None = None
    shown: Spectrum | None = None
    masked = np.zeros(binned.size, dtype=bool)
    n_searches = 0
    for _ in range(MAX_SEARCHES):
        n_searches += 1
        spec = ffa_spectrum(t_start, binned, count, masked, PMIN_D, pmax, rho, windows)
        shown = shown or spec
        sde = _sde(spec.power, spec.period)
        event = math.nan
        event_dur = math.nan
        cand_binned = np.where(masked, np.nan, binned)
        has_data = (count > 0) & ~masked
        if cadence_d > BIN_D:  # long cadence fills one bin in a few: count its neighbours
            near = int(math.ceil(cadence_d / BIN_D))
            has_data = (np.convolve(count > 0, np.ones(2 * near - 1), mode="same") > 0) & ~masked
        for rank, i in enumerate(_peaks(spec, N_CANDIDATES, has_data, t_start)):
            if rank > 0 and sde[i] < SDE_MIN:
                continue  # cannot pass; the top peak is refined anyway (single events)
            step = spec.bin_d[i] * spec.period[i] / baseline
            c = _refine(t, f, centres, cand_binned, float(spec.period[i]),
                        float(spec.duration[i]), step, float(sde[i]), float(spec.window_d[i]),
                        windows[0])
            if c is None:
                continue
            _vet(c, variability, (centres, cand_binned))
            first = first or c
            if c.vetting == "pass":
                found = c
                break
            if np.isfinite(c.single_event_t):
                event, event_dur = c.single_event_t, c.duration
                break
        if found is not None or not np.isfinite(event):
            break
        # A single event: mask it (+-1.5 durations) and search again.
        masked |= np.abs(centres - event) < max(2.0 * BIN_D, 1.5 * event_dur)
    best = found or first
    if best is None or shown is None:  # no box with two transits anywhere: nothing to report
        return TransitResult(
            detected=False, period_d=nan, t0_d=nan, depth_ppm=nan, duration_h=nan, snr=nan,
            sde=nan, n_transits=0, planet_radius_rearth=nan, planet_radius_err_rearth=nan,
            depth_err_ppm=nan, candidate_period_d=nan, candidate_t0_d=nan,
            candidate_depth_ppm=nan, candidate_duration_h=nan, candidate_snr=nan,
            candidate_sde=nan, candidate_n_transits=0, odd_even_mismatch_sigma=nan,
            sine_preference=nan, vetting="no box with two transits", n_searches=n_searches,
            bls_period_d=shown.period if shown else np.empty(0),
            bls_power=shown.power if shown else np.empty(0))
    detected = found is not None
    rp, rp_err = planet_radius(best.depth, best.depth_err, stellar_radius_rsun,
                               stellar_radius_err_rsun)

    def keep(x: float) -> float:
        return x if detected else nan

    return TransitResult(
        detected=detected,
        period_d=keep(best.period), t0_d=keep(best.t0), depth_ppm=keep(best.depth * 1e6),
        duration_h=keep(best.duration * 24.0), snr=keep(best.snr), sde=keep(best.sde),
        n_transits=best.n_tr if detected else 0,
        planet_radius_rearth=keep(rp), planet_radius_err_rearth=keep(rp_err),
        depth_err_ppm=keep(best.depth_err * 1e6),
        candidate_period_d=best.period, candidate_t0_d=best.t0,
        candidate_depth_ppm=best.depth * 1e6, candidate_duration_h=best.duration * 24.0,
        candidate_snr=best.snr, candidate_sde=best.sde, candidate_n_transits=best.n_tr,
        odd_even_mismatch_sigma=best.odd_even, sine_preference=best.sine_pref,
        vetting=best.vetting, n_searches=n_searches, depth_consistency_p=best.consistency_p,
        uniqueness=best.uniqueness,
        bls_period_d=shown.period, bls_power=shown.power,
    )


def _stellar_radius(group: h5py.Group | None) -> tuple[float, float, float]:
    if group is None:
        return float("nan"), float("nan"), float("nan")
    return (attr_float(group, "radius_rsun"), attr_float(group, "radius_err_rsun"),
            attr_float(group, "mass_msun"))


def process(ctx: StarContext) -> None:
    g = ctx.need("prepared")
    if "prepared" not in g:
        raise InputError(None, f"star {ctx.star_id}: no 'prepared' light curve in the chunk")
    r_star, r_err, m_star = _stellar_radius(ctx.inputs.get("parameters"))
    res = search(g["prepared/time"][()], g["prepared/flux"][()], r_star, r_err, m_star)
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
    a["transit_vetting"] = res.vetting
    a["transit_n_searches"] = res.n_searches
    a["transit_depth_consistency_p"] = res.depth_consistency_p
    a["transit_uniqueness"] = res.uniqueness
    p, pw = downsample(res.bls_period_d, res.bls_power)
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
