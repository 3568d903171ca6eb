#!/usr/bin/env python3
"""Published values vs what the SAS modules measure on the real light curves of
``tests/data/real/`` (module functions, as the pipeline chains them: ingest readers ->
MSAP1 -> MSAP3 / MSAP4 / transit search). Seismology is run with Teff only and with a log g
0.15 dex too high and too low (the log g from the published numax and Teff, then shifted).

Usage: scripts/science_real.py [--data tests/data/real] [--markdown]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from stellarflow_contracts import lightcurve, solar

REPO = Path(__file__).resolve().parents[1]
# name, files, Teff (K), published numax, dnu (uHz) with errors, reference
SEISMIC = [
    ("KIC 1435467", ["KIC1435467_LC.txt"], 6326.0, (1382.0, 9.0), (70.56, 0.05),
     "SYD pipeline (pySYD results table; Huber et al. 2009)"),
    ("KIC 4646780", ["KIC4646780_LC.txt"], 6200.0, (1120.0, 115.0), (60.0, 3.9),
     "SYD pipeline (pySYD results table)"),
    ("KIC 11802939", ["KIC11802939_LC.txt"], 6000.0, (574.0, 96.0), (36.7, 1.6),
     "SYD pipeline (pySYD results table; numax flagged less reliable)"),
]
KEPLER90 = ["Kepler-90_kplr011442793-2009350155506_llc.fits",
            "Kepler-90_kplr011442793-2010009091648_llc.fits",
            "Kepler-90_kplr011442793-2010174085026_llc.fits"]
KEPLER90_PLANETS = {"b": 7.008, "c": 8.719, "i": 14.449, "d": 59.737, "e": 91.939,
                    "f": 124.914, "g": 210.607, "h": 331.601}
TRANSIT = [
    ("WASP-126", ["WASP-126_TIC25155310_TESS_S01_hlsp_tess-data-alerts_lc.fits"], 1.27, 1.12,
     {"b": 3.28879}, "TESS alerts; Maxted et al. (2016)"),
    ("Kepler-90 (Q3-Q5)", KEPLER90, 1.2, 1.2, KEPLER90_PLANETS,
     "NASA Exoplanet Archive (Cabrera et al. 2014; Shallue & Vanderburg 2018 for i)"),
]


def _prepared(data: Path, files: list[str]):
    import msap1_preparation as m1

    paths = [data / f for f in files]
    lc = lightcurve.read_many(paths) if len(paths) > 1 else lightcurve.read_any(paths[0])
    return lc, m1.prepare(lc)


def seismic_rows(data: Path) -> list[str]:
    import msap3_seismology as m3

    rows = []
    for name, files, teff, (numax, e_numax), (dnu, e_dnu), ref in SEISMIC:
        lc, prep = _prepared(data, files)
        logg = solar.LOGG_SUN + math.log10(numax / solar.NUMAX_SUN_UHZ) + 0.5 * math.log10(
            teff / solar.TEFF_SUN_K)
        for label, guess in (("Teff only", None),
                             ("log g +0.15", solar.numax_from_logg(teff, logg + 0.15)),
                             ("log g −0.15", solar.numax_from_logg(teff, logg - 0.15))):
            c0 = time.process_time()
            r = m3.measure(prep.time, prep.flux, cadence_s=lc.cadence_s, teff=teff,
                           numax_guess=guess)
            cpu = time.process_time() - c0
            got_n = f"{r.numax_uhz:.0f} ± {r.numax_err_uhz:.0f}" if r.detected else "—"
            got_d = (f"{r.dnu_uhz:.2f} ± {r.dnu_err_uhz:.2f}" if math.isfinite(r.dnu_uhz)
                     else "—")
            rows.append(f"| {name} | {label} | {numax:g} ± {e_numax:g} | {got_n} | "
                        f"{dnu:g} ± {e_dnu:g} | {got_d} | {r.excess_snr:.1f} / "
                        f"{r.comb_snr:.1f} | {cpu:.2f} | {ref} |")
    return rows


def transit_rows(data: Path) -> list[str]:
    import transit_search as ts

    rows = []
    for name, files, radius, mass, planets, ref in TRANSIT:
        _, prep = _prepared(data, files)
        c0 = time.process_time()
        r = ts.search(prep.time, prep.flux, radius, 0.05 * radius, mass)
        cpu = time.process_time() - c0
        match = [k for k, p in planets.items()
                 if math.isfinite(r.period_d) and abs(r.period_d / p - 1) < 0.005]
        pub = ", ".join(f"{k} {p:g}" for k, p in planets.items())
        got = (f"{r.period_d:.4f} d ({'planet ' + match[0] if match else 'matches no planet'}"
               f"), depth {r.depth_ppm:.0f} ppm, {r.n_transits} transits, SNR {r.snr:.0f}"
               if r.detected else f"none (best: {r.candidate_period_d:.3f} d, {r.vetting})")
        rows.append(f"| {name} | {pub} | {got} | {r.n_searches} | {cpu:.1f} | {ref} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO / "tests" / "data" / "real")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"science_real: {args.data}: no such folder (the real light curves)",
              file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    print("| star | prior | νmax published (µHz) | νmax measured | Δν published (µHz) | "
          "Δν measured | excess / comb SNR | CPU s | reference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in seismic_rows(args.data):
        print(row)
    print()
    print("| star | published periods (d) | measured | searches | CPU s | reference |")
    print("|---|---|---|---|---|---|")
    for row in transit_rows(args.data):
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
