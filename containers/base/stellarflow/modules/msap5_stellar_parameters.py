"""MSAP5 stellar parameters: radius and mass, gyrochronology age.

- Seismic scaling relations (Kjeldsen & Bedding 1995; Brown et al. 1991) with Teff when MSAP3
  measured νmax and Δν:  R = (νmax/νmax☉)(Δν/Δν☉)^-2 (Teff/Teff☉)^0.5,
  M = (νmax/νmax☉)^3 (Δν/Δν☉)^-4 (Teff/Teff☉)^1.5.
- Otherwise the catalogue fallback: Torres, Andersen & Giménez (2010, A&ARv 18, 67) empirical
  calibration of M and R from Teff, log g and [Fe/H] (the manifest's catalogue values).
- Gyrochronology age from Prot and B−V (Barnes 2007), with B−V from Teff (Ballesteros 2012).
Uncertainties are first-order propagations; inputs without errors get the defaults below.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from .. import solar
from ..stage import StarContext, attr_float, module_main, run_chunk

MODULE = "msap5_stellar_parameters"
VERSION = "0.2.0"

NUMAX_SUN = solar.NUMAX_SUN_UHZ  # µHz (Huber et al. 2011)
DNU_SUN = solar.DNU_SUN_UHZ
TEFF_SUN = solar.TEFF_SUN_K
TEFF_ERR_DEFAULT = 100.0  # K, typical spectroscopic error
LOGG_ERR_DEFAULT = 0.1  # dex
FEH_DEFAULT = 0.0
# Torres et al. (2010) coefficients: log M, log R = f(X = log Teff - 4.1, log g, [Fe/H]).
TORRES_A = (1.5689, 1.3787, 0.4243, 1.139, -0.1425, 0.01969, 0.1010)
TORRES_B = (2.4427, 0.6679, 0.1771, 0.705, -0.21415, 0.02306, 0.04173)
TORRES_SCATTER_LOGM, TORRES_SCATTER_LOGR = 0.027, 0.014
# Barnes (2007): P = a [(B-V) - c]^b t^n, t in Myr.
GYRO_A, GYRO_B, GYRO_C, GYRO_N = 0.7725, 0.601, 0.4, 0.5189
GYRO_REL_ERR = 0.15  # the calibration's own scatter on age


@dataclass
class StellarParameters:
    radius_rsun: float = math.nan
    radius_err_rsun: float = math.nan
    mass_msun: float = math.nan
    mass_err_msun: float = math.nan
    method: str = "none"
    age_gyr: float = math.nan
    age_err_gyr: float = math.nan
    bv: float = math.nan


def _finite(*values: float) -> bool:
    return all(v is not None and np.isfinite(v) and v > 0 for v in values)


def seismic(numax: float, numax_err: float, dnu: float, dnu_err: float, teff: float,
            teff_err: float = TEFF_ERR_DEFAULT) -> tuple[float, float, float, float]:
    """Scaling-relation radius and mass (solar units) with propagated errors."""
    x, y, z = numax / NUMAX_SUN, dnu / DNU_SUN, teff / TEFF_SUN
    radius = x * y**-2 * z**0.5
    mass = x**3 * y**-4 * z**1.5
    rx = numax_err / numax if np.isfinite(numax_err) else 0.05
    ry = dnu_err / dnu if np.isfinite(dnu_err) else 0.03
    rz = teff_err / teff
    r_err = radius * math.sqrt(rx**2 + (2 * ry) ** 2 + (0.5 * rz) ** 2)
    m_err = mass * math.sqrt((3 * rx) ** 2 + (4 * ry) ** 2 + (1.5 * rz) ** 2)
    return radius, r_err, mass, m_err


def _torres(teff: float, logg: float, feh: float) -> tuple[float, float]:
    x = math.log10(teff) - 4.1
    terms = (1.0, x, x**2, x**3, logg**2, logg**3, feh)
    log_m = sum(a * t for a, t in zip(TORRES_A, terms, strict=True))
    log_r = sum(b * t for b, t in zip(TORRES_B, terms, strict=True))
    return 10**log_m, 10**log_r


def torres2010(teff: float, logg: float, feh: float = FEH_DEFAULT,
               teff_err: float = TEFF_ERR_DEFAULT, logg_err: float = LOGG_ERR_DEFAULT
               ) -> tuple[float, float, float, float]:
    """Radius and mass from Teff, log g, [Fe/H] (Torres et al. 2010) with propagated errors."""
    mass, radius = _torres(teff, logg, feh)
    m_t, r_t = _torres(teff + teff_err, logg, feh)
    m_g, r_g = _torres(teff, logg + logg_err, feh)
    ln10 = math.log(10.0)
    r_err = radius * math.sqrt(math.log(r_t / radius) ** 2 + math.log(r_g / radius) ** 2
                               + (TORRES_SCATTER_LOGR * ln10) ** 2)
    m_err = mass * math.sqrt(math.log(m_t / mass) ** 2 + math.log(m_g / mass) ** 2
                             + (TORRES_SCATTER_LOGM * ln10) ** 2)
    return radius, r_err, mass, m_err


def bv_from_teff(teff: float) -> float:
    """B−V colour from Teff by inverting Ballesteros (2012)."""
    def f(bv: float) -> float:
        return 4600.0 * (1.0 / (0.92 * bv + 1.7) + 1.0 / (0.92 * bv + 0.62)) - teff

    try:
        return float(brentq(f, -0.4, 2.5))
    except ValueError:
        return math.nan


def gyro_age(prot_d: float, prot_err_d: float, teff: float) -> tuple[float, float, float]:
    """Barnes (2007) gyrochronology age (Gyr) with error; NaN outside 0.45 < B−V < 1.6."""
    bv = bv_from_teff(teff)
    if not (np.isfinite(bv) and 0.45 < bv < 1.6 and _finite(prot_d)):
        return math.nan, math.nan, bv
    age_myr = (prot_d / (GYRO_A * (bv - GYRO_C) ** GYRO_B)) ** (1.0 / GYRO_N)
    rel_p = prot_err_d / prot_d if np.isfinite(prot_err_d) else 0.1
    rel = math.sqrt((rel_p / GYRO_N) ** 2 + GYRO_REL_ERR**2)
    return age_myr / 1000.0, age_myr / 1000.0 * rel, bv


def derive(teff: float, logg: float, feh: float, numax: float, numax_err: float, dnu: float,
           dnu_err: float, prot_d: float, prot_err_d: float) -> StellarParameters:
    p = StellarParameters()
    if _finite(numax, dnu, teff):
        p.radius_rsun, p.radius_err_rsun, p.mass_msun, p.mass_err_msun = seismic(
            numax, numax_err, dnu, dnu_err, teff)
        p.method = "seismic scaling relations"
    elif _finite(numax, teff):
        # νmax alone (a red giant's comb too weak for Δν): the seismic log g, far better than
        # a catalogue one (g ∝ νmax Teff^0.5), into the Torres et al. calibration.
        logg_s = (solar.LOGG_SUN + math.log10(numax / NUMAX_SUN)
                  + 0.5 * math.log10(teff / TEFF_SUN))
        rel = numax_err / numax if np.isfinite(numax_err) else 0.05
        feh = feh if feh is not None and np.isfinite(feh) else FEH_DEFAULT
        p.radius_rsun, p.radius_err_rsun, p.mass_msun, p.mass_err_msun = torres2010(
            teff, logg_s, feh, logg_err=math.hypot(rel / math.log(10.0), 0.01))
        p.method = "Torres et al. 2010 with the seismic log g (numax, Teff)"
    elif _finite(teff) and logg is not None and np.isfinite(logg):
        feh = feh if feh is not None and np.isfinite(feh) else FEH_DEFAULT
        p.radius_rsun, p.radius_err_rsun, p.mass_msun, p.mass_err_msun = torres2010(
            teff, logg, feh)
        p.method = "Torres et al. 2010 (catalogue Teff, log g, [Fe/H])"
    if _finite(teff):
        p.age_gyr, p.age_err_gyr, p.bv = gyro_age(prot_d, prot_err_d, teff)
    return p


def process(ctx: StarContext) -> None:
    prep = ctx.need("prepared")
    rot = ctx.inputs.get("rotation")
    seis = ctx.inputs.get("seismology")

    def get(g, key: str) -> float:
        return attr_float(g, key) if g is not None else math.nan

    p = derive(
        teff=get(prep, "teff"), logg=get(prep, "logg"), feh=get(prep, "feh"),
        numax=get(seis, "numax_uhz"), numax_err=get(seis, "numax_err_uhz"),
        dnu=get(seis, "dnu_uhz"), dnu_err=get(seis, "dnu_err_uhz"),
        prot_d=get(rot, "prot_d"), prot_err_d=get(rot, "prot_err_d"),
    )
    out = ctx.out
    out.attrs["teff"] = get(prep, "teff")
    for key in ("radius_rsun", "radius_err_rsun", "mass_msun", "mass_err_msun", "age_gyr",
                "age_err_gyr", "bv"):
        out.attrs[key] = float(getattr(p, key))
    out.attrs["parameters_method"] = p.method


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prepared", type=Path, required=True, help="chunk file from MSAP1")
    p.add_argument("--rotation", type=Path, required=True, help="chunk file from MSAP4")
    p.add_argument("--seismology", type=Path, help="chunk file from MSAP3 (absent if skipped)")


def _run(args: argparse.Namespace) -> None:
    run_chunk(module=MODULE, version=VERSION, stage="parameters",
              inputs={"prepared": args.prepared, "rotation": args.rotation,
                      "seismology": args.seismology},
              primary="prepared", outdir=args.outdir, process=process)


def main(argv: list[str] | None = None) -> int:
    return module_main(argv, module=MODULE, version=VERSION,
                       description="MSAP5: stellar radius, mass and gyrochronology age",
                       add_arguments=_args, run=_run)


if __name__ == "__main__":
    raise SystemExit(main())
