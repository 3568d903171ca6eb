"""MSAP3 seismology: global solar-like oscillation parameters (numax, Delta nu) of one star.

Method (``measure``):

1. Spectrum. Relative flux in ppm, high-passed (triangular running mean, 2 x 0.5 d) so that
   rotation cannot leak into the p-mode range through the gaps; significant dips (transits)
   are cut out (1-h running mean below -5 robust sigma, +-1 h) so their sharp edges cannot
   make a comb of orbital harmonics. Power density from astropy ``LombScargle`` (fast method,
   ``normalization='psd'``) on a 1/T grid up to Nyquist, scaled to ppm^2/uHz by Parseval.
2. Background. Medians in 0.02-dex bins (/ln 2, the mean of a chi^2 2-dof spectrum), fitted
   in log space (scipy least_squares, soft-L1) by white noise + two Harvey profiles (exponent
   4, times the sinc^2 exposure attenuation); a running median is the fallback.
3. Search. For trial numax on a log grid (NUMAX_MIN_UHZ - min(NUMAX_MAX_UHZ, 0.85 Nyquist),
   or a factor 2 around ``numax_guess``): excess SNR = (mean PSD/background - 1) x sqrt(bins)
   over one expected envelope FWHM (0.66 numax^0.88, Mosser et al. 2012), against the fit
   corrected by a straight line through its residuals on both flanks; comb SNR = the
   smoothed autocorrelation of PSD/background at lags 0.75-1.3 Dnu_exp (Dnu_exp = 0.263
   numax^0.772, Stello et al. 2009) in units of white-noise scatter. The trial with the
   largest sum is the candidate. Detected when excess >= EXCESS_SNR_MIN and comb >=
   COMB_SNR_MIN (smooth background errors raise the excess but not the comb; combs without
   an excess are not p-mode envelopes); otherwise numax/Dnu are NaN.
4. numax. Background refitted with the envelope masked; the background-subtracted spectrum
   (unbiased by the background slope, unlike the ratio) smoothed by a Gaussian of FWHM
   4 Dnu_exp; a Gaussian fitted around its peak gives numax.
5. Dnu. Autocorrelation of PSD/background over numax +- 0.75 FWHM (structure > Dnu/4
   removed, smoothed over 0.03 Dnu): highest peak within 0.75-1.3 Dnu_exp, which excludes
   the Dnu/2 and 2 Dnu aliases, refined by a Gaussian fit (sub-bin).

Uncertainties are documented approximations, not a full MCMC: numax_err = 1-sigma centroid
error of a Gaussian fitted to the background-subtracted spectrum averaged in Dnu-wide bins
(covariance scaled by the residual scatter), in quadrature with 1 % of numax (spread between
numax definitions); dnu_err = intrinsic width (sigma) of the ACF peak divided by the number
of radial orders in the ACF window. ``teff`` is accepted but not used by this method.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stellarflow_contracts import chunk as stage
from stellarflow_contracts.timeseries import mad_std

MODULE = "msap3_seismology"
__version__ = "1.0.0"

HIGHPASS_D = 0.5  # half-width of each running-mean box (days)
NUMAX_MIN_UHZ = 200.0
NUMAX_MAX_UHZ = 6000.0
# Detection needs both: power excess (EXCESS_SNR_MIN) and a mode comb (COMB_SNR_MIN). Set on
# synthetic non-oscillators (none reached comb 3.5) and weak synthetic oscillators.
EXCESS_SNR_MIN = 3.0
COMB_SNR_MIN = 3.5
PSD_STORE_MAX = 20000
ACF_SMOOTH = 0.03  # ACF smoothing kernel sigma, fraction of Dnu_exp (~ width of a mode peak)
ACF_WINDOW = 0.75  # ACF over numax +- ACF_WINDOW x envelope FWHM


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


def envelope_fwhm(numax: float) -> float:
    return 0.66 * numax**0.88  # Mosser et al. (2012)


def dnu_expected(numax: float) -> float:
    return 0.263 * numax**0.772  # Stello et al. (2009)


def _running_mean(t: np.ndarray, y: np.ndarray, half: float) -> np.ndarray:
    """Mean of y within +-half (time units) of each t; t sorted; handles gaps."""
    c = np.concatenate(([0.0], np.cumsum(y)))
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    return (c[hi] - c[lo]) / (hi - lo)


def highpass(t_d: np.ndarray, y: np.ndarray, half_d: float = HIGHPASS_D) -> np.ndarray:
    # Box twice = triangular kernel: sidelobes ~1/(pi f w)^2, negligible above ~50 uHz.
    smooth = _running_mean(t_d, _running_mean(t_d, y, half_d), half_d)
    return y - smooth


def mask_dips(t_d: np.ndarray, y: np.ndarray, half_d: float = 1.0 / 48, nsig: float = 5.0
              ) -> np.ndarray:
    """Mask of samples inside significant dips (transits, eclipses) of the high-passed flux.

    A 1-h running mean beats the p modes down; dips below -nsig robust sigma are masked with
    a margin of 1 h on each side, so their sharp edges cannot put a comb of orbital harmonics
    into the spectrum."""
    smooth = _running_mean(t_d, y, half_d)
    mad = mad_std(smooth)
    dip = smooth < np.median(smooth) - nsig * mad
    if not dip.any():
        return np.zeros(t_d.size, bool)
    # Dilate by 1 h: cumulative counts of dip samples within +-margin.
    margin = 1.0 / 24.0
    c = np.concatenate(([0], np.cumsum(dip)))
    lo = np.searchsorted(t_d, t_d - margin, side="left")
    hi = np.searchsorted(t_d, t_d + margin, side="right")
    return (c[hi] - c[lo]) > 0


def power_density(time_d: np.ndarray, flux_ppm: np.ndarray, cadence_s: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One-sided PSD (ppm^2/uHz) on a 1/T grid up to Nyquist, Parseval-normalised."""
    from astropy.timeseries import LombScargle

    t_s = (time_d - time_d[0]) * 86400.0
    span = t_s[-1]
    df = 1.0 / span
    nyquist = 0.5 / cadence_s
    freq = np.arange(1, int(nyquist / df) + 1) * df
    ls = LombScargle(t_s, flux_ppm, normalization="psd", fit_mean=False, center_data=True)
    # Low-rank NUFFT at 1e-6 relative accuracy: ~4x faster than the 5e-13 default, and far
    # below the chi^2 scatter of any PSD bin.
    p = ls.power(freq, method="fast", method_kwds={"trig_sum_kwds": {"eps": 1e-6}})
    psd = p * np.var(flux_ppm) / (p.sum() * df * 1e6)
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
    if f.size - edges[-2] < min_pts and len(edges) > 2:
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
    (soft L1 in log space, masked bins left out); best of a few starting knees."""
    from scipy.optimize import least_squares

    use = np.ones(lx.size, bool) if mask is None else ~mask
    x, y = 10 ** lx[use], ly[use]
    if x.size < 8:
        return None
    white = float(np.median(y[x >= x.max() / 3])) if np.any(x >= x.max() / 3) else float(y[-1])
    low = float(np.max(y[: max(3, x.size // 10)]))
    best = None
    for knee in (200.0, 800.0, 3000.0):
        p0 = np.array([white, low, math.log10(knee / 3), low - 0.7, math.log10(knee)])
        lo_b = [white - 2, white - 4, 0.5, white - 4, 1.0]
        hi_b = [white + 2, low + 3, 4.5, low + 3, 4.8]
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
    n = int(i1 - i0)
    if n < 3 * dexp / df:
        return None
    box = max(3, int(0.4 * dexp / df))
    seg = ratio[i0:i1]
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


def _excess_search(f: np.ndarray, psd: np.ndarray, base: np.ndarray, lx: np.ndarray,
                   lres: np.ndarray, lo: float, hi: float, n_trials: int = 80
                   ) -> tuple[float, float, float, tuple[float, float] | None]:
    """Trial numax (log grid) with the largest detection score = excess-power SNR over one
    expected envelope FWHM (against the global fit corrected by the trial's own flank line)
    + comb SNR. Returns (numax, excess_snr, comb_snr, flank correction)."""
    best: tuple[float, float, float, tuple[float, float] | None] = (
        math.nan, -math.inf, -math.inf, None)
    logf = np.log10(f)
    df = f[1] - f[0]
    ratio = psd / base
    for nu in np.geomspace(lo, hi, n_trials):
        half = 0.5 * envelope_fwhm(nu)
        i0, i1 = np.searchsorted(f, [nu - half, nu + half])
        if i1 - i0 < 10:
            continue
        corr = _flank_correction(lx, lres, nu)
        bg = base[i0:i1]
        if corr is not None:
            bg = bg * 10 ** (corr[0] * logf[i0:i1] + corr[1])
        ex = float((np.mean(psd[i0:i1] / bg) - 1.0) * math.sqrt(i1 - i0))
        comb = _comb_snr(f, ratio, nu, df)
        if ex + comb > best[1] + best[2]:
            best = (float(nu), ex, comb, corr)
    return best


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
    dexp = dnu_expected(numax)
    idx = np.flatnonzero((lags >= 0.75 * dexp) & (lags <= 1.3 * dexp))
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


def measure(time_d: np.ndarray, flux_rel: np.ndarray, cadence_s: float | None = None,
            teff: float | None = None, numax_guess: float | None = None) -> SeismicResult:
    """Global seismic parameters from a relative light curve (median ~1).

    ``teff`` is accepted for interface symmetry (not needed by this method); ``numax_guess``
    (e.g. from logg and Teff) restricts the numax search to a factor 2 either side of it.
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
    ppm = highpass(t, ppm)
    dips = mask_dips(t, ppm)
    if dips.mean() < 0.5:  # more would be variability, not transits: keep everything
        t, ppm = t[~dips], highpass(t[~dips], ppm[~dips])
    f, psd = power_density(t, ppm, cadence_s)
    df = f[1] - f[0]
    nyq = f[-1]

    lx, ly = _log_bins(f, psd, lo=max(30.0, 20 * df))
    lb = _running_median(lx, ly, 0.25)  # fallback when the fit fails

    def model_on(params: np.ndarray | None) -> np.ndarray:
        if params is None:
            return 10 ** np.interp(np.log10(np.maximum(f, 10 ** lx[0])), lx, lb)
        return _harvey_model(params, f, nyq)

    background = model_on(fit_background(lx, ly, nyq))
    lres = ly - np.log10(np.interp(lx, np.log10(f), background))
    lo, hi = NUMAX_MIN_UHZ, min(NUMAX_MAX_UHZ, 0.85 * nyq)
    if numax_guess is not None and np.isfinite(numax_guess) and numax_guess > 0:
        lo, hi = max(lo, numax_guess / 2.0), min(hi, numax_guess * 2.0)
    result = SeismicResult(detected=False)
    if hi > lo * 1.05:
        numax0, excess, comb, corr = _excess_search(f, psd, background, lx, lres, lo, hi)
        if math.isfinite(numax0):
            result.numax_candidate_uhz, result.excess_snr = numax0, excess
            result.comb_snr = comb
            # Final background: the global fit redone with this envelope masked out.
            masked = fit_background(lx, ly, nyq, mask=_envelope_mask(lx, numax0))
            if masked is not None:
                background = model_on(masked)
            elif corr is not None:
                region = (f >= numax0 / 2.5) & (f <= numax0 * 2.5)
                background[region] *= 10 ** (corr[0] * np.log10(f[region]) + corr[1])
            ratio = psd / background
            if result.excess_snr >= EXCESS_SNR_MIN:
                numax, numax_err = _numax_refine(f, psd - background, numax0, df)
                dnu, dnu_err = _acf_dnu(f, ratio, numax, df)
                if result.comb_snr >= COMB_SNR_MIN and math.isfinite(dnu):
                    result.detected = True
                    result.numax_uhz, result.numax_err_uhz = numax, numax_err
                    result.dnu_uhz, result.dnu_err_uhz = dnu, dnu_err
    result.frequency_uhz, result.psd, result.background = f, psd, background
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
