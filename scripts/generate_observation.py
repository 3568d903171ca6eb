#!/usr/bin/env python3
"""Generate a synthetic PLATO-like observation: manifest.yaml, lightcurves/*.h5, truths.ecsv.

Usage: scripts/generate_observation.py OUTDIR --stars N --days D [--cadence-s 25]
       --seed S --observation-id ID [--time-start T | --kepler-era]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

try:
    from stellarflow import synthetic
except ImportError:  # run from a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from stellarflow import synthetic


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir", type=Path, help="output folder (created)")
    p.add_argument("--stars", type=int, required=True, help="number of stars")
    p.add_argument("--days", type=float, required=True, help="observation length, days")
    p.add_argument("--cadence-s", type=float, default=25.0, help="cadence, seconds (25)")
    p.add_argument("--seed", type=int, required=True, help="random seed (same seed, same data)")
    p.add_argument("--observation-id", required=True, help="observation id [A-Za-z0-9._-]{1,64}")
    p.add_argument("--time-start", type=float, default=synthetic.TIME_START,
                   help=f"first time stamp, BJD_TDB - 2457000 ({synthetic.TIME_START:g})")
    p.add_argument("--kepler-era", action="store_true",
                   help=f"start at {synthetic.KEPLER_ERA_START:g} (negative times, as Kepler's)")
    args = p.parse_args(argv)
    problems = []
    if args.stars < 1:
        problems.append("--stars must be >= 1")
    if not 0.5 <= args.days <= 1000:
        problems.append("--days must be within 0.5-1000")
    if not -1e5 < args.time_start < 1e5:
        problems.append("--time-start must be within +-1e5 d of BJD 2457000")
    if not 1.0 <= args.cadence_s <= 3600:
        problems.append("--cadence-s must be within 1-3600")
    if args.seed < 0:
        problems.append("--seed must be >= 0")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", args.observation_id):
        problems.append("--observation-id must match [A-Za-z0-9._-]{1,64}")
    if problems:
        print(f"generate_observation: {'; '.join(problems)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        start = synthetic.KEPLER_ERA_START if args.kepler_era else args.time_start
        truths = synthetic.generate(args.outdir, args.stars, args.days, args.seed,
                                    args.observation_id, cadence_s=args.cadence_s,
                                    time_start=start)
    except OSError as exc:
        print(f"generate_observation: {args.outdir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    kinds: dict[str, int] = {}
    for t in truths:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    mix = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    print(f"{args.outdir}/manifest.yaml: {len(truths)} stars ({mix}), {args.days:g} d at "
          f"{args.cadence_s:g} s, {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
