"""Synthetic PLATO-like observations with known truths.

``generate(outdir, n_stars, days, cadence_s, seed, observation_id)`` writes ``manifest.yaml``
(manifest contract), ``lightcurves/<star_id>.h5`` (light-curve contract) and ``truths.ecsv``.

Each star is drawn from its own random stream ``default_rng([seed, index])``, so star ``i`` is
the same whatever the number of stars. Its kind follows the index (``KIND_CYCLE``):

- ``oscillator``: F/G dwarf or subgiant, numax 500-3000 uHz, solar-like modes;
- ``transit``: G/K dwarf with a transiting planet;
- ``rotator``: spotted star, Prot 2-25 d, quasi-periodic with evolving amplitude;
- ``quiet``: granulation and white noise only;
- ``oscillator_transit``: oscillating host with a transiting planet;
- ``hot``: Teff > 7000 K, weak granulation, no oscillations;
- ``giant``: red giant, numax 10-250 uHz, l = 1 mixed modes, fainter (V 8.5-12.5);
- ``subgiant``: numax 250-700 uHz;
- ``hot_jupiter``: deep transits (1-3 %), P 0.8-6 d;
- ``active``: strong, fast spot variability (0.3-3 %, Prot 0.5-5 d), no planet;
- ``active_transit``: the same variability with a transiting planet.
Indices 0-9 of ``KIND_CYCLE`` are the original mix; 10-19 add the harder cases, some without a
log g in the manifest (``logg_given``). ``time_start`` sets the epoch (Kepler-era light curves
have negative BJD - 2457000 times).

Stochastic signals (modes + granulation) are drawn in the frequency domain: the model PSD times
chi-square(2 dof) noise (complex Gaussian with random phases), then one inverse real FFT on the
regular time grid. Quality bits: 1 = flagged gap (pointing excursion), 128 = outlier spike.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stellarflow_contracts import lightcurve, solar

TIME_START = 3000.0  # BJD_TDB - 2457000
KEPLER_ERA_START = -1500.0  # BJD 2455500: Kepler's fourth year, times before BJD 2457000
NUMAX_SUN = solar.NUMAX_SUN_UHZ
DNU_SUN = solar.DNU_SUN_UHZ
TEFF_SUN = solar.TEFF_SUN_K
LOGG_SUN = solar.LOGG_SUN
RSUN_IN_REARTH = 109.1
QUALITY_GAP = 1
QUALITY_OUTLIER = 128
KIND_CYCLE = ("oscillator", "transit", "rotator", "quiet", "oscillator_transit",
              "hot", "oscillator", "rotator", "transit", "quiet",
              "giant", "hot_jupiter", "subgiant", "active", "giant",
              "active_transit", "giant", "quiet", "subgiant", "hot_jupiter")
# Positions of KIND_CYCLE whose manifest entry has no log g (Teff only).
NO_LOGG_POSITIONS = frozenset({10, 12, 16, 19})
KINDS = tuple(dict.fromkeys(KIND_CYCLE))
PLANET_KINDS = ("transit", "oscillator_transit", "hot_jupiter", "active_transit")
SEISMIC_KINDS = ("oscillator", "oscillator_transit", "giant", "subgiant")
ROTATOR_KINDS = ("rotator", "active", "active_transit")
# Visibilities (power, relative to l=0) of l = 0, 1, 2 modes.
MODE_VISIBILITY = (1.0, 1.5, 0.5)
FLUX_V11 = 1.0e5  # e-/s at V = 11 (sets photon noise: ~630 ppm per 25 s at V = 11)
NOISE_FLOOR_PPM = 20.0  # per cadence, instrument systematics floor
MIN_MODE_HEIGHT_RATIO = 10.0  # l=0 mode height / background at numax for seismic targets
TRANSIT_SNR_DETECTABLE = 15.0


@dataclass
class Truth:
    star_id: str
    kind: str
    teff: float
    logg: float
    feh: float
    radius_rsun: float
    mass_msun: float
    vmag: float
    flux_e_per_s: float
    noise_ppm: float  # white noise per cadence
    prot_d: float = math.nan
    spot_amplitude_ppm: float = math.nan
    numax_uhz: float = math.nan
    dnu_uhz: float = math.nan
    amax_ppm: float = math.nan
    transit_period_d: float = math.nan
    transit_t0_d: float = math.nan
    transit_depth_ppm: float = math.nan
    transit_duration_h: float = math.nan
    transit_b: float = math.nan
    n_transits: int = 0
    planet_radius_rearth: float = math.nan
    prot_detectable: bool = False
    seismic_detectable: bool = False
    transit_detectable: bool = False
    seismic_snr: float = math.nan  # expected excess SNR of the envelope (see simulate_star)
    logg_given: bool = True  # whether the manifest carries a log g for this star


numax_scaling = solar.numax_scaling
dnu_scaling = solar.dnu_scaling
logg_of = solar.logg_of


def noise_ppm(vmag: float, cadence_s: float = 25.0) -> float:
    """White noise per cadence: photon noise of FLUX_V11 scaled by magnitude, plus a floor."""
    flux = FLUX_V11 * 10 ** (-0.4 * (vmag - 11.0))
    floor = NOISE_FLOOR_PPM * math.sqrt(25.0 / cadence_s)
    return math.hypot(1e6 / math.sqrt(flux * cadence_s), floor)


def granulation_psd(freq_uhz: np.ndarray, numax: float, scale: float = 1.0) -> np.ndarray:
    """Two Harvey profiles (Kallinger et al. 2014 scalings with numax), ppm^2/uHz."""
    a = scale * 3382.0 * numax**-0.609  # rms ppm per component
    psd = np.zeros_like(freq_uhz)
    xi = 2.0 * math.sqrt(2.0) / math.pi  # so that each component integrates to a^2
    for b in (0.317 * numax**0.970, 0.948 * numax**0.992):
        psd += xi * a**2 / b / (1.0 + (freq_uhz / b) ** 4)
    return psd


def linewidth_uhz(teff: float, numax: float = math.inf) -> float:
    # Appourchaux et al. (2012)-like growth of linewidth with Teff; red giants' radial modes
    # are ~0.1-0.2 uHz wide (Vrard et al. 2018).
    if numax < 300.0:
        return float(np.clip(0.12 * math.exp((teff - 4800.0) / 1200.0), 0.05, 0.4))
    return float(np.clip(1.0 * math.exp((teff - TEFF_SUN) / 600.0), 0.5, 6.0))


def amax_ppm(mass: float, radius: float, teff: float) -> float:
    """Radial-mode rms amplitude at numax (Huber et al. 2011 scaling, solar 3 ppm)."""
    lum = radius**2 * (teff / TEFF_SUN) ** 4
    return 3.0 * lum**0.838 * mass**-1.32 * (teff / TEFF_SUN) ** -1.0


def mode_psd(freq_uhz: np.ndarray, numax: float, dnu: float, teff: float, amax: float,
             rng: np.random.Generator) -> np.ndarray:
    """l = 0, 1, 2 Lorentzian comb under a Gaussian envelope at numax (asymptotic relation)."""
    psd = np.zeros_like(freq_uhz)
    fwhm_env = 0.66 * numax**0.88  # Mosser et al. (2012)
    sig_env = fwhm_env / 2.3548
    gamma = linewidth_uhz(teff, numax)
    # Red giants: each l = 1 p mode is split into mixed modes spaced by nu^2 DeltaPi1
    # (DeltaPi1 60-90 s on the RGB, Vrard et al. 2016), the power shared in a Lorentzian of
    # width ~0.1 Dnu around the p mode, the mixed modes narrower than the radial ones.
    giant = numax < 300.0
    dpi1_s = rng.uniform(60.0, 90.0) if giant else 0.0
    eps = rng.uniform(1.1, 1.5)
    alpha = 0.015 * dnu**-0.32  # curvature (Mosser et al. 2013)
    d02, d01 = 0.12 * dnu, 0.025 * dnu
    n_max = numax / dnu - eps
    df = freq_uhz[1] - freq_uhz[0]
    half = int(math.ceil(40 * gamma / df))  # Lorentzian evaluated within +-20 linewidths
    for n in range(int(n_max - 5 * sig_env / dnu) - 1, int(n_max + 5 * sig_env / dnu) + 2):
        for ell, vis in enumerate(MODE_VISIBILITY):
            shift = (0.0, d01, d02)[ell]
            nu = dnu * (n + ell / 2 + eps + 0.5 * alpha * (n - n_max) ** 2) - shift
            if nu <= 0 or nu >= freq_uhz[-1]:
                continue
            a2 = amax**2 * vis * math.exp(-0.5 * ((nu - numax) / sig_env) ** 2)
            step = nu * nu * dpi1_s * 1e-6 if giant and ell == 1 else 0.0
            if step > df:  # mixed modes resolved by the data (else: one l = 1 mode)
                kmax = min(int(0.3 * dnu / step) + 1, 200)
                ks = np.arange(-kmax, kmax + 1)
                w = 1.0 / (1.0 + (ks * step / (0.1 * dnu)) ** 2)
                w /= w.sum()
                parts = [(nu + k * step, a2 * wk, 0.5 * gamma)
                         for k, wk in zip(ks, w, strict=True)]
            else:
                parts = [(nu, a2, gamma)]
            for nu_k, a2_k, g_k in parts:
                if nu_k <= 0 or nu_k >= freq_uhz[-1]:
                    continue
                height = 2.0 * a2_k / (math.pi * g_k)  # integral of the Lorentzian = a2
                k = int(round(nu_k / df))
                lo, hi = max(k - half, 1), min(k + half, freq_uhz.size)
                if hi <= lo:
                    continue
                x = 2.0 * (freq_uhz[lo:hi] - nu_k) / g_k
                # a mode narrower than a bin: its power in the bins it falls in (no aliasing
                # of an unresolved Lorentzian into a spike the grid misses)
                if g_k < 2 * df:
                    if 0 < k < psd.size:
                        psd[k] += a2_k / df
                else:
                    psd[lo:hi] += height / (1.0 + x * x)
    return psd


def realise_psd(psd: np.ndarray, n: int, df_uhz: float, rng: np.random.Generator) -> np.ndarray:
    """Time series (ppm) whose one-sided PSD (ppm^2/uHz on the rfft grid) is ``psd``.

    Complex Gaussian coefficients = random phases and chi-square 2-dof powers; scaled so the
    variance equals the PSD's integral (Parseval)."""
    coef = rng.standard_normal(psd.size) + 1j * rng.standard_normal(psd.size)
    coef *= n * np.sqrt(psd * df_uhz / 4.0)
    coef[0] = 0.0
    return np.fft.irfft(coef, n)


