"""MSAP4: surface rotation period and photometric activity index.

Science (``measure``): Lomb-Scargle periodogram (astropy) of the light curve binned to 30 min,
periods from 0.5 d to half the baseline. A peak counts as rotation when its Baluev false-alarm
probability is below ``FAP_MAX`` *and* the light curve repeats itself at that lag (the
autocorrelation function has a local maximum there of at least ``ACF_MIN``): red noise and
drifts give significant low-frequency LS power but no repeating pattern. Stars with two active
longitudes put most LS power at Prot/2; when the ACF at twice the peak period is clearly higher
than at the peak period, the doubled period is reported (McQuillan et al. 2013; Garcia et al.
2014). S_ph is the mean standard deviation of sub-series 5 x Prot long (Garcia et al. 2014).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.timeseries import LombScargle

from stellarflow_contracts.chunk import (
    NotMeasurable,
    StarContext,
    module_main,
    run_chunk,
    write_dataset,
)
from stellarflow_contracts.errors import InputError
from stellarflow_contracts.timeseries import (
    bin_lightcurve,
    clean,
    point_to_point_std,
    running_median,
)
from stellarflow_contracts.timeseries import downsample as _downsample

MODULE = "msap4_rotation"
__version__ = "1.0.0"

BIN_D = 30.0 / 1440.0  # 30-min bins: Kepler long-cadence-like, keeps Prot >= 0.5 d resolved
PMIN_D = 0.5
OVERSAMPLE = 10  # frequency grid step = 1 / (OVERSAMPLE * baseline)
FAP_MAX = 1e-4  # Baluev false-alarm probability of the peak
# ACF height at the period: the signal must repeat, not just be red. Periods above a third of
# the baseline repeat fewer than 3 times, so the ACF there rests on few pairs: stricter.
ACF_MIN = 0.5
ACF_MIN_LONG = 0.7
ACF_2P_MARGIN = 0.1  # prefer 2P when ACF(2P) exceeds ACF(P) by this much
# Peak over the local red-noise continuum (power law fitted within a factor 3 in frequency),
# in units of the continuum's mean.
# chi2(2 dof) noise exceeds x with probability exp(-x): 5 is a loose cut against a handful of
# independent frequencies near a peak; NaN (peak at the grid's low end) is not held against it.
BG_RATIO_MIN = 5.0
MAX_STORED = 5000
DIP_WINDOW_D = 0.5  # running median used to find transit-like dips before the periodogram
DIP_NSIGMA = 5.0
DIP_MAX_FRACTION = 0.25  # a 2-h transit every day, widened by 2 bins, is ~12 %


@dataclass
class RotationResult:
    prot_d: float  # NaN when no rotation detected
    prot_err_d: float  # half width at half maximum of the periodogram peak
    power: float  # normalised LS power of the peak (standard normalisation, 0..1)
    fap: float  # Baluev false-alarm probability of the highest peak
    acf_at_prot: float  # autocorrelation at the reported period
    background_ratio: float  # peak power / local continuum mean
    activity_sph_ppm: float  # S_ph (NaN when Prot unknown)
    candidate_prot_d: float  # best peak whether or not it passed the thresholds
    period_d: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    power_spectrum: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    @property
    def detected(self) -> bool:
        return bool(np.isfinite(self.prot_d))


def clip_dips(values: np.ndarray, window: int, nsigma: float = DIP_NSIGMA) -> np.ndarray:
    """Copy of ``values`` with NaN where it dips below a running median by more than nsigma
    times the point-to-point scatter (and one sample either side): removes transits and
    eclipses, keeps smooth spot signals. If that would remove more than ``DIP_MAX_FRACTION``
    of the samples it is eating a fast, large signal instead: nothing is removed then."""
    resid = values - running_median(values, window)
    if np.count_nonzero(np.isfinite(np.diff(values))) < 10:
        return values
    sigma = point_to_point_std(values)
    bad = resid < -nsigma * sigma
    bad[1:] |= bad[:-1].copy()
    bad[:-1] |= bad[1:].copy()
    if sigma <= 0 or bad.sum() > DIP_MAX_FRACTION * np.isfinite(values).sum():
        return values
    return np.where(bad, np.nan, values)


def acf(values: np.ndarray) -> np.ndarray:
    """Autocorrelation of a regular series with NaN gaps (gap-aware, normalised per lag)."""
    m = np.isfinite(values)
    x = np.where(m, values - np.nanmean(values), 0.0)
    w = m.astype(np.float64)
    n = x.size
    nfft = 1 << int(math.ceil(math.log2(2 * n)))
    fx = np.fft.rfft(x, nfft)
    fw = np.fft.rfft(w, nfft)
    num = np.fft.irfft(fx * np.conj(fx), nfft)[:n]
    pairs = np.fft.irfft(fw * np.conj(fw), nfft)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(pairs > 0.5, num / np.maximum(pairs, 1.0), np.nan)
    return r / r[0]


def _acf_peak(r: np.ndarray, lag_bins: float, rel: float = 0.15) -> float:
    """Highest ACF local maximum within +-rel of ``lag_bins`` (NaN when none)."""
    lo = max(1, int(math.floor(lag_bins * (1 - rel))))
    hi = min(r.size - 2, int(math.ceil(lag_bins * (1 + rel))))
    if hi <= lo:
        return float("nan")
    seg = r[lo - 1: hi + 2]
    best = float("nan")
    for i in range(1, seg.size - 1):
        if np.isfinite(seg[i]) and seg[i] >= seg[i - 1] and seg[i] >= seg[i + 1]:
            if not np.isfinite(best) or seg[i] > best:
                best = float(seg[i])
    return best


def _smooth(r: np.ndarray, width: int) -> np.ndarray:
    if width < 2:
        return r
    k = np.ones(width) / width
    filled = np.where(np.isfinite(r), r, 0.0)
    norm = np.convolve(np.isfinite(r).astype(float), k, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0.5, np.convolve(filled, k, mode="same") / norm, np.nan)


def _hwhm_period(freq: np.ndarray, power: np.ndarray, i: int) -> float:
    """Half width at half maximum of the peak at index ``i``, converted to days."""
    half = power[i] / 2.0
    j = i
    while j > 0 and power[j] > half:
        j -= 1
    k = i
    while k < power.size - 1 and power[k] > half:
        k += 1
    hwhm_f = 0.5 * (freq[k] - freq[j])
    return float(hwhm_f / freq[i] ** 2)


def background_ratio(freq: np.ndarray, power: np.ndarray, i: int, df_res: float) -> float:
    """Peak power over the local red-noise continuum at the peak.

    The continuum is a power law fitted to log-power within a factor 3 in frequency, leaving
    out +-1.5 resolution elements around the peak and its harmonics f/2 and 2f; E[ln x] of
    chi2(2 dof) noise lies 0.577 (Euler's constant) below ln of its mean."""
    f0 = freq[i]
    near = (freq > f0 / 3) & (freq < 3 * f0) & (power > 0)
    for h in (0.5, 1.0, 2.0):
        near &= np.abs(freq - h * f0) > 1.5 * df_res
    # a fit from one side only would be an extrapolation: no verdict then
    if (near & (freq < f0)).sum() < 5 or (near & (freq > f0)).sum() < 5:
        return float("nan")
    x, y = np.log(freq[near]), np.log(power[near])
    slope, intercept = np.polyfit(x, y, 1)
    mean_bg = math.exp(intercept + slope * math.log(f0) + 0.5772)
    return float(power[i] / mean_bg)


def activity_sph(time_d: np.ndarray, flux: np.ndarray, prot_d: float) -> float:
    """S_ph (ppm): mean standard deviation of sub-series 5 x Prot long (Garcia et al. 2014).

    With a baseline shorter than 5 x Prot the whole series is one sub-series."""
    if not np.isfinite(prot_d) or prot_d <= 0:
        return float("nan")
    width = 5.0 * prot_d
    start = time_d.min()
    stds = []
    for lo in np.arange(start, time_d.max(), width):
        sel = (time_d >= lo) & (time_d < lo + width)
        # a sub-series less than half filled would bias S_ph low
        if sel.sum() >= 10 and np.ptp(time_d[sel]) >= 0.5 * min(width, np.ptp(time_d)):
            stds.append(np.std(flux[sel]))
    if not stds:
        return float("nan")
    return float(np.mean(stds) * 1e6)


def measure(time_d: np.ndarray, flux_rel: np.ndarray) -> RotationResult:
    """Rotation period (days) and S_ph (ppm) of a relative light curve (median ~1)."""
    t, f = clean(time_d, flux_rel)
    f = f / np.median(f) - 1.0
    centres, mean, count = bin_lightcurve(t, f, BIN_D)
    raw = mean  # S_ph follows its definition: all the data
    # transits repeat as well as spots do: take them out so they are not read as rotation
    mean = clip_dips(mean, int(round(DIP_WINDOW_D / BIN_D)))
    good = np.isfinite(mean)
    tb, fb = centres[good], mean[good]
    baseline = float(tb.max() - tb.min())
    pmax = baseline / 2.0
    nan = float("nan")
    if pmax <= PMIN_D or tb.size < 20:
        raise NotMeasurable(f"baseline {baseline:.2f} d too short for a rotation search "
                         f"(need > {2 * PMIN_D} d)")
    df = 1.0 / (OVERSAMPLE * baseline)
    freq = np.arange(1.0 / pmax, 1.0 / PMIN_D + df, df)
    ls = LombScargle(tb, fb)
    power = ls.power(freq, method="fast", assume_regular_frequency=True)
    period = 1.0 / freq
    i = int(np.argmax(power))
    fap = float(ls.false_alarm_probability(power[i], method="baluev",
                                           minimum_frequency=freq[0],
                                           maximum_frequency=freq[-1]))
    p_best = float(period[i])

    # The ACF on the regular 30-min grid (gaps NaN), lightly smoothed against noise.
    r = _smooth(acf(mean), max(1, int(round(0.05 * p_best / BIN_D))))
    lag = p_best / BIN_D
    acf_p = _acf_peak(r, lag)
    prot, ip, acf_used = p_best, i, acf_p
    if 2 * p_best <= pmax:
        acf_2p = _acf_peak(r, 2 * lag)
        if np.isfinite(acf_2p) and (not np.isfinite(acf_p) or acf_2p > acf_p + ACF_2P_MARGIN):
            prot, acf_used = 2 * p_best, acf_2p
            # error from the periodogram peak near 2P when there is one, else scale
            near = np.flatnonzero(np.abs(period - prot) < 0.15 * prot)
            ip = int(near[np.argmax(power[near])]) if near.size else -1
    err = _hwhm_period(freq, power, ip) if ip >= 0 else 2 * _hwhm_period(freq, power, i)
    if ip >= 0 and abs(period[ip] - prot) > 0.15 * prot:
        err = 2 * _hwhm_period(freq, power, i)

    ratio = background_ratio(freq, power, i, 1.0 / baseline)
    acf_min = ACF_MIN if prot <= baseline / 3 else ACF_MIN_LONG
    detected = (fap < FAP_MAX and np.isfinite(acf_used) and acf_used >= acf_min
                and not ratio < BG_RATIO_MIN)
    order = np.argsort(period)
    return RotationResult(
        prot_d=prot if detected else nan,
        prot_err_d=err if detected else nan,
        power=float(power[i]),
        fap=fap,
        acf_at_prot=min(float(acf_used), 1.0) if np.isfinite(acf_used) else nan,
        background_ratio=ratio,
        activity_sph_ppm=(activity_sph(centres[count > 0], raw[count > 0], prot) if detected
                          else nan),
        candidate_prot_d=prot,
        period_d=period[order],
        power_spectrum=power[order],
    )


def downsample(x: np.ndarray, y: np.ndarray, n_max: int = MAX_STORED
               ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n_max`` points, keeping each block's maximum so peaks survive."""
    return _downsample(x, y, n_max)


def process(ctx: StarContext) -> None:
    g = ctx.need("prepared")
    if "prepared" not in g:
        raise InputError(None, f"star {ctx.star_id}: no 'prepared' light curve in the chunk")
    res = measure(g["prepared/time"][()], g["prepared/flux"][()])
    out = ctx.out
    out.attrs["prot_d"] = res.prot_d
    out.attrs["prot_err_d"] = res.prot_err_d
    out.attrs["activity_sph_ppm"] = res.activity_sph_ppm
    out.attrs["rotation_power"] = res.power
    out.attrs["rotation_fap"] = res.fap
    out.attrs["rotation_acf"] = res.acf_at_prot
    out.attrs["rotation_background_ratio"] = res.background_ratio
    out.attrs["candidate_prot_d"] = res.candidate_prot_d
    p, pw = downsample(res.period_d, res.power_spectrum)
    pg = out.create_group("periodogram")
    write_dataset(pg, "period_d", p, "d", np.float64)
    write_dataset(pg, "power", pw, "", np.float64)


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prepared", type=Path, required=True, help="prepared chunk file (MSAP1)")


def _run(args: argparse.Namespace) -> None:
    run_chunk(module=MODULE, version=__version__, stage="rotation",
              inputs={"prepared": args.prepared}, primary="prepared", outdir=args.outdir,
              process=process)


def main(argv: list[str] | None = None) -> int:
    return module_main(argv, module=MODULE, version=__version__,
                       description="MSAP4: rotation period (Lomb-Scargle + ACF) and S_ph",
                       add_arguments=_args, run=_run)


if __name__ == "__main__":
    raise SystemExit(main())
