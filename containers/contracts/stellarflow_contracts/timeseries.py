"""Light-curve helpers more than one science module needs (one copy, in the contracts
library: modules never import each other's code; numpy only, astropy inside dominant_period)."""

from __future__ import annotations

import math
import warnings

import numpy as np

MAD_TO_SIGMA = 1.4826  # sigma of a Gaussian = 1.4826 x its median absolute deviation


def clean(time_d: np.ndarray, flux: np.ndarray, min_points: int = 10
          ) -> tuple[np.ndarray, np.ndarray]:
    """Finite samples of a light curve, sorted by time (float64). ValueError (one line) when
    the arrays do not match or fewer than ``min_points`` samples are finite."""
    time_d = np.asarray(time_d, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if time_d.shape != flux.shape or time_d.ndim != 1:
        raise ValueError(f"time and flux shapes differ: {time_d.shape} vs {flux.shape}")
    ok = np.isfinite(time_d) & np.isfinite(flux)
    if ok.sum() < min_points:
        raise ValueError(f"only {int(ok.sum())} finite samples in the light curve")
    order = np.argsort(time_d[ok], kind="stable")
    return time_d[ok][order], flux[ok][order]


def robust_std(x: np.ndarray) -> float:
    """Scaled median absolute deviation of the finite values (NaN when there are none)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if not x.size:
        return math.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(x - np.median(x))))


def point_to_point_std(x: np.ndarray) -> float:
    """White-noise sigma per sample from successive differences (insensitive to slow signals)."""
    d = np.diff(np.asarray(x, dtype=np.float64))
    return robust_std(d) / math.sqrt(2.0)


def bin_lightcurve(time_d: np.ndarray, flux: np.ndarray, width_d: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean flux in regular bins of ``width_d``; returns (bin centres, mean, count) with NaN
    mean in empty bins, so the grid stays regular."""
    t0 = time_d.min()
    idx = np.floor((time_d - t0) / width_d).astype(np.int64)
    n = int(idx.max()) + 1
    count = np.bincount(idx, minlength=n)
    total = np.bincount(idx, weights=flux, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    centres = t0 + (np.arange(n) + 0.5) * width_d
    return centres, mean, count


def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median over ``window`` samples of a regular series, ignoring NaN."""
    from numpy.lib.stride_tricks import sliding_window_view

    half = window // 2
    padded = np.concatenate([np.full(half, np.nan), values, np.full(half, np.nan)])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows inside long gaps
        return np.nanmedian(sliding_window_view(padded, 2 * half + 1), axis=1)


def running_mean(t: np.ndarray, y: np.ndarray, half: float) -> np.ndarray:
    """Mean of y within +-half (time units) of each t; t sorted; gaps are simply skipped."""
    c = np.concatenate(([0.0], np.cumsum(y)))
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    return (c[hi] - c[lo]) / (hi - lo)


def downsample(x: np.ndarray, y: np.ndarray, n_max: int = 5000
               ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n_max`` points, keeping each block's maximum so peaks survive (storage)."""
    if x.size <= n_max:
        return x, y
    edges = np.linspace(0, x.size, n_max + 1).astype(np.int64)
    idx = np.array([a + int(np.argmax(y[a:b])) for a, b in zip(edges[:-1], edges[1:], strict=True)
                    if b > a])
    return x[idx], y[idx]


def dominant_period(time_d: np.ndarray, flux: np.ndarray, pmin_d: float = 0.2,
                    pmax_d: float = 15.0) -> tuple[float, float, float]:
    """(period in days, Lomb-Scargle power, semi-amplitude) of the strongest periodicity of the
    light curve binned to 30 min, between pmin_d and min(pmax_d, baseline / 3); NaNs when the
    light curve is too short. The power (standard normalisation) is the fraction of the
    variance a sinusoid at that period explains: spot rotation reaches 0.2-0.9."""
    from astropy.timeseries import LombScargle

    nan = math.nan
    if time_d.size < 50:
        return nan, nan, nan
    width = 1.0 / 48.0
    idx = np.floor((time_d - time_d[0]) / width).astype(np.int64)
    cnt = np.bincount(idx)
    keep = cnt > 0
    tb = (np.flatnonzero(keep) + 0.5) * width
    yb = np.bincount(idx, weights=flux)[keep] / cnt[keep]
    span = float(tb[-1] - tb[0])
    pmax = min(pmax_d, span / 3.0)
    if tb.size < 50 or pmax <= 1.5 * pmin_d:
        return nan, nan, nan
    freq = np.arange(1.0 / pmax, 1.0 / pmin_d, 1.0 / (5.0 * span))
    power = LombScargle(tb, yb).power(freq, method="fast")
    i = int(np.argmax(power))
    amp = math.sqrt(2.0 * max(float(power[i]), 0.0)) * float(np.std(yb))
    return float(1.0 / freq[i]), float(power[i]), amp
