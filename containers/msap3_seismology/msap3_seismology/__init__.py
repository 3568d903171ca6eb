"""MSAP3 seismology: global solar-like oscillation parameters (numax, Delta nu) of one star,
from dwarfs to red giants, with or without a log g.

Method (``measure``):

1. Bands. The numax search runs from NUMAX_FLOOR_UHZ (or the lowest numax whose Delta nu spans
   MIN_DNU_BINS frequency bins of the light curve) to 0.85 of the Nyquist frequency, split into
   bands (``BAND_EDGES_UHZ``). Each band gets its own spectrum: the light curve is high-passed
   (triangular running mean) with a width that follows the band's lowest numax, so the
   envelope and the granulation around it survive while slower signals (rotation, drifts) are
   removed before they can leak through the gaps; low bands are binned first (cheap, and no
   band needs frequencies far above its numax). Significant dips (transits) are cut out first
   (1-h running mean below -5 robust sigma, +-1 h). A strong spot-rotation signal (Lomb-Scargle
   of the 30-min light curve, 0.2-15 d) has its first harmonics replaced by the background in
   every spectrum: they would make a comb and an excess.
2. Spectrum and background, per band. Power density from astropy ``LombScargle`` (fast method,
   ``normalization='psd'``) on a 1/T grid up to the band's Nyquist, ppm^2/uHz by Parseval.
   Medians in 0.02-dex bins (/ln 2) fitted in log space (soft L1) by white noise + two Harvey
   profiles (exponent 4, times the sinc^2 exposure attenuation), knees started across the band.
3. Search. For trial numax on a log grid (TRIALS_PER_DEX): excess SNR = (mean PSD/background - 1)
   x sqrt(bins) over one expected envelope FWHM (0.66 numax^0.88, Mosser et al. 2012), against
   the fit corrected by a straight line through its residuals on both flanks (the background
   follows each trial); comb SNR = the smoothed autocorrelation of PSD/background at lags
   0.75-1.3 Dnu_exp (Dnu_exp = 0.263 numax^0.772, Stello et al. 2009) in units of white-noise
   scatter. Candidates are the local maxima of excess + comb over the trials of all bands;
   one passes when excess >= EXCESS_SNR_MIN and comb >= COMB_SNR_MIN (numax and Dnu), or when
   excess >= EXCESS_ALONE_MIN within EXCESS_ALONE_NUMAX_MIN-MAX (numax only: a red giant's
   few, narrow, mixed modes make a weak comb in a short light curve; below 50 uHz fast rotation
   makes such an excess too, above 250 uHz modes are resolved and combs strong). A star with
   a strong rotation signal needs comb >= COMB_SNR_MIN_ACTIVE. A star without a rotation signal
   also passes with excess >= EXCESS_SNR_MIN and a harmonic sum >= HARMONIC_SUM_MIN (the power
   spectrum of PSD/background around the trial numax summed at k/Dnu, ``_harmonic_comb``: it
   sees the resolved p modes of dwarfs and subgiants in short light curves better than the
   ACF); for such a star "comb" is the larger of the ACF comb SNR and the harmonic sum's
   Gaussian-equivalent significance. A log g (``numax_guess``) only
   ranks passing candidates: rank = excess + comb - 0.5 (log10(numax/guess)/PRIOR_DEX)^2; it
   never removes one. No passing candidate: not detected, numax/Dnu NaN.
4. numax. Background refitted with the envelope masked; the background-subtracted spectrum
   smoothed by a Gaussian of FWHM 4 Dnu_exp; a Gaussian fitted around its peak gives numax.
   Outside the candidate's envelope the excess is capped as PSD/background is for the search.
5. Dnu, when a comb passed (ACF or harmonic), or, for a star without a rotation signal, when
   the ACF comb at the measured numax reaches DNU_COMB_MIN (one trial, not a search).
   Autocorrelation of PSD/background over numax +- 0.75 FWHM (structure > Dnu/4
   removed, smoothed over 0.03 Dnu): highest peak within 0.75-1.3 Dnu_exp, which excludes
   the Dnu/2 and 2 Dnu aliases, refined by a Gaussian fit (sub-bin).

Uncertainties are documented approximations, not a full MCMC: numax_err = 1-sigma centroid
error of a Gaussian fitted to the background-subtracted spectrum averaged in Dnu-wide bins
(covariance scaled by the residual scatter), in quadrature with 1 % of numax (spread between
numax definitions); dnu_err = intrinsic width (sigma) of the ACF peak divided by the number
of radial orders in the ACF window. ``teff`` is accepted but not used by this method.
Thresholds: docs/science.md (false-alarm and completeness figures).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stellarflow_contracts import chunk as stage
from stellarflow_contracts.solar import dnu_expected, envelope_fwhm
from stellarflow_contracts.timeseries import dominant_period, robust_std, running_mean

MODULE = "msap3_seismology"
__version__ = "1.2.0"

NUMAX_FLOOR_UHZ = 5.0
NYQUIST_FRACTION = 0.85  # highest trial numax, as a fraction of the Nyquist frequency
MIN_DNU_BINS = 6.0  # lowest trial numax: Dnu_exp must span this many frequency bins (1/T)
# Band edges (uHz) of the search; each band has its own high-pass and binning.
BAND_EDGES_UHZ = (30.0, 150.0)
# High-pass half-width = HIGHPASS_K / (band's lowest numax): at numax/2.5 (the left flank of
# the lowest trial) the triangular filter keeps > 98 % of the amplitude.
HIGHPASS_K = 2.2
HIGHPASS_MIN_D = 0.5  # dip search and the default of ``highpass``
BAND_NYQUIST_FACTOR = 3.0  # a band's binned Nyquist >= this x its highest numax
TRIALS_PER_DEX = 55
# Detection needs both: power excess (EXCESS_SNR_MIN) and a mode comb (COMB_SNR_MIN); see
# docs/science.md for the false-alarm rates on non-oscillators that set them.
EXCESS_SNR_MIN = 3.0
COMB_SNR_MIN = 3.5
# An excess this strong is a detection by itself (numax reported, Dnu only when the comb passes):
# red giants' modes are few, narrow and split (l = 1 mixed modes), so in weeks of data their
# comb is weak while their excess is large. Set above every non-oscillator's best excess.
EXCESS_ALONE_MIN = 8.0
# ... but not below this numax: spot rotation (Prot >= 0.5 d) and its first harmonic put
# power up to 46 uHz, where it makes an excess without a comb.
EXCESS_ALONE_NUMAX_MIN = 50.0
# ... and only for red giants: dwarfs' and subgiants' modes are resolved and their comb is
# strong (docs/figures/seismic_thresholds.png), while edge effects of large spot signals make
# broad excesses at high frequency with no comb.
EXCESS_ALONE_NUMAX_MAX = 250.0
# PSD/background is capped here before the excess and the comb: chi^2 (2 dof) noise exceeds 15
# once in 3e6 bins, while a coherent line (Kepler short cadence's long-cadence harmonics,
# Gilliland et al. 2010; a classical pulsator) would otherwise make an "excess" by itself.
RATIO_CAP = 15.0
PRIOR_DEX = 0.3  # width of the log g prior on log10(numax) (catalogue log g errors ~0.15 dex)
PSD_STORE_MAX = 20000
REGULAR_TOLERANCE = 0.01  # time stamps within 1 % of a cadence of a regular grid: FFT
ACF_SMOOTH = 0.03  # ACF smoothing kernel sigma, fraction of Dnu_exp (~ width of a mode peak)
ACF_WINDOW = 0.75  # ACF over numax +- ACF_WINDOW x envelope FWHM
HIGHPASS_D = HIGHPASS_MIN_D  # kept for callers
# Spot rotation: a periodicity of the 30-min binned light curve (0.2-15 d) whose Lomb-Scargle
# power (fraction of the variance it explains) is at least ROTATION_POWER_MIN has its first
# ROTATION_HARMONICS harmonics replaced by the background in every band's spectrum: a fast,
# large spot signal is not a sinusoid, and its harmonics make a comb and an excess.
ROTATION_POWER_MIN = 0.2
ROTATION_HARMONICS = 12
ROTATION_PEAK_WIDTH = 0.06  # half-width of harmonic k: k x this x f_rot (spot evolution)
# ... and such a star needs a stronger comb: higher harmonics of a large, evolving spot signal
# still make combs of 4-5 sigma (docs/figures/seismic_thresholds.png, "active" stars).
COMB_SNR_MIN_ACTIVE = 6.0
NUMAX_MIN_UHZ = NUMAX_FLOOR_UHZ
# Harmonic comb (the power spectrum of the power spectrum): PSD/background over numax +- one
# envelope FWHM, capped at COMB_CAP (a coherent line is a few bins: capped, it cannot dominate),
# averaged in blocks of Dnu_exp / COMB_BLOCKS_PER_DNU, Hann-tapered; its power at q = k/Dnu,
# k = 1..COMB_HARMONICS, over the median power (pure noise: a Gamma(K, 1) sum), maximised over
# Dnu in 0.75-1.3 Dnu_exp. It sees resolved p modes (dwarfs, subgiants) better than the ACF.
COMB_HARMONICS = 4
COMB_CAP = 5.0
COMB_BLOCKS_PER_DNU = 40
# Detection by the harmonic comb (with excess >= EXCESS_SNR_MIN), stars without a rotation
# signal only (spot signals make harmonic combs of any strength). scripts/seismic_false_alarms.py
# (seed 7): over 1119 non-oscillators without a rotation signal (white noise, quiet and spotted
# stars, 30 and 60 d) the largest S at excess >= 3 passed 16 in 7, 18 in 2 (both already false
# ACF-comb detections), 20 in none; trials >= 20 % from a red giant's numax passed 20 in 2 of
# 100 giants, 22 in none (docs/science.md, "Thresholds at a glance").
HARMONIC_SUM_MIN = 22.0
# Once numax is measured (by excess alone: a red giant), Dnu is reported when the ACF comb at
# that numax reaches this: white chi^2 noise at a known numax does so in 0.09-0.31 % of 12 000
# trials (30 and 60 d, numax 10-3000 uHz); at 2.5 it did in 0.8-2.2 % (docs/science.md).
DNU_COMB_MIN = 3.0


@dataclass
class SeismicResult:
    detected: bool
    numax_uhz: float = math.nan
    numax_err_uhz: float = math.nan
    dnu_uhz: float = math.nan
    dnu_err_uhz: float = math.nan
    excess_snr: float = math.nan
    comb_snr: float = math.nan
    numax_candidate_uhz: float = math.nan
    frequency_uhz: np.ndarray = field(default_factory=lambda: np.empty(0))
    psd: np.ndarray = field(default_factory=lambda: np.empty(0))
    background: np.ndarray = field(default_factory=lambda: np.empty(0))


def highpass(t_d: np.ndarray, y: np.ndarray, half_d: float = HIGHPASS_MIN_D) -> np.ndarray:
    # Box twice = triangular kernel: sidelobes ~1/(pi f w)^2.
    smooth = running_mean(t_d, running_mean(t_d, y, half_d), half_d)
    return y - smooth


def mask_dips(t_d: np.ndarray, y: np.ndarray, half_d: float = 1.0 / 48, nsig: float = 5.0
              ) -> np.ndarray:
    """Mask of samples inside significant dips (transits, eclipses) of the high-passed flux.

    A 1-h running mean beats the p modes down; dips below -nsig robust sigma are masked with
    a margin of 1 h on each side, so their sharp edges cannot put a comb of orbital harmonics
    into the spectrum."""
    smooth = running_mean(t_d, y, half_d)
    mad = robust_std(smooth)
    dip = smooth < np.median(smooth) - nsig * mad
    if not dip.any():
        return np.zeros(t_d.size, bool)
    margin = 1.0 / 24.0
    c = np.concatenate(([0], np.cumsum(dip)))
    lo = np.searchsorted(t_d, t_d - margin, side="left")
    hi = np.searchsorted(t_d, t_d + margin, side="right")
    return (c[hi] - c[lo]) > 0


def power_density(time_d: np.ndarray, flux_ppm: np.ndarray, cadence_s: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One-sided PSD (ppm^2/uHz) on a 1/T grid up to Nyquist, Parseval-normalised.

    Time stamps on a regular grid (within REGULAR_TOLERANCE of a cadence: PLATO-like and
    synthetic data) go through one FFT of the gap-filled series, O(N log N) with a small
    constant; others (barycentric Kepler/TESS times drift against the spacecraft clock) through
    astropy's ``LombScargle`` (fast method). Both give the classical periodogram of the data."""
    t_s = (time_d - time_d[0]) * 86400.0
    span = t_s[-1]
    nyquist = 0.5 / cadence_s
    y = flux_ppm - np.mean(flux_ppm)
    k = np.rint(t_s / cadence_s).astype(np.int64)
    if (np.max(np.abs(t_s - k * cadence_s)) < REGULAR_TOLERANCE * cadence_s
            and np.all(np.diff(k) > 0)):
        n = int(k[-1]) + 1
        grid = np.zeros(n)
        grid[k] = y
        p = np.abs(np.fft.rfft(grid)) ** 2
        df = 1.0 / (n * cadence_s)
        freq = np.arange(p.size) * df
        p, freq = p[1:], freq[1:]
    else:
        from astropy.timeseries import LombScargle

        df = 1.0 / span
        freq = np.arange(1, int(nyquist / df) + 1) * df
        ls = LombScargle(t_s, y, normalization="psd", fit_mean=False, center_data=True)
        # Low-rank NUFFT at 1e-6 relative accuracy: ~4x faster than the 5e-13 default, and
        # far below the chi^2 scatter of any PSD bin.
        p = ls.power(freq, method="fast", method_kwds={"trig_sum_kwds": {"eps": 1e-6}})
    psd = p * np.var(y) / (p.sum() * df * 1e6)
    return freq * 1e6, psd


