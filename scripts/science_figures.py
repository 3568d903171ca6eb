#!/usr/bin/env python3
"""Completeness and false alarms of the SAS science modules on synthetic stars (fixed seeds).

Four populations, each star simulated by ``stellarflow.synthetic`` and prepared by MSAP1, then
run through the module functions (not the workflow: cheaper, same science):
- transits: planets with depth and period drawn log-uniformly (recovery by depth and by number of
  transits), half of them with Kepler-era (negative) times, a quarter on strongly active stars;
- seismology: dwarfs, subgiants and red giants over numax 10-3000 uHz and a wide range of
  magnitudes (recovery by numax and by SNR), half with a log g off by up to 0.15 dex, half with
  Teff only;
- rotation: spotted stars, amplitudes 100-30 000 ppm (recovery by amplitude); they are also
  searched for oscillations (spots must not make a false excess);
- quiet: stars without a planet (quiet dwarfs, hot stars, red giants, strongly active stars),
  searched for transits and oscillations (false alarms).
Writes ``docs/figures/*.png``, ``docs/science_results.ecsv`` (one row per star) and the tables
between the markers in ``docs/science.md``. ``--scale`` multiplies every population's size.

Usage: scripts/science_figures.py [--scale 1.0] [--jobs 2] [--seed 2026] [--outdir docs]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

try:
    from stellarflow import synthetic
except ImportError:  # a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "containers" / "base"))
    from stellarflow import synthetic

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CADENCE_S = 25.0
# (population, number of stars at scale 1, light-curve length in days)
POPULATIONS = (("transit", 200, 30.0), ("seismic", 150, 60.0), ("rotation", 100, 30.0),
               ("quiet", 150, 30.0))
PERIOD_TOL = 0.005  # transit period within 0.5 %
NUMAX_TOL, DNU_TOL, PROT_TOL = 0.05, 0.03, 0.10
MARK_BEGIN = "<!-- science_figures: begin -->"
MARK_END = "<!-- science_figures: end -->"


def plan(scale: float, seed: int) -> list[dict]:
    """Every star of the study: population, index, kind, overrides, time start (deterministic)."""
    stars = []
    for pop, n, days in POPULATIONS:
        rng = np.random.default_rng([seed, len(pop), n])
        for i in range(max(1, int(round(n * scale)))):
            over: dict[str, float] = {}
            start = synthetic.TIME_START
            if pop == "transit":
                kind = "active_transit" if i % 4 == 3 else "transit"
                over["planet_radius_rearth"] = float(math.exp(rng.uniform(math.log(0.8),
                                                                           math.log(16.0))))
                over["transit_period_d"] = float(math.exp(rng.uniform(math.log(0.8),
                                                                      math.log(days / 1.9))))
                if i % 2:
                    start = synthetic.KEPLER_ERA_START
            elif pop == "seismic":
                numax = float(math.exp(rng.uniform(math.log(10.0), math.log(3000.0))))
                kind = "giant" if numax < 250 else ("subgiant" if numax < 700 else "oscillator")
                over["numax_uhz"] = numax
                over["vmag"] = float(rng.uniform(7.0, 13.0))
            elif pop == "rotation":
                kind = "rotator"
                over["spot_amplitude_ppm"] = float(math.exp(rng.uniform(math.log(100.0),
                                                                        math.log(30000.0))))
                over["prot_d"] = float(math.exp(rng.uniform(math.log(1.0), math.log(days / 4))))
            else:
                kind = ("quiet", "hot", "giant", "active", "quiet", "giant")[i % 6]
            logg_mode = ("given", "off", "none")[i % 3]
            stars.append({"population": pop, "index": 100_000 * (1 + len(pop)) + i, "kind": kind,
                          "days": days, "overrides": over, "time_start": start,
                          "logg_mode": logg_mode, "seed": seed,
                          "logg_rng": int(rng.integers(1 << 30))})
    return stars


def run_star(spec: dict) -> dict:
    """Simulate, prepare and measure one star; a flat row of truths and results."""
    import warnings

    import msap1_preparation as m1
    import msap3_seismology as m3
    import msap4_rotation as m4
    import transit_search as ts

    from stellarflow_contracts import solar
    from stellarflow_contracts.chunk import NotMeasurable

    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    lc, tr = synthetic.simulate_star(spec["index"], spec["days"], CADENCE_S, spec["seed"],
                                     kind=spec["kind"], time_start=spec["time_start"],
                                     overrides=spec["overrides"])
    prep = m1.prepare(lc)
    t, f = prep.time, prep.flux
    row: dict = {"population": spec["population"], "star": tr.star_id, "kind": tr.kind,
                 "days": spec["days"], "time_start": spec["time_start"], "vmag": tr.vmag,
                 "teff": tr.teff, "logg": tr.logg, "numax_true": tr.numax_uhz,
                 "dnu_true": tr.dnu_uhz, "seismic_snr_true": tr.seismic_snr,
                 "prot_true": tr.prot_d, "amp_true": tr.spot_amplitude_ppm,
                 "period_true": tr.transit_period_d, "depth_true": tr.transit_depth_ppm,
                 "n_transits_true": tr.n_transits, "logg_mode": spec["logg_mode"]}
    pop = spec["population"]
    cpu: dict[str, float] = {}
    if pop in ("transit", "quiet"):
        c0 = time.process_time()
        rng = np.random.default_rng(spec["logg_rng"])
        r_cat = tr.radius_rsun * (1 + 0.1 * rng.standard_normal())
        m_cat = tr.mass_msun * (1 + 0.1 * rng.standard_normal())
        res = ts.search(t, f, r_cat, 0.1 * r_cat, m_cat)
        cpu["transit"] = time.process_time() - c0
        row.update(transit_detected=res.detected, period=res.period_d,
                   cand_period=res.candidate_period_d, cand_snr=res.candidate_snr,
                   cand_sde=res.candidate_sde, cand_depth=res.candidate_depth_ppm,
                   vetting=res.vetting, n_searches=res.n_searches)
    if pop in ("seismic", "rotation", "quiet") and m1.seismic_candidate(
            tr.teff, tr.logg, CADENCE_S):
        guess = None
        if spec["logg_mode"] != "none":
            rng = np.random.default_rng(spec["logg_rng"])
            off = rng.uniform(-0.15, 0.15) if spec["logg_mode"] == "off" else rng.normal(0, 0.04)
            guess = solar.numax_from_logg(tr.teff, tr.logg + off)
        c0 = time.process_time()
        try:
            res3 = m3.measure(t, f, cadence_s=CADENCE_S, teff=tr.teff, numax_guess=guess)
            row.update(seismic_detected=res3.detected, numax=res3.numax_uhz, dnu=res3.dnu_uhz,
                       excess=res3.excess_snr, comb=res3.comb_snr,
                       numax_cand=res3.numax_candidate_uhz)
        except NotMeasurable:
            row.update(seismic_detected=False)
        cpu["seismic"] = time.process_time() - c0
    if pop == "rotation":
        c0 = time.process_time()
        try:
            res4 = m4.measure(t, f)
            row.update(prot=res4.prot_d, prot_cand=res4.candidate_prot_d)
        except NotMeasurable:
            row.update(prot=math.nan)
        cpu["rotation"] = time.process_time() - c0
    row["cpu_s"] = sum(cpu.values())
    return row


def _rate(ok: np.ndarray) -> str:
    return f"{int(ok.sum())}/{ok.size} ({100.0 * ok.mean():.0f} %)" if ok.size else "-"


def _binned_rate(x: np.ndarray, ok: np.ndarray, edges: list[float]) -> list[tuple[str, str]]:
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (x >= lo) & (x < hi)
        out.append((f"{lo:g}–{hi:g}", _rate(ok[sel])))
    return out


def analyse(rows: list[dict]) -> tuple[str, dict]:
    """Markdown tables and the numbers the tests' floors come from."""
    from astropy.table import Table

    tab = Table(rows=rows)

    def col(name: str, sel: np.ndarray) -> np.ndarray:
        return np.asarray(tab[name][sel], dtype=float) if name in tab.colnames else np.array([])

    lines: list[str] = []
    summary: dict = {}
    # Transits
    tsel = np.asarray(tab["population"] == "transit")
    ptrue, pgot = col("period_true", tsel), col("period", tsel)
    rec = np.isfinite(pgot) & (np.abs(pgot / ptrue - 1) < PERIOD_TOL)
    depth, ntr = col("depth_true", tsel), col("n_transits_true", tsel)
    lines += ["**Transit recovery** (period within 0.5 %), 30-d light curves at 25 s:", "",
              "| depth (ppm) | recovered | | transits in the data | recovered |",
              "|---|---|---|---|---|"]
    by_d = _binned_rate(depth, rec, [50, 200, 500, 1000, 3000, 10000, 40000])
    by_n = _binned_rate(ntr, rec, [0, 2, 3, 5, 10, 20, 100])
    for (a, b), (c, d) in zip(by_d + [("", "")] * (len(by_n) - len(by_d)),
                              by_n + [("", "")] * (len(by_d) - len(by_n)), strict=True):
        lines.append(f"| {a} | {b} | | {c} | {d} |")
    deep = (depth >= 1000) & (ntr >= 3)
    summary["transit_recovery_deep"] = float(rec[deep].mean()) if deep.any() else math.nan
    wrong = np.isfinite(pgot) & ~rec
    lines += ["", f"Detections at a wrong period among planet hosts: {_rate(wrong)}.", ""]
    summary["transit_wrong_period"] = float(wrong.mean())
    # Seismology
    ssel = np.asarray(tab["population"] == "seismic")
    nt, dt = col("numax_true", ssel), col("dnu_true", ssel)
    ng, dg = col("numax", ssel), col("dnu", ssel)
    snr = col("seismic_snr_true", ssel)
    ok_n = np.isfinite(ng) & (np.abs(ng / nt - 1) < NUMAX_TOL)
    ok_d = ok_n & np.isfinite(dg) & (np.abs(dg / dt - 1) < DNU_TOL)
    lines += ["**Seismic recovery** (νmax within 5 %; νmax and Δν within 5 % and 3 %), 60-d light "
              "curves at 25 s, V 7–13, log g given, off by up to ±0.15 dex, or absent:", "",
              "| νmax (µHz) | νmax | νmax and Δν | | expected SNR | νmax | νmax and Δν |",
              "|---|---|---|---|---|---|---|"]
    nb = [10, 30, 100, 250, 700, 1500, 3100]
    sb = [0, 5, 10, 20, 40, 80, 1e9]
    a1, a2 = _binned_rate(nt, ok_n, nb), _binned_rate(nt, ok_d, nb)
    b1, b2 = _binned_rate(snr, ok_n, sb), _binned_rate(snr, ok_d, sb)
    for (x, y), (_, z), (u, v), (_, w) in zip(a1, a2, b1, b2, strict=True):
        lines.append(f"| {x} | {y} | {z} | | {u.replace('1e+09', '∞')} | {v} | {w} |")
    bright = snr >= 20
    summary["numax_recovery_snr20"] = float(ok_n[bright].mean()) if bright.any() else math.nan
    summary["both_recovery_snr20_dwarfs"] = float(ok_d[bright & (nt >= 250)].mean()) \
        if (bright & (nt >= 250)).any() else math.nan
    wrong_s = np.isfinite(ng) & ~ok_n
    lines += ["", f"νmax reported but more than 5 % off: {_rate(wrong_s)}.", ""]
    summary["numax_wrong"] = float(wrong_s.mean())
    # Rotation
    rsel = np.asarray(tab["population"] == "rotation")
    pt, pg, amp = col("prot_true", rsel), col("prot", rsel), col("amp_true", rsel)
    ok_r = np.isfinite(pg) & (np.abs(pg / pt - 1) < PROT_TOL)
    lines += ["**Rotation recovery** (within 10 %), 30-d light curves, Prot 1–7.5 d:", "",
              "| amplitude (ppm) | recovered |", "|---|---|"]
    for a, b in _binned_rate(amp, ok_r, [100, 300, 1000, 3000, 10000, 30001]):
        lines.append(f"| {a} | {b} |")
    summary["rotation_recovery_1000ppm"] = float(ok_r[amp >= 1000].mean())
    # False alarms
    qsel = np.asarray(tab["population"] == "quiet")
    kinds = np.asarray(tab["kind"][qsel])
    ft = np.asarray(tab["transit_detected"][qsel], dtype=bool)
    lines += ["", "**False alarms** on stars without the signal:", "",
              "| stars | false transits | false seismic detections |", "|---|---|---|"]
    seis_cols = "seismic_detected" in tab.colnames
    for kind in ("quiet", "hot", "active", "giant"):
        k = kinds == kind
        fs = "-"
        if seis_cols and kind != "giant":
            det = np.asarray(tab["seismic_detected"][qsel][k])
            det = np.array([bool(v) if v is not np.ma.masked else False for v in det])
            fs = _rate(det)
        lines.append(f"| {kind} ({int(k.sum())}) | {_rate(ft[k])} | "
                     f"{fs if kind != 'giant' else 'n/a (giants oscillate)'} |")
    if seis_cols:
        det = tab["seismic_detected"][rsel]
        rot_fs = np.array([bool(v) if v is not np.ma.masked else False for v in det])
        lines.append(f"| spotted rotators ({int(rsel.sum())}) | n/a | {_rate(rot_fs)} |")
        summary["false_seismic_rotators"] = float(rot_fs.mean())
    summary["false_transits"] = float(ft.mean())
    summary["false_transits_giants"] = float(ft[kinds == "giant"].mean())
    qs = np.asarray(tab["seismic_detected"][qsel]) if seis_cols else np.array([])
    nonosc = np.isin(kinds, ("quiet", "hot", "active"))
    if qs.size:
        qs = np.array([bool(v) if v is not np.ma.masked else False for v in qs])
        summary["false_seismic_quiet"] = float(qs[nonosc].mean())
    return "\n".join(lines), summary


