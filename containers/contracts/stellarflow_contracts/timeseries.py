"""Light-curve helpers more than one science module needs (one copy each, numpy only)."""

from __future__ import annotations

import warnings

import numpy as np

# Standard deviation of a normal distribution per unit of median absolute deviation.
MAD_TO_STD = 1.4826


def mad_std(x: np.ndarray) -> float:
    """Robust standard deviation (MAD x 1.4826) of the finite values of ``x``; NaN if none."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(MAD_TO_STD * np.median(np.abs(x - np.median(x)))) if x.size else float("nan")


def finite_sorted(time_d: np.ndarray, flux: np.ndarray, min_points: int = 10
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The finite samples of a light curve as float64, in time order.

    Raises ValueError (a one-line reason) when the shapes differ or fewer than ``min_points``
    finite samples remain."""
    time_d = np.asarray(time_d, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if time_d.shape != flux.shape or time_d.ndim != 1:
        raise ValueError(f"time and flux shapes differ: {time_d.shape} vs {flux.shape}")
    ok = np.isfinite(time_d) & np.isfinite(flux)
    if ok.sum() < min_points:
        raise ValueError(f"only {int(ok.sum())} finite samples in the light curve")
    order = np.argsort(time_d[ok], kind="stable")
    return time_d[ok][order], flux[ok][order]


def bin_lightcurve(time_d: np.ndarray, flux: np.ndarray, width_d: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean flux in regular bins of ``width_d``; returns (bin centres, mean, count) with NaN
    mean in empty bins, so the grid stays regular (needed by autocorrelations)."""
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


def downsample(x: np.ndarray, y: np.ndarray, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n_max`` points, keeping each block's maximum so peaks survive."""
    if x.size <= n_max:
        return x, y
    edges = np.linspace(0, x.size, n_max + 1).astype(np.int64)
    idx = np.array([a + int(np.argmax(y[a:b])) for a, b in zip(edges[:-1], edges[1:], strict=True)
                    if b > a])
    return x[idx], y[idx]
