"""Solar reference values and the seismic scaling relations that use them: one copy for every module
(stellarflow_contracts.solar).

References: νmax☉ = 3090 µHz and Δν☉ = 135.1 µHz (Huber et al. 2011, the values the SYD
pipeline is calibrated on); Teff☉ = 5777 K; log g☉ = 4.438 (cgs).
"""

from __future__ import annotations

import math

NUMAX_SUN_UHZ = 3090.0
DNU_SUN_UHZ = 135.1
TEFF_SUN_K = 5777.0
LOGG_SUN = 4.438
R_EARTH_PER_R_SUN = 109.08


def numax_from_logg(teff: float, logg: float) -> float:
    """Scaling-relation νmax (µHz) from Teff (K) and log g (dex); NaN when either is unknown
    (Brown et al. 1991; Kjeldsen & Bedding 1995)."""
    if teff is None or logg is None or not (math.isfinite(teff) and math.isfinite(logg)):
        return math.nan
    return NUMAX_SUN_UHZ * 10 ** (logg - LOGG_SUN) * (teff / TEFF_SUN_K) ** -0.5


def numax_scaling(mass: float, radius: float, teff: float) -> float:
    """νmax (µHz) of a star of mass and radius (solar units) and Teff (K)."""
    return NUMAX_SUN_UHZ * mass * radius**-2 * (teff / TEFF_SUN_K) ** -0.5


def dnu_scaling(mass: float, radius: float) -> float:
    """Δν (µHz) of a star of mass and radius (solar units)."""
    return DNU_SUN_UHZ * mass**0.5 * radius**-1.5


def logg_of(mass: float, radius: float) -> float:
    return LOGG_SUN + math.log10(mass / radius**2)


def envelope_fwhm(numax: float) -> float:
    """Full width at half maximum (µHz) of the p-mode envelope (Mosser et al. 2012)."""
    return 0.66 * numax**0.88


def dnu_expected(numax: float) -> float:
    """Δν (µHz) expected at νmax (Stello et al. 2009), dwarfs to red giants."""
    return 0.263 * numax**0.772


def numax_from_dnu(dnu: float) -> float:
    """Inverse of ``dnu_expected``."""
    return (dnu / 0.263) ** (1.0 / 0.772)