def figures(rows: list[dict], outdir: Path) -> list[Path]:
    """PNG plots: recovery vs depth / transits / numax / SNR / amplitude; statistics of quiet
    stars against the detection thresholds."""
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(),
                                                        f"stellarflow-mpl-{os.getuid()}"))
    import msap3_seismology as m3
    import transit_search as ts
    from astropy.table import Table
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tab = Table(rows=rows)
    outdir.mkdir(parents=True, exist_ok=True)
    made = []

    def save(fig: Figure, name: str) -> None:
        FigureCanvasAgg(fig)
        fig.tight_layout()
        path = outdir / name
        fig.savefig(path, dpi=80)
        made.append(path)

    def arr(name: str, sel: np.ndarray) -> np.ndarray:
        return np.asarray(tab[name][sel], dtype=float)

    tsel = np.asarray(tab["population"] == "transit")
    rec = np.abs(arr("period", tsel) / arr("period_true", tsel) - 1) < PERIOD_TOL
    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    for ax, x, lab in ((ax1, arr("depth_true", tsel), "injected depth (ppm)"),
                       (ax2, arr("n_transits_true", tsel), "transits in the data")):
        ax.scatter(x[rec], np.ones(rec.sum()) + 0.03 * np.random.default_rng(0).standard_normal(
            rec.sum()), s=8, c="C2", label="recovered")
        ax.scatter(x[~rec], np.zeros((~rec).sum()) + 0.03 * np.random.default_rng(1)
                   .standard_normal((~rec).sum()), s=8, c="C3", label="missed")
        ax.set_xscale("log")
        ax.set_xlabel(lab)
        ax.set_yticks([0, 1], ["missed", "recovered"])
    ax1.set_title("transit recovery (period within 0.5 %)", fontsize=9)
    ax2.legend(fontsize=8)
    save(fig, "transit_recovery.png")

    # Transit statistics: planets vs quiet stars, with the thresholds.
    qsel = np.asarray(tab["population"] == "quiet")
    fig = Figure(figsize=(6.5, 5))
    ax = fig.subplots()
    for sel, c, lab in ((tsel, "C0", "planet hosts (best candidate)"),
                        (qsel & np.asarray(tab["kind"] != "giant"), "C1", "quiet, hot, active"),
                        (qsel & np.asarray(tab["kind"] == "giant"), "C3", "red giants")):
        ax.scatter(np.clip(arr("cand_snr", sel), 0.1, None), np.clip(arr("cand_sde", sel), 0.1,
                                                                     None),
                   s=9, c=c, label=lab)
    ax.axvline(ts.SNR_MIN, color="k", lw=0.8)
    ax.axhline(ts.SDE_MIN, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("candidate SNR (red-noise σ_D)")
    ax.set_ylabel("candidate SDE (robust)")
    ax.set_title("transit candidates vs thresholds (vetting applies on top)", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, "transit_thresholds.png")

    ssel = np.asarray(tab["population"] == "seismic")
    nt, ng = arr("numax_true", ssel), arr("numax", ssel)
    dt, dg = arr("dnu_true", ssel), arr("dnu", ssel)
    ok_n = np.abs(ng / nt - 1) < NUMAX_TOL
    ok_d = ok_n & (np.abs(dg / dt - 1) < DNU_TOL)
    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    snr = arr("seismic_snr_true", ssel)
    for ax, x, lab in ((ax1, nt, "injected νmax (µHz)"), (ax2, snr, "expected excess SNR")):
        ax.scatter(x[ok_d], np.full(ok_d.sum(), 2.0), s=8, c="C2")
        ax.scatter(x[ok_n & ~ok_d], np.full((ok_n & ~ok_d).sum(), 1.0), s=8, c="C1")
        ax.scatter(x[~ok_n], np.zeros((~ok_n).sum()), s=8, c="C3")
        ax.set_xscale("log")
        ax.set_yticks([0, 1, 2], ["missed", "νmax only", "νmax and Δν"])
        ax.set_xlabel(lab)
    ax1.set_title("seismic recovery (νmax 5 %, Δν 3 %)", fontsize=9)
    save(fig, "seismic_recovery.png")

    fig = Figure(figsize=(6.5, 5))
    ax = fig.subplots()
    non = (np.asarray(tab["population"] == "rotation")
           | (qsel & np.isin(np.asarray(tab["kind"]), ("quiet", "active"))))
    for sel, c, lab in ((ssel, "C0", "oscillators (best candidate)"),
                        (non, "C3", "non-oscillators: quiet, active, spotted")):
        ax.scatter(np.clip(arr("excess", sel), -5, None), np.clip(arr("comb", sel), -5, None),
                   s=9, c=c, label=lab)
    ax.axvline(m3.EXCESS_SNR_MIN, color="k", lw=0.8)
    ax.axhline(m3.COMB_SNR_MIN, color="k", lw=0.8)
    ax.axvline(m3.EXCESS_ALONE_MIN, color="k", lw=0.8, ls="--")
    ax.set_xlabel("excess SNR")
    ax.set_ylabel("comb SNR")
    ax.set_xscale("symlog", linthresh=3)
    ax.set_yscale("symlog", linthresh=3)
    ax.set_title("seismic candidates vs thresholds", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, "seismic_thresholds.png")

    rsel = np.asarray(tab["population"] == "rotation")
    amp = arr("amp_true", rsel)
    ok_r = np.abs(arr("prot", rsel) / arr("prot_true", rsel) - 1) < PROT_TOL
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.scatter(amp[ok_r], np.ones(ok_r.sum()), s=8, c="C2")
    ax.scatter(amp[~ok_r], np.zeros((~ok_r).sum()), s=8, c="C3")
    ax.set_xscale("log")
    ax.set_yticks([0, 1], ["missed", "within 10 %"])
    ax.set_xlabel("spot amplitude (ppm)")
    ax.set_title("rotation recovery", fontsize=9)
    save(fig, "rotation_recovery.png")
    return made


def write_markdown(doc: Path, tables: str, summary: dict, meta: str) -> None:
    body = (f"{MARK_BEGIN}\n{meta}\n\n{tables}\n\nFloors asserted by the tests come from these "
            "numbers: " + ", ".join(f"`{k}` = {v:.3f}" for k, v in sorted(summary.items()))
            + f"\n{MARK_END}")
    text = doc.read_text() if doc.exists() else f"# Science\n\n{MARK_BEGIN}\n{MARK_END}\n"
    if MARK_BEGIN in text and MARK_END in text:
        a, b = text.index(MARK_BEGIN), text.index(MARK_END) + len(MARK_END)
        text = text[:a] + body + text[b:]
    else:
        text += "\n" + body + "\n"
    doc.write_text(text)


def study(scale: float = 1.0, seed: int = 2026, jobs: int = 1) -> list[dict]:
    specs = plan(scale, seed)
    if jobs <= 1:
        return [run_star(s) for s in specs]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run_star, specs, chunksize=4))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="population sizes x this (1.0)")
    p.add_argument("--seed", type=int, default=2026, help="random seed (2026)")
    p.add_argument("--jobs", type=int, default=2, help="processes (2)")
    p.add_argument("--outdir", type=Path, default=REPO / "docs", help="docs folder")
    p.add_argument("--results", type=Path, default=None,
                   help="re-analyse this science_results.ecsv instead of running the stars")
    args = p.parse_args(argv)
    if not 0 < args.scale <= 10:
        print("science_figures: --scale must be within (0, 10]", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    from astropy.table import Table

    if args.results:
        rows = [dict(zip(r.colnames, r, strict=True)) for r in Table.read(args.results)]
        prior = Table.read(args.results).meta.get("run", "")
    else:
        rows = study(args.scale, args.seed, args.jobs)
    args.outdir.mkdir(parents=True, exist_ok=True)
    out = Table(rows=rows)
    run_meta = (f"{len(rows)} stars, seed {args.seed}, scale {args.scale:g}: `make "
                f"science-figures` (scripts/science_figures.py). Module CPU "
                f"{sum(r['cpu_s'] for r in rows):.0f} s in all; wall "
                f"{time.perf_counter() - t0:.0f} s with {args.jobs} processes, load average "
                f"{load0:.1f} at the start.")
    out.meta["run"] = prior if args.results and prior else run_meta
    out.write(args.outdir / "science_results.ecsv", format="ascii.ecsv", overwrite=True)
    tables, summary = analyse(rows)
    figs = figures(rows, args.outdir / "figures")
    meta = out.meta["run"]
    write_markdown(args.outdir / "science.md", tables, summary, meta)
    print(tables)
    print(meta)
    print("figures: " + ", ".join(str(f) for f in figs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
