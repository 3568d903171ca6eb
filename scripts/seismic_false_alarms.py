#!/usr/bin/env python3
"""False-alarm calibration of MSAP3's harmonic-comb rule and Dnu-at-known-numax rule (fixed
seeds, independent of the science_figures study's seed 2026).

1. Non-oscillators (white noise, quiet and spotted stars, 30 and 60 d at 25 s, prepared by
   MSAP1) and red giants: per star, the largest harmonic sum S among trials with excess >=
   EXCESS_SNR_MIN (for giants only trials >= 20 % from the true numax), with the harmonic rule
   switched off so that the other rules' detections are counted separately. Only stars without a
   rotation signal count (the rule does not apply to the others).
2. White chi^2 noise at a known numax (one trial): the ACF comb SNR that DNU_COMB_MIN bounds.

Usage: scripts/seismic_false_alarms.py [--scale 1.0]   (about 6 CPU-min at scale 1)
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np

SEED = 7
POPULATIONS = (("white", 400, 30.0), ("white", 200, 60.0), ("quiet", 300, 30.0),
               ("quiet", 200, 60.0), ("active", 40, 30.0), ("rotator", 180, 30.0),
               ("giant", 100, 60.0))
LEVELS = (16.0, 18.0, 20.0, 22.0)


def harmonic_maxima(scale: float) -> list[dict]:
    import msap1_preparation as m1
    import msap3_seismology as m3

    from stellarflow import synthetic

    seen: dict = {}
    orig = m3._passes

    def spy(tr, rotating):
        seen["tr"], seen["rot"] = tr, rotating
        return orig(tr, rotating)

    m3._passes = spy
    keep, m3.HARMONIC_SUM_MIN = m3.HARMONIC_SUM_MIN, math.inf
    rows = []
    try:
        for kind, n, days in POPULATIONS:
            for i in range(max(1, int(round(n * scale)))):
                idx = 500_000 + 1000 * int(days) + i
                truth = math.nan
                if kind == "white":
                    rng = np.random.default_rng([SEED, idx])
                    t = synthetic.TIME_START + np.arange(0.0, days, 25.0 / 86400.0)
                    f = 1.0 + rng.normal(0.0, rng.uniform(50, 500) * 1e-6, t.size)
                else:
                    lc, tru = synthetic.simulate_star(idx, days, 25.0, SEED, kind=kind)
                    prep = m1.prepare(lc)
                    t, f, truth = prep.time, prep.flux, tru.numax_uhz
                res = m3.measure(t, f, cadence_s=25.0)
                tr = seen["tr"]
                ok = np.isfinite(tr.excess) & (tr.excess >= m3.EXCESS_SNR_MIN)
                if kind == "giant":
                    ok &= np.abs(np.log(tr.numax / truth)) > math.log(1.2)
                rows.append({"kind": kind, "days": days, "rot": bool(seen["rot"]),
                             "smax": float(tr.harmonic[ok].max()) if ok.any() else 0.0,
                             "other": bool(res.detected)})
    finally:
        m3._passes, m3.HARMONIC_SUM_MIN = orig, keep
    return rows


def dnu_comb_white(n: int) -> list[str]:
    import msap3_seismology as m3

    rng = np.random.default_rng(2027)
    out = []
    for days in (30.0, 60.0):
        df = 1e6 / (days * 86400.0)
        f = np.arange(1, int(20000 / df)) * df
        vals = []
        for _ in range(n):
            numax = float(math.exp(rng.uniform(math.log(10.0), math.log(3000.0))))
            ratio = np.minimum(rng.exponential(1.0, f.size), m3.RATIO_CAP)
            vals.append((numax, m3._comb_snr(f, ratio, numax, df)))
        v = np.array(vals)
        for lo, hi in ((10, 250), (250, 3000)):
            s = v[(v[:, 0] >= lo) & (v[:, 0] < hi), 1]
            rates = " | ".join(f"{100 * np.mean(s >= x):.2f} %" for x in (2.5, 3.0))
            out.append(f"| {days:.0f} d, νmax {lo}–{hi} µHz | {s.size} | {rates} |")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    rows = harmonic_maxima(args.scale)
    print("| stars | n | no rotation signal | max S | "
          + " | ".join(f"S ≥ {x:g}" for x in LEVELS) + " | other rules detect |")
    print("|---|---|---|---|" + "---|" * len(LEVELS) + "---|")
    for kind, _, days in POPULATIONS:
        sel = [r for r in rows if r["kind"] == kind and r["days"] == days]
        s = np.array([r["smax"] for r in sel if not r["rot"]])
        counts = " | ".join(str(int((s >= x).sum())) for x in LEVELS)
        print(f"| {kind} {days:.0f} d | {len(sel)} | {s.size} | "
              f"{s.max() if s.size else 0:.1f} | {counts} | {sum(r['other'] for r in sel)} |")
    print()
    print("| white χ² noise, known νmax | trials | comb ≥ 2.5 | comb ≥ 3.0 |")
    print("|---|---|---|---|")
    print("\n".join(dnu_comb_white(max(100, int(6000 * args.scale)))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
