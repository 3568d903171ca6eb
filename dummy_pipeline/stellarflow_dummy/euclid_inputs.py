"""Inputs of the Dummy Pipeline's Euclid example: a raw frame, its master dark and flat, a
catalogue spec and the truth table (host side: the steps themselves run in the fake module's
image, containers/fake_module/fake_module/euclid.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from fake_module.euclid import PSF_SIGMA, SHAPE


def make_inputs(folder: Path, seed: int = 7, n_stars: int = 40) -> dict[str, Path]:
    """A raw frame = sky x flat + dark + noise, its master dark and flat, a truth table."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ny, nx = SHAPE
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    x = rng.uniform(12, nx - 12, n_stars)
    y = rng.uniform(12, ny - 12, n_stars)
    # keep stars apart so that each is one detection
    keep = [0]
    for i in range(1, n_stars):
        if all(np.hypot(x[i] - x[j], y[i] - y[j]) > 10 for j in keep):
            keep.append(i)
    x, y = x[keep], y[keep]
    flux = rng.uniform(3_000, 30_000, len(x))
    sky = np.full(SHAPE, 200.0)
    for xi, yi, fi in zip(x, y, flux, strict=True):
        sky += fi / (2 * np.pi * PSF_SIGMA**2) * np.exp(
            -((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * PSF_SIGMA**2))
    # flat: vignetting (30 % fall-off to the corners) and 2 % pixel-to-pixel response
    r2 = ((xx - nx / 2) ** 2 + (yy - ny / 2) ** 2) / (nx / 2) ** 2
    flat = (1 - 0.15 * r2) * rng.normal(1, 0.02, SHAPE)
    flat /= np.median(flat)
    # dark: a left-to-right amplifier glow plus hot columns
    dark = 30 + 60 * xx / nx
    dark[:, rng.choice(nx, 5, replace=False)] += 400
    raw = sky * flat + dark + rng.normal(0, 5, SHAPE)
    hdr = fits.Header({"TELESCOP": "stellarflow-dummy", "INSTRUME": "VIS-like", "EXPTIME": 565.0,
                       "BUNIT": "electron"})
    paths = {k: folder / f"{k}.fits" for k in ("raw", "dark", "flat")}
    fits.PrimaryHDU(raw.astype(np.float32), header=hdr).writeto(paths["raw"], overwrite=True)
    fits.PrimaryHDU(dark.astype(np.float32), header=hdr).writeto(paths["dark"], overwrite=True)
    fits.PrimaryHDU(flat.astype(np.float32)).writeto(paths["flat"], overwrite=True)
    paths["spec"] = folder / "catalog_spec.json"
    paths["spec"].write_text(json.dumps({"threshold_sigma": 8.0, "aperture_radius_px": 6.0,
                                         "min_pixels": 4}, indent=1))
    paths["truth"] = folder / "truth.ecsv"
    Table({"x": x, "y": y, "flux": flux}).write(paths["truth"], overwrite=True)
    return paths