def _log_bins(f: np.ndarray, psd: np.ndarray, lo: float, dex: float = 0.02, min_pts: int = 15
              ) -> tuple[np.ndarray, np.ndarray]:
    """Median PSD / ln 2 in log-spaced bins (at least min_pts points each) above lo."""
    start = int(np.searchsorted(f, lo))
    edges = [start]
    step = 10**dex
    while edges[-1] < f.size:
        i = edges[-1]
        j = max(int(np.searchsorted(f, f[i] * step)), i + min_pts)
        edges.append(min(j, f.size))
    if len(edges) > 2 and f.size - edges[-2] < min_pts:
        edges.pop(-2)
    centres, meds = [], []
    for i, j in zip(edges[:-1], edges[1:], strict=True):
        centres.append(math.sqrt(f[i] * f[j - 1]))
        meds.append(np.median(psd[i:j]) / math.log(2.0))
    return np.log10(centres), np.log10(meds)


def _running_median(x: np.ndarray, y: np.ndarray, half: float) -> np.ndarray:
    return np.array([np.median(y[np.abs(x - xi) <= half]) for xi in x])


def _gauss(x: np.ndarray, a: float, mu: float, sig: float, c: float) -> np.ndarray:
    return a * np.exp(-0.5 * ((x - mu) / sig) ** 2) + c