def smooth_noise(t: np.ndarray, tau_d: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance smooth Gaussian process with correlation time ~tau_d (days)."""
    from scipy.ndimage import gaussian_filter1d

    step = tau_d / 8.0
    grid = np.arange(t[0] - 4 * tau_d, t[-1] + 4 * tau_d + step, step)
    g = gaussian_filter1d(rng.standard_normal(grid.size), sigma=4.0, mode="wrap")
    g /= g.std()
    return np.interp(t, grid, g)


def spot_signal(t: np.ndarray, prot: float, amp_ppm: float, rng: np.random.Generator) -> np.ndarray:
    """Quasi-periodic spot modulation: fundamental + weaker harmonic with evolving amplitude
    and slowly wandering phase (spot lifetimes of a few rotations)."""
    tau = prot * rng.uniform(2.5, 4.0)
    env = np.clip(1.0 + 0.3 * smooth_noise(t, tau, rng), 0.4, None)
    phase1 = 0.3 * smooth_noise(t, tau, rng)
    phase2 = 0.5 * smooth_noise(t, tau, rng)
    h2 = rng.uniform(0.15, 0.35)
    w = 2 * math.pi / prot
    return amp_ppm * env * (np.sin(w * t + phase1 + rng.uniform(0, 2 * math.pi))
                            + h2 * np.sin(2 * w * t + phase2 + rng.uniform(0, 2 * math.pi)))


def transit_model(t: np.ndarray, period: float, t0: float, k: float, a_rs: float, b: float,
                  u1: float = 0.4, u2: float = 0.25) -> np.ndarray:
    """Relative flux deficit of a small planet (radius ratio k) on a circular orbit, quadratic
    limb darkening in the small-planet approximation, linear ingress/egress ramps."""
    phase = (t - t0 + 0.5 * period) % period - 0.5 * period  # days from mid-transit
    x = a_rs * np.sin(2 * math.pi * phase / period)
    z = np.sqrt(x * x + b * b)  # projected separation in stellar radii
    deficit = np.zeros_like(t)
    m = (z < 1.0 + k) & (np.abs(phase) < 0.25 * period)
    if not m.any():
        return deficit
    zi = np.minimum(z[m], 1.0)
    mu = np.sqrt(1.0 - zi * zi)
    intensity = (1 - u1 * (1 - mu) - u2 * (1 - mu) ** 2) / (1 - u1 / 3 - u2 / 6)
    covered = np.clip((1.0 + k - z[m]) / (2.0 * k), 0.0, 1.0)
    deficit[m] = k * k * intensity * covered
    return deficit


def _stellar_params(kind: str, rng: np.random.Generator, over: dict[str, float]
                    ) -> tuple[float, float, float, float]:
    """teff, mass, radius, feh for a kind (``over`` may fix numax_uhz for seismic kinds)."""
    feh = float(rng.normal(0.0, 0.2))
    if kind.startswith("oscillator"):
        teff = rng.uniform(5500, 6500)
        mass = rng.uniform(0.95, 1.45)
        numax = math.exp(rng.uniform(math.log(500), math.log(3000)))
        numax = over.get("numax_uhz", numax)
        radius = math.sqrt(NUMAX_SUN * mass * (teff / TEFF_SUN) ** -0.5 / numax)
    elif kind in ("giant", "subgiant"):
        giant = kind == "giant"
        teff = rng.uniform(4300, 5200) if giant else rng.uniform(5000, 6100)
        mass = rng.uniform(0.9, 2.0) if giant else rng.uniform(1.0, 1.6)
        lo, hi = (10.0, 250.0) if giant else (250.0, 700.0)
        numax = over.get("numax_uhz", math.exp(rng.uniform(math.log(lo), math.log(hi))))
        radius = math.sqrt(NUMAX_SUN * mass * (teff / TEFF_SUN) ** -0.5 / numax)
    elif kind == "hot":
        teff = rng.uniform(7100, 8800)
        mass = rng.uniform(1.6, 2.2)
        radius = mass**0.8 * rng.uniform(0.95, 1.4)
    else:  # G/K dwarfs
        teff = rng.uniform(4700, 6000)
        mass = (teff / TEFF_SUN) ** 1.7 * rng.uniform(0.95, 1.05)
        radius = mass**0.85 * rng.uniform(0.95, 1.08)
    return float(teff), float(mass), float(radius), feh


def _brighten(tr: Truth, cadence_s: float) -> float:
    """Seismic targets are bright: brighten until the l=0 mode height at numax clearly
    exceeds the background there (keeps every injected dwarf oscillator detectable)."""
    vmag = tr.vmag
    height = 2 * tr.amax_ppm**2 / (math.pi * linewidth_uhz(tr.teff, tr.numax_uhz))
    gran = float(granulation_psd(np.array([tr.numax_uhz]), tr.numax_uhz)[0])
    while vmag > 6.0:
        white = 2 * noise_ppm(vmag, cadence_s) ** 2 * cadence_s * 1e-6
        if height >= MIN_MODE_HEIGHT_RATIO * (white + gran):
            break
        vmag -= 0.1
    return vmag


def _draw_truth(index: int, kind: str, days: float, cadence_s: float,
                rng: np.random.Generator, over: dict[str, float] | None = None) -> Truth:
    """Draw a star's truths. ``over`` fixes drawn values (numax_uhz, vmag, prot_d,
    spot_amplitude_ppm, transit_period_d, planet_radius_rearth): the completeness study
    sweeps them; the draws still happen, so the random stream is the same."""
    over = over or {}
    teff, mass, radius, feh = _stellar_params(kind, rng, over)
    vmag = float(rng.uniform(8.5, 11.0))
    if kind in ("giant", "subgiant"):
        vmag = float(rng.uniform(8.5, 12.5))
    vmag = over.get("vmag", vmag)
    tr = Truth(star_id=f"star{index:05d}", kind=kind, teff=teff, logg=logg_of(mass, radius),
               feh=feh, radius_rsun=radius, mass_msun=mass, vmag=vmag, flux_e_per_s=0.0,
               noise_ppm=0.0)
    tr.logg_given = index % len(KIND_CYCLE) not in NO_LOGG_POSITIONS
    if kind in SEISMIC_KINDS:
        tr.numax_uhz = numax_scaling(mass, radius, teff)
        tr.dnu_uhz = dnu_scaling(mass, radius)
        tr.amax_ppm = amax_ppm(mass, radius, teff)
        if kind.startswith("oscillator") and "vmag" not in over:
            tr.vmag = vmag = _brighten(tr, cadence_s)
            tr.seismic_detectable = True
    if kind == "rotator":
        tr.prot_d = float(math.exp(rng.uniform(math.log(2.0), math.log(25.0))))
        tr.spot_amplitude_ppm = float(math.exp(rng.uniform(math.log(1000), math.log(20000))))
    elif kind in ("active", "active_transit"):
        tr.prot_d = float(math.exp(rng.uniform(math.log(0.5), math.log(5.0))))
        tr.spot_amplitude_ppm = float(math.exp(rng.uniform(math.log(3000), math.log(30000))))
    if kind in ROTATOR_KINDS:
        tr.prot_d = over.get("prot_d", tr.prot_d)
        tr.spot_amplitude_ppm = over.get("spot_amplitude_ppm", tr.spot_amplitude_ppm)
        tr.prot_detectable = tr.prot_d <= days / 4.0
    if kind in PLANET_KINDS:
        if kind in ("transit", "oscillator_transit"):
            tr.transit_period_d = float(rng.uniform(1.0, max(1.5, days / 4.0)))
        elif kind == "hot_jupiter":
            tr.transit_period_d = float(rng.uniform(0.8, max(1.2, min(6.0, days / 2.5))))
        else:
            tr.transit_period_d = float(rng.uniform(1.0, max(1.5, days / 3.0)))
        tr.transit_period_d = over.get("transit_period_d", tr.transit_period_d)
        tr.transit_t0_d = TIME_START + float(rng.uniform(0.1, 0.9)) * tr.transit_period_d
        lo, hi = {"transit": (3.0, 13.0), "oscillator_transit": (6.0, 14.0),
                  "hot_jupiter": (11.0, 17.0), "active_transit": (4.0, 14.0)}[kind]
        tr.planet_radius_rearth = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if kind == "hot_jupiter":  # deep: (Rp/R*)^2 of 1-3 % whatever the star's radius
            depth = math.exp(rng.uniform(math.log(0.01), math.log(0.03)))
            tr.planet_radius_rearth = math.sqrt(depth) * radius * RSUN_IN_REARTH
        tr.planet_radius_rearth = over.get("planet_radius_rearth", tr.planet_radius_rearth)
        tr.transit_b = float(rng.uniform(0.0, 0.7))
    tr.flux_e_per_s = FLUX_V11 * 10 ** (-0.4 * (tr.vmag - 11.0))
    tr.noise_ppm = noise_ppm(tr.vmag, cadence_s)
    return tr


def _gaps(n_time: int, cadence_d: float, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """Index masks (removed, flagged) for one removed gap and possibly one flagged gap."""
    removed = np.zeros(n_time, bool)
    flagged = np.zeros(n_time, bool)
    span = n_time * cadence_d
    n_gaps = int(rng.integers(1, 3))
    for i, mask in enumerate((removed, flagged)[:n_gaps]):
        length = min(rng.uniform(0.5, 2.0), 0.1 * span)
        # First gap in the first half, second in the second half: they never overlap.
        start = rng.uniform(0.1, max(0.1, 0.5 - length / span)) * span + i * 0.4 * span
        s, e = int(start / cadence_d), int((start + length) / cadence_d)
        mask[max(s, 0):min(e, n_time)] = True
    return removed, flagged


def simulate_star(index: int, days: float, cadence_s: float, seed: int, *,
                  kind: str | None = None, time_start: float = TIME_START,
                  overrides: dict[str, float] | None = None
                  ) -> tuple[lightcurve.LightCurve, Truth]:
    """One star: its contract light curve and its truths. ``kind`` defaults to the index's
    place in KIND_CYCLE; ``time_start`` is the first time stamp (BJD_TDB - 2457000);
    ``overrides`` fixes drawn values (see ``_draw_truth``)."""
    rng = np.random.default_rng([seed, index])
    kind = kind or KIND_CYCLE[index % len(KIND_CYCLE)]
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    tr = _draw_truth(index, kind, days, cadence_s, rng, overrides)
    if np.isfinite(tr.transit_t0_d):
        tr.transit_t0_d += time_start - TIME_START
    cad_d = cadence_s / 86400.0
    n = int(round(days / cad_d))
    t = time_start + np.arange(n) * cad_d

    # Stochastic part (granulation + modes) on the rfft grid.
    df = 1e6 / (n * cadence_s)  # uHz
    freq = np.arange(n // 2 + 1) * df
    numax_gran = tr.numax_uhz if np.isfinite(tr.numax_uhz) else numax_scaling(
        tr.mass_msun, tr.radius_rsun, tr.teff)
    psd = granulation_psd(freq, numax_gran, scale=0.1 if kind == "hot" else 1.0)
    if np.isfinite(tr.numax_uhz):
        modes = mode_psd(freq, tr.numax_uhz, tr.dnu_uhz, tr.teff, tr.amax_ppm, rng)
        # Expected excess SNR: mean mode power over the mean background (granulation +
        # white noise) within numax +- FWHM/2, times sqrt(bins): what an ideal search sees.
        half = 0.5 * solar.envelope_fwhm(tr.numax_uhz)
        win = (freq > tr.numax_uhz - half) & (freq < tr.numax_uhz + half)
        white = 2.0 * noise_ppm(tr.vmag, cadence_s) ** 2 * cadence_s * 1e-6
        if win.sum() >= 3:
            eta = np.sinc(freq[win] * 1e-6 * cadence_s) ** 2
            tr.seismic_snr = float(np.mean(modes[win] * eta) / np.mean(psd[win] * eta + white)
                                   * math.sqrt(win.sum()))
        if kind in ("giant", "subgiant"):
            nyquist = 1e6 / (2.0 * cadence_s)
            tr.seismic_detectable = bool(tr.seismic_snr >= 10.0 and tr.dnu_uhz >= 5.0 * df
                                         and tr.numax_uhz <= 0.8 * nyquist)
        psd += modes
    psd *= np.sinc(freq * 1e-6 * cadence_s) ** 2  # integration over each exposure
    rel = realise_psd(psd, n, df, rng) * 1e-6
    if np.isfinite(tr.prot_d):
        rel += spot_signal(t, tr.prot_d, tr.spot_amplitude_ppm, rng) * 1e-6
    removed, flagged = _gaps(n, cad_d, rng)
    if np.isfinite(tr.transit_period_d):
        k = tr.planet_radius_rearth / RSUN_IN_REARTH / tr.radius_rsun
        # Kepler's third law: a/R* = (G M P^2 / 4 pi^2)^(1/3) / R*, solar units -> 215.03 AU/Rsun
        a_rs = 215.03 * (tr.mass_msun * (tr.transit_period_d / 365.25) ** 2) ** (1 / 3) \
            / tr.radius_rsun
        deficit = transit_model(t, tr.transit_period_d, tr.transit_t0_d, k, a_rs, tr.transit_b)
        rel = (1.0 + rel) * (1.0 - deficit) - 1.0
        tr.transit_depth_ppm = k * k * 1e6
        tr.transit_duration_h = (24.0 * tr.transit_period_d / math.pi
                                 * math.asin(min(1.0, math.sqrt((1 + k) ** 2 - tr.transit_b**2)
                                                 / a_rs)))
        centres = tr.transit_t0_d + tr.transit_period_d * np.arange(
            int(days / tr.transit_period_d) + 2)
        idx = np.round((centres - time_start) / cad_d).astype(int)
        idx = idx[(idx >= 0) & (idx < n)]
        tr.n_transits = int(np.count_nonzero(~(removed[idx] | flagged[idx])))
        n_in = tr.n_transits * tr.transit_duration_h * 3600.0 / cadence_s
        snr = tr.transit_depth_ppm / tr.noise_ppm * math.sqrt(max(n_in, 0.0))
        tr.transit_detectable = bool(tr.n_transits >= 2 and snr >= TRANSIT_SNR_DETECTABLE)

    sigma = tr.noise_ppm * 1e-6
    flux = tr.flux_e_per_s * (1.0 + rel + sigma * rng.standard_normal(n))
    quality = np.zeros(n, np.uint32)
    quality[flagged] |= QUALITY_GAP
    # A flagged gap is a pointing excursion: the flux drifts and must not be used.
    if flagged.any():
        flux[flagged] *= 1.0 - 0.003 * np.linspace(0.0, 1.0, int(flagged.sum()))
    spikes = rng.choice(np.flatnonzero(~(removed | flagged)), size=int(rng.integers(4, 13)),
                        replace=False)
    flux[spikes] += (tr.flux_e_per_s * sigma * rng.uniform(20, 100, spikes.size)
                     * rng.choice([-1.0, 1.0], spikes.size))
    quality[spikes] |= QUALITY_OUTLIER
    keep = ~removed
    lc = lightcurve.LightCurve(
        star_id=tr.star_id, time=t[keep], flux=flux[keep],
        flux_err=np.full(int(keep.sum()), tr.flux_e_per_s * sigma), quality=quality[keep],
        cadence_s=float(cadence_s),
        provenance={"source_format": "stellarflow-synthetic",
                    "generator": f"stellarflow.synthetic seed={seed} index={index}"},
    )
    return lc, tr


TRUTH_UNITS = {
    "teff": "K", "radius_rsun": "solRad", "mass_msun": "solMass", "flux_e_per_s": "electron / s",
    "noise_ppm": "1e-06", "prot_d": "d", "spot_amplitude_ppm": "1e-06", "numax_uhz": "uHz",
    "dnu_uhz": "uHz", "amax_ppm": "1e-06", "transit_period_d": "d", "transit_t0_d": "d",
    "transit_depth_ppm": "1e-06", "transit_duration_h": "h", "planet_radius_rearth": "earthRad",
}


def truths_table(truths: list[Truth]):
    from astropy import units as u
    from astropy.table import Table

    rows = [asdict(t) for t in truths]
    table = Table(rows=rows, names=list(rows[0].keys()))
    for name, unit in TRUTH_UNITS.items():
        table[name].unit = u.Unit(unit)
    table.meta["description"] = (
        "Injected truths of a stellarflow synthetic observation. *_ppm columns are parts per "
        "million (unit 1e-06); transit_t0_d is BJD_TDB-2457000 of the first transit; "
        "transit_depth_ppm = (Rp/R*)^2; logg in dex (cgs); NaN where a signal is not injected; "
        "seismic_snr is the expected excess SNR of the mode envelope; logg_given says whether "
        "the manifest carries a log g.")
    return table


def write_manifest(path: Path, observation_id: str, truths: list[Truth],
                   rng: np.random.Generator) -> None:
    from ruamel.yaml import YAML

    stars = []
    for t in truths:
        # Catalogue values as an input catalogue would give them (small errors); the draws
        # happen for every star so that dropping a log g changes nothing else.
        star = {
            "star_id": t.star_id,
            "lightcurve": f"lightcurves/{t.star_id}.h5",
            "teff": round(float(t.teff + rng.normal(0, 60.0)), 0),
            "logg": round(float(t.logg + rng.normal(0, 0.04)), 3),
            "feh": round(float(np.clip(t.feh + rng.normal(0, 0.05), -5, 2)), 3),
        }
        if not t.logg_given:
            del star["logg"]
        stars.append(star)
    doc = {"manifest_version": 1, "observation_id": observation_id, "workflow": "sas",
           "stars": stars}
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with open(path, "w") as fh:
        fh.write(f"# stellarflow synthetic observation '{observation_id}' "
                 "(scripts/generate_observation.py); truths in truths.ecsv\n")
        yaml.dump(doc, fh)


def generate(outdir: str | os.PathLike[str], n_stars: int, days: float, seed: int,
             observation_id: str, cadence_s: float = 25.0,
             time_start: float = TIME_START) -> list[Truth]:
    out = Path(outdir)
    (out / "lightcurves").mkdir(parents=True, exist_ok=True)
    truths = []
    for i in range(n_stars):
        lc, tr = simulate_star(i, days, cadence_s, seed, time_start=time_start)
        lightcurve.write_file(out / "lightcurves" / f"{tr.star_id}.h5", lc)
        truths.append(tr)
    truths_table(truths).write(out / "truths.ecsv", format="ascii.ecsv", overwrite=True)
    write_manifest(out / "manifest.yaml", observation_id, truths,
                   np.random.default_rng([seed, 1_000_000_007]))
    return truths
