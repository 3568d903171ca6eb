"""{{name}}: the number of finite samples and the rms scatter (ppm) of each star's prepared
light curve. A template from `stellarflow new-module`: replace ``measure`` with your science and
say what it measures in README.md; the contracts library does the chunk files, the per-star
failure isolation, provenance and the step summary."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stellarflow_contracts.chunk import StarContext, module_main, run_chunk

MODULE = "{{name}}"
__version__ = "1.0.0"
STAGE = "{{stage}}"


def measure(flux: np.ndarray) -> tuple[int, float]:
    """(finite samples, standard deviation of (flux - 1) in ppm) of a relative light curve."""
    good = flux[np.isfinite(flux)]
    return int(good.size), float(np.std((good - 1.0) * 1e6)) if good.size else float("nan")


def process(ctx: StarContext) -> None:
    g = ctx.need("prepared")
    if "prepared/flux" not in g:
        raise ValueError("no prepared/flux for this star in the prepared chunk")
    n, rms = measure(g["prepared/flux"][()])
    ctx.out.attrs["n_points"] = n
    ctx.out.attrs["rms_ppm"] = rms


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prepared", type=Path, required=True, help="prepared chunk file (MSAP1)")


def _run(args: argparse.Namespace) -> None:
    run_chunk(module=MODULE, version=__version__, stage=STAGE,
              inputs={"prepared": args.prepared}, primary="prepared", outdir=args.outdir,
              process=process)


def main(argv: list[str] | None = None) -> int:
    return module_main(argv, module=MODULE, version=__version__,
                       description="{{name}}: samples and rms scatter of each light curve",
                       add_arguments=_args, run=_run)