def _fit_gauss(x: np.ndarray, y: np.ndarray, p0: list[float], sigma: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray] | None:
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            popt, pcov = curve_fit(_gauss, x, y, p0=p0, sigma=sigma, maxfev=2000)
    except (RuntimeError, ValueError, TypeError):
        return None
    if not np.all(np.isfinite(popt)) or not np.all(np.isfinite(np.diag(pcov))):
        return None
    return popt, pcov


def _harvey_model(params: np.ndarray, nu: np.ndarray, nyquist: float) -> np.ndarray:
    """White noise + two Harvey profiles (exponent 4), granulation attenuated by the
    integration over each exposure (sinc^2). params are log10 of W, H1, b1, H2, b2."""
    w, h1, b1, h2, b2 = 10.0 ** params
    eta2 = np.sinc(nu / (2.0 * nyquist)) ** 2
    return w + eta2 * (h1 / (1.0 + (nu / b1) ** 4) + h2 / (1.0 + (nu / b2) ** 4))


def fit_background(lx: np.ndarray, ly: np.ndarray, nyquist: float,
                   mask: np.ndarray | None = None) -> np.ndarray | None:
    """Fit the Harvey background to log-binned medians (log10 nu, log10 psd), robustly
    (soft L1 in log space, masked bins left out); best of a few starting knees spread over
    the fitted range (so giants' and dwarfs' granulation are both within reach)."""
    from scipy.optimize import least_squares

    use = np.ones(lx.size, bool) if mask is None else ~mask
    x, y = 10 ** lx[use], ly[use]
    if x.size < 8:
        return None
    white = float(np.median(y[x >= x.max() / 3])) if np.any(x >= x.max() / 3) else float(y[-1])
    low = float(np.max(y[: max(3, x.size // 10)]))
    kmin, kmax = float(lx[0]) - 0.5, float(lx[-1]) + 0.3
    best = None
    for lk in np.linspace(lx[0] + 0.3, lx[-1] - 0.2, 3):
        p0 = np.array([white, low, lk - 0.48, low - 0.7, lk])
        lo_b = [white - 2, white - 4, kmin, white - 4, kmin + 0.2]
        hi_b = [white + 2, low + 3, kmax, low + 3, kmax]
        p0 = np.clip(p0, np.array(lo_b) + 1e-6, np.array(hi_b) - 1e-6)

        def resid(p: np.ndarray) -> np.ndarray:
            return np.log10(_harvey_model(p, x, nyquist)) - y

        try:
            r = least_squares(resid, p0, bounds=(lo_b, hi_b), loss="soft_l1", f_scale=0.05,
                              max_nfev=400)
        except ValueError:
            continue
        if best is None or r.cost < best.cost:
            best = r
    return None if best is None else best.x


def _flank_correction(lx: np.ndarray, lres: np.ndarray, numax: float
                      ) -> tuple[float, float] | None:
    """Straight line (log-log) through the background-fit residuals of the log bins on both
    flanks of a trial envelope (numax/2.5 .. numax-FWHM and numax+FWHM .. 2.5 numax): fixes
    local misfit of the global model without letting the envelope itself pull it up."""
    fw = envelope_fwhm(numax)
    left = (lx >= math.log10(numax / 2.5)) & (lx < math.log10(max(numax - fw, numax / 2.0)))
    right = (lx > math.log10(numax + fw)) & (lx <= math.log10(numax * 2.5))
    if np.count_nonzero(left) < 3 or np.count_nonzero(right) < 3:
        return None
    use = left | right
    slope, intercept = np.polyfit(lx[use], lres[use], 1)
    return float(slope), float(intercept)


def _envelope_mask(lx: np.ndarray, numax: float) -> np.ndarray:
    fw = envelope_fwhm(numax)
    return (lx >= math.log10(max(numax - fw, numax / 2.0))) & (lx <= math.log10(numax + fw))


def _smoothed_acf(f: np.ndarray, ratio: np.ndarray, numax: float, df: float, window: float
                  ) -> tuple[np.ndarray, np.ndarray, int, float] | None:
    """Autocorrelation of the background-divided spectrum over numax +- window x FWHM with
    structure on > Dnu/4 scales removed (two box passes), smoothed by a Gaussian of
    ACF_SMOOTH x Dnu_exp (about the width of a peak made of modes a few uHz wide).
    Returns (lags, smoothed acf, number of bins, kernel sigma in bins)."""
    from scipy.ndimage import gaussian_filter1d, uniform_filter1d

    dexp = dnu_expected(numax)
    fw = envelope_fwhm(numax)
    i0, i1 = np.searchsorted(f, [numax - window * fw, numax + window * fw])
    seg = ratio[i0:i1]
    # Long light curves resolve far finer than the smoothing kernel: average blocks of m bins
    # first (kernel >= 2 blocks), so the cost follows the window's orders, not T.
    m = max(1, int(ACF_SMOOTH * dexp / df / 2.0))
    if m > 1:
        seg = seg[: seg.size // m * m].reshape(-1, m).mean(axis=1)
        df = df * m
    n = int(seg.size)
    if n < 3 * dexp / df:
        return None
    box = max(3, int(0.4 * dexp / df))
    x = seg - uniform_filter1d(uniform_filter1d(seg, box, mode="nearest"), box, mode="nearest")
    spec = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spec * np.conj(spec))[:n]
    if acf[0] <= 0:
        return None
    s_bins = max(1.0, ACF_SMOOTH * dexp / df)
    return np.arange(n) * df, gaussian_filter1d(acf / acf[0], s_bins, mode="nearest"), n, s_bins


def _comb_snr(f: np.ndarray, ratio: np.ndarray, numax: float, df: float) -> float:
    """Evidence for a mode comb near numax: highest smoothed-ACF value within 0.75-1.3
    Dnu_exp, in units of the scatter of a smoothed ACF of white chi^2 noise,
    1/sqrt(n) / sqrt(2 sqrt(pi) s) for n bins and a kernel of s bins."""
    got = _smoothed_acf(f, ratio, numax, df, ACF_WINDOW)
    if got is None:
        return 0.0
    lags, acf_s, n, s_bins = got
    dexp = dnu_expected(numax)
    win = (lags >= 0.75 * dexp) & (lags <= 1.3 * dexp)
    return float(acf_s[win].max() * math.sqrt(n) * math.sqrt(2 * math.sqrt(math.pi) * s_bins))


def _harmonic_comb(f: np.ndarray, ratio: np.ndarray, numax: float, df: float
                   ) -> tuple[float, float]:
    """(S, dnu): the harmonic sum of the power spectrum of PSD/background around numax (see
    COMB_HARMONICS) and the Dnu that maximises it; (0, NaN) when the window is too short.
    For white chi^2 noise S ~ Gamma(K, 1) at each Dnu (``harmonic_sigma``)."""
    dexp = dnu_expected(numax)
    fw = envelope_fwhm(numax)
    i0, i1 = np.searchsorted(f, [numax - fw, numax + fw])
    seg = np.minimum(ratio[i0:i1], COMB_CAP)
    m = max(1, int(dexp / COMB_BLOCKS_PER_DNU / df))
    if m > 1:
        seg = seg[: seg.size // m * m].reshape(-1, m).mean(axis=1)
    step = df * m
    n = int(seg.size)
    if n < 3 * dexp / step:
        return 0.0, math.nan
    taper = np.hanning(n)
    size = 1 << int(math.ceil(math.log2(8 * n)))  # 8x zero padding: smooth in q
    power = np.abs(np.fft.rfft((seg - seg.mean()) * taper, size)) ** 2
    q = np.fft.rfftfreq(size, step)
    noise = float(np.median(power[q > 0.5 / dexp])) / math.log(2.0)
    if not noise > 0:
        return 0.0, math.nan
    dnus = np.geomspace(0.75 * dexp, 1.3 * dexp, 200)
    total = np.zeros(dnus.size)
    for k in range(1, COMB_HARMONICS + 1):
        total += np.interp(k / dnus, q, power)
    j = int(np.argmax(total))
    return float(total[j] / noise), float(dnus[j])


def harmonic_sigma(s: float) -> float:
    """Gaussian-equivalent significance of a harmonic sum s for one Dnu trial (Gamma(K, 1)
    upper tail), comparable with the excess and ACF comb SNRs."""
    from scipy.stats import gamma, norm

    if not math.isfinite(s) or s <= 0:
        return 0.0
    return float(norm.isf(max(float(gamma.sf(s, COMB_HARMONICS)), 1e-300)))


def _acf_dnu(f: np.ndarray, ratio: np.ndarray, numax: float, df: float
             ) -> tuple[float, float]:
    """(dnu, dnu_err): highest smoothed-ACF peak within 0.75-1.3 Dnu_exp (the Dnu/2 and
    2 Dnu aliases lie outside), refined by a Gaussian fit; the error is the intrinsic
    peak width (fitted sigma minus the smoothing kernel, in quadrature) divided by the
    number of radial orders in the window."""
    got = _smoothed_acf(f, ratio, numax, df, ACF_WINDOW)
    if got is None:
        return math.nan, math.nan
    lags, acf_s, n, s_bins = got
    df = float(lags[1] - lags[0])  # the ACF's own resolution (blocks of bins, see above)
    dexp = dnu_expected(numax)
    idx = np.flatnonzero((lags >= 0.75 * dexp) & (lags <= 1.3 * dexp))
    if not idx.size:
        return math.nan, math.nan
    k = int(idx[np.argmax(acf_s[idx])])
    half = max(3, int(round(0.06 * dexp / df)))
    a, b = max(k - half, 0), min(k + half + 1, n)
    dnu, sig = float(lags[k]), 2.0 * s_bins * df
    fit = _fit_gauss(lags[a:b], acf_s[a:b], [float(acf_s[k]), dnu, s_bins * df, 0.0])
    if (fit is not None and fit[0][0] > 0 and abs(fit[0][1] - dnu) < half * df
            and abs(fit[0][2]) < 0.1 * dexp):
        dnu, sig = float(fit[0][1]), abs(float(fit[0][2]))
    intrinsic = math.sqrt(max(sig**2 - (s_bins * df) ** 2, df**2))
    n_orders = 2 * ACF_WINDOW * envelope_fwhm(numax) / dnu
    return dnu, intrinsic / max(n_orders, 1.0)


def _numax_refine(f: np.ndarray, excess: np.ndarray, numax0: float, df: float
                  ) -> tuple[float, float]:
    """numax from the heavily smoothed background-subtracted spectrum; error from a Gaussian
    fitted to Dnu-wide averages."""
    from scipy.ndimage import gaussian_filter1d

    dexp = dnu_expected(numax0)
    fw = envelope_fwhm(numax0)
    sel = (f >= max(numax0 - 2 * fw, f[0])) & (f <= numax0 + 2 * fw)
    fs, es = f[sel], excess[sel]
    smooth = gaussian_filter1d(es, 4 * dexp / 2.3548 / df, mode="nearest")
    inner = np.abs(fs - numax0) <= fw
    k = np.flatnonzero(inner)[np.argmax(smooth[inner])]
    peak = float(fs[k])
    near = np.abs(fs - peak) <= 0.75 * fw
    fit = _fit_gauss(fs[near], smooth[near], [float(smooth[k]), peak, fw / 2.3548, 0.0])
    numax = peak
    if fit is not None and abs(fit[0][1] - peak) < 0.5 * fw and fit[0][0] > 0:
        numax = float(fit[0][1])
    # Uncertainty: Gaussian on Dnu-wide averages (roughly independent, comb averaged out).
    nb = int(fs.size * df // dexp)
    err = math.nan
    if nb >= 6:
        m = int(dexp / df)
        xb = fs[: nb * m].reshape(nb, m).mean(axis=1)
        yb = es[: nb * m].reshape(nb, m).mean(axis=1)
        fitb = _fit_gauss(xb, yb, [float(yb.max()), numax, fw / 2.3548, 0.0])
        if fitb is not None:
            err = float(math.sqrt(fitb[1][1, 1]))
    if not math.isfinite(err) or err > 0.5 * fw:
        err = 0.25 * fw
    return numax, math.hypot(err, 0.01 * numax)


@dataclass
class _Band:
    """One band of trial numax with its own spectrum and background."""

    lo: float
    hi: float
    f: np.ndarray
    psd: np.ndarray
    background: np.ndarray
    lx: np.ndarray
    ly: np.ndarray
    nyquist: float
    lb: np.ndarray  # running-median fallback of the log bins

    def model(self, params: np.ndarray | None) -> np.ndarray:
        if params is None:
            return 10 ** np.interp(np.log10(np.maximum(self.f, 10 ** self.lx[0])), self.lx,
                                   self.lb)
        return _harvey_model(params, self.f, self.nyquist)


def numax_search_range(span_d: float, cadence_s: float) -> tuple[float, float]:
    """(lowest, highest) trial numax for a light curve of this span and cadence."""
    nyquist = 1e6 / (2.0 * cadence_s)
    df = 1e6 / (span_d * 86400.0)
    # dnu_expected(nu) >= MIN_DNU_BINS df  <=>  nu >= (MIN_DNU_BINS df / 0.263)^(1/0.772)
    lo = max(NUMAX_FLOOR_UHZ, (MIN_DNU_BINS * df / 0.263) ** (1.0 / 0.772))
    return lo, NYQUIST_FRACTION * nyquist


def _band_limits(lo: float, hi: float) -> list[tuple[float, float]]:
    edges = [lo] + [e for e in BAND_EDGES_UHZ if lo * 1.05 < e < hi / 1.05] + [hi]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _make_band(t: np.ndarray, ppm: np.ndarray, cadence_s: float, lo: float, hi: float
               ) -> _Band | None:
    half_d = HIGHPASS_K / (lo * 1e-6) / 86400.0
    # Bin so that the band's Nyquist is >= BAND_NYQUIST_FACTOR x its highest numax.
    k = max(1, int(1e6 / (2.0 * BAND_NYQUIST_FACTOR * hi) // cadence_s))
    if k > 1:
        idx = np.floor((t - t[0]) * 86400.0 / (k * cadence_s)).astype(np.int64)
        cnt = np.bincount(idx)
        keep = cnt >= max(1, k // 2)  # half-empty bins (gap edges) are noisier: leave out
        # bin centres: a regular grid stays regular (FFT periodogram)
        tb = t[0] + (np.flatnonzero(keep) + 0.5) * k * cadence_s / 86400.0
        yb = (np.bincount(idx, weights=ppm)[keep] / cnt[keep])
    else:
        tb, yb = t, ppm
    if tb.size < 200:
        return None
    yb = highpass(tb, yb, half_d)
    f, psd = power_density(tb, yb, k * cadence_s)
    df = f[1] - f[0]
    nyq = f[-1]
    lx, ly = _log_bins(f, psd, lo=max(lo / 4.0, 20 * df))
    if lx.size < 8:
        return None
    lb = _running_median(lx, ly, 0.25)
    band = _Band(lo=lo, hi=hi, f=f, psd=psd, background=np.empty(0), lx=lx, ly=ly,
                 nyquist=nyq, lb=lb)
    band.background = band.model(fit_background(lx, ly, nyq))
    return band


def rotation_frequency(t_d: np.ndarray, ppm: np.ndarray) -> float:
    """Frequency (uHz) of a strong spot-rotation signal, NaN when there is none (see
    ROTATION_POWER_MIN)."""
    period, power, _ = dominant_period(t_d, ppm)
    return 1e6 / (period * 86400.0) if power >= ROTATION_POWER_MIN else math.nan


def _mask_harmonics(band: _Band, f_rot: float) -> None:
    """Replace the spectrum by the background around the first harmonics of f_rot."""
    df = band.f[1] - band.f[0]
    for k in range(1, ROTATION_HARMONICS + 1):
        half = k * ROTATION_PEAK_WIDTH * f_rot + 2.0 * df
        if k * f_rot - half > band.f[-1]:
            break
        i0, i1 = np.searchsorted(band.f, [k * f_rot - half, k * f_rot + half])
        band.psd[i0:i1] = band.background[i0:i1]


@dataclass
class _Trials:
    """Trial numax of all bands with their statistics (see ``_trial_scores``)."""

    numax: np.ndarray
    excess: np.ndarray
    comb: np.ndarray  # ACF comb SNR
    harmonic: np.ndarray  # harmonic sum S
    harmonic_dnu: np.ndarray
    band: np.ndarray  # index of the band each trial belongs to


def _trial_scores(band: _Band) -> tuple[np.ndarray, ...]:
    """(trial numax, excess SNR, ACF comb SNR, harmonic sum, its Dnu) on the band's log grid."""
    f, psd, base = band.f, band.psd, band.background
    lres = band.ly - np.log10(np.interp(band.lx, np.log10(f), base))
    n_trials = max(3, int(math.ceil(TRIALS_PER_DEX * math.log10(band.hi / band.lo))))
    trials = np.geomspace(band.lo, band.hi, n_trials)
    logf = np.log10(f)
    df = f[1] - f[0]
    ratio = np.minimum(psd / base, RATIO_CAP)
    ex = np.full(trials.size, -np.inf)
    comb = np.full(trials.size, -np.inf)
    hs = np.zeros(trials.size)
    hs_dnu = np.full(trials.size, math.nan)
    for i, nu in enumerate(trials):
        half = 0.5 * envelope_fwhm(nu)
        i0, i1 = np.searchsorted(f, [nu - half, nu + half])
        if i1 - i0 < 10:
            continue
        corr = _flank_correction(band.lx, lres, nu)
        bg = base[i0:i1]
        if corr is not None:
            bg = bg * 10 ** (corr[0] * logf[i0:i1] + corr[1])
        ex[i] = float((np.mean(np.minimum(psd[i0:i1] / bg, RATIO_CAP)) - 1.0)
                      * math.sqrt(i1 - i0))
        comb[i] = _comb_snr(f, ratio, nu, df)
        hs[i], hs_dnu[i] = _harmonic_comb(f, ratio, nu, df)
    return trials, ex, comb, hs, hs_dnu


def _passes(tr: _Trials, rotating: bool) -> np.ndarray:
    """Which trials pass a detection rule (docs/science.md, "Thresholds at a glance")."""
    ex, nu = tr.excess, tr.numax
    ok = np.isfinite(ex) & np.isfinite(tr.comb)
    comb_min = COMB_SNR_MIN_ACTIVE if rotating else COMB_SNR_MIN
    rule = (ex >= EXCESS_SNR_MIN) & (tr.comb >= comb_min)
    rule |= ((ex >= EXCESS_ALONE_MIN) & (nu >= EXCESS_ALONE_NUMAX_MIN)
             & (nu <= EXCESS_ALONE_NUMAX_MAX))
    if not rotating:
        rule |= (ex >= EXCESS_SNR_MIN) & (tr.harmonic >= HARMONIC_SUM_MIN)
    return ok & rule


def _comb_evidence(tr: _Trials, rotating: bool) -> np.ndarray:
    """Comb SNR of each trial: the ACF comb, or for a star without a rotation signal the
    larger of it and the harmonic sum's Gaussian-equivalent significance."""
    if rotating:
        return tr.comb
    sig = np.array([harmonic_sigma(float(s)) for s in tr.harmonic])
    return np.maximum(tr.comb, sig)


def _choose(tr: _Trials, evidence: np.ndarray, passing: np.ndarray, guess: float | None
            ) -> int | None:
    """Index of the chosen candidate: among local maxima of excess + comb evidence that pass
    a rule, the highest rank (score + log g prior); None when none passes."""
    score = tr.excess + evidence
    n = score.size
    peaks = [i for i in range(n) if np.isfinite(score[i])
             and (i == 0 or not score[i] < score[i - 1])
             and (i == n - 1 or not score[i] < score[i + 1])]
    candidates = [i for i in peaks if passing[i]]
    if not candidates:
        return None

    def rank(i: int) -> float:
        r = float(score[i])
        if guess is not None and math.isfinite(guess) and guess > 0:
            r -= 0.5 * (math.log10(tr.numax[i] / guess) / PRIOR_DEX) ** 2
        return r

    return max(candidates, key=rank)


def measure(time_d: np.ndarray, flux_rel: np.ndarray, cadence_s: float | None = None,
            teff: float | None = None, numax_guess: float | None = None) -> SeismicResult:
    """Global seismic parameters from a relative light curve (median ~1).

    ``teff`` is accepted for interface symmetry (not needed by this method); ``numax_guess``
    (e.g. from log g and Teff) is a prior that ranks candidates, never a window.
    """
    t = np.asarray(time_d, dtype=np.float64)
    y = np.asarray(flux_rel, dtype=np.float64)
    good = np.isfinite(t) & np.isfinite(y)
    t, y = t[good], y[good]
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    if t.size < 1000:
        raise stage.NotMeasurable(f"only {t.size} finite samples; seismology needs at least 1000")
    if cadence_s is None or not np.isfinite(cadence_s) or cadence_s <= 0:
        cadence_s = float(np.median(np.diff(t)) * 86400.0)
    ppm = (y / np.median(y) - 1.0) * 1e6
    dips = mask_dips(t, highpass(t, ppm))
    if dips.mean() < 0.5:  # more would be variability, not transits: keep everything
        t, ppm = t[~dips], ppm[~dips]
    lo, hi = numax_search_range(float(t[-1] - t[0]), cadence_s)
    guess = numax_guess if numax_guess is not None and np.isfinite(numax_guess) else None
    result = SeismicResult(detected=False)
    bands: list[_Band] = []
    if hi > lo * 1.05:
        for blo, bhi in _band_limits(lo, hi):
            band = _make_band(t, ppm, cadence_s, blo, bhi)
            if band is not None:
                bands.append(band)
    if not bands:
        return result
    f_rot = rotation_frequency(t, ppm)
    rotating = math.isfinite(f_rot)
    if rotating:
        for band in bands:
            _mask_harmonics(band, f_rot)
    scored = [_trial_scores(b) for b in bands]
    tr = _Trials(*(np.concatenate([s[k] for s in scored]) for k in range(5)),
                 band=np.concatenate([np.full(s[0].size, j) for j, s in enumerate(scored)]))
    evidence = _comb_evidence(tr, rotating)
    passing = _passes(tr, rotating)
    pick = _choose(tr, evidence, passing, guess)
    shown = bands[-1]  # the full-resolution spectrum, unless a detection says otherwise
    score = tr.excess + evidence
    if pick is None and np.isfinite(score).any():
        best = int(np.nanargmax(np.where(np.isfinite(score), score, -np.inf)))
        result.numax_candidate_uhz = float(tr.numax[best])
        result.excess_snr, result.comb_snr = float(tr.excess[best]), float(evidence[best])
    if pick is not None:
        band = bands[int(tr.band[pick])]
        numax0 = float(tr.numax[pick])
        result.numax_candidate_uhz = numax0
        result.excess_snr, result.comb_snr = float(tr.excess[pick]), float(evidence[pick])
        f, psd = band.f, band.psd
        df = f[1] - f[0]
        masked = fit_background(band.lx, band.ly, band.nyquist,
                                mask=_envelope_mask(band.lx, numax0))
        background = band.model(masked) if masked is not None else band.background
        # Outside the candidate's envelope PSD/background is capped as for the detection:
        # a coherent line there cannot pull numax (unresolved giant modes inside are kept).
        excess = psd - background
        out = np.abs(f - numax0) > envelope_fwhm(numax0)
        excess[out] = np.minimum(excess[out], (RATIO_CAP - 1.0) * background[out])
        numax, numax_err = _numax_refine(f, excess, numax0, df)
        result.detected = True
        result.numax_uhz, result.numax_err_uhz = numax, numax_err
        ratio = np.minimum(psd / background, RATIO_CAP)
        comb_min = COMB_SNR_MIN_ACTIVE if rotating else COMB_SNR_MIN
        # Dnu when a comb made the detection, or (numax known: one trial, not a search) when
        # the ACF comb at the measured numax reaches DNU_COMB_MIN.
        if (tr.comb[pick] >= comb_min
                or (not rotating and (tr.harmonic[pick] >= HARMONIC_SUM_MIN
                                      or _comb_snr(f, ratio, numax, df) >= DNU_COMB_MIN))):
            dnu, dnu_err = _acf_dnu(f, ratio, numax, df)
            result.dnu_uhz, result.dnu_err_uhz = dnu, dnu_err
        band.background = background
        shown = band
    result.frequency_uhz, result.psd, result.background = shown.f, shown.psd, shown.background
    return result


def bin_spectrum(f: np.ndarray, *arrays: np.ndarray, max_points: int = PSD_STORE_MAX
                 ) -> list[np.ndarray]:
    """Average consecutive bins so at most max_points remain (for storage)."""
    factor = max(1, math.ceil(f.size / max_points))
    n = f.size // factor * factor
    return [a[:n].reshape(-1, factor).mean(axis=1) for a in (f, *arrays)]


# --- chunk I/O -------------------------------------------------------------------------------

def _write_empty(out) -> None:
    out.attrs["seismic_detected"] = 0
    for key in ("numax_uhz", "numax_err_uhz", "dnu_uhz", "dnu_err_uhz", "excess_snr",
                "comb_snr"):
        out.attrs[key] = math.nan


def select(ctx: stage.StarContext) -> bool:
    g = ctx.need("prepared")
    candidate = g.attrs.get("seismic_candidate", 0)
    try:
        chosen = int(candidate) == 1
    except (TypeError, ValueError):
        chosen = False
    if not chosen:
        _write_empty(ctx.out)
    return chosen


def process(ctx: stage.StarContext) -> None:
    g = ctx.need("prepared")
    if "prepared" not in g:
        raise ValueError("no group 'prepared' for this star in the prepared chunk")
    p = g["prepared"]
    cadence = stage.attr_float(g, "cadence_s")
    teff = stage.attr_float(g, "teff")
    guess = stage.attr_float(g, "numax_guess_uhz")
    res = measure(p["time"][()], p["flux"][()], cadence_s=cadence if math.isfinite(cadence)
                  else None, teff=teff if math.isfinite(teff) else None,
                  numax_guess=guess if math.isfinite(guess) else None)
    out = ctx.out
    out.attrs["seismic_detected"] = int(res.detected)
    out.attrs["numax_uhz"] = res.numax_uhz
    out.attrs["numax_err_uhz"] = res.numax_err_uhz
    out.attrs["dnu_uhz"] = res.dnu_uhz
    out.attrs["dnu_err_uhz"] = res.dnu_err_uhz
    out.attrs["excess_snr"] = res.excess_snr
    out.attrs["comb_snr"] = res.comb_snr
    fb, pb, bb = bin_spectrum(res.frequency_uhz, res.psd, res.background)
    grp = out.create_group("psd")
    stage.write_dataset(grp, "frequency_uhz", fb, "uHz")
    stage.write_dataset(grp, "psd_ppm2_per_uhz", pb, "ppm2/uHz")
    stage.write_dataset(grp, "background_ppm2_per_uhz", bb, "ppm2/uHz")


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prepared", type=Path, required=True,
                   help="chunk file from MSAP1 (<chunk>.prepared.h5)")


def _run(args: argparse.Namespace) -> None:
    stage.run_chunk(module=MODULE, version=__version__, stage="seismology",
                    inputs={"prepared": args.prepared}, primary="prepared", outdir=args.outdir,
                    process=process, select=select)


def main(argv: list[str] | None = None) -> int:
    return stage.module_main(argv, module=MODULE, version=__version__,
                             description="MSAP3: numax and Delta nu of solar-like oscillators",
                             add_arguments=_args, run=_run)


if __name__ == "__main__":
    raise SystemExit(main())
