"""The catalogue contract: columns, units, and reading/writing catalogue tables."""

from __future__ import annotations

import astropy.units as u

PPM = u.def_unit("ppm", 1e-6 * u.dimensionless_unscaled)

# (name, unit, description) in the fixed contract order.
CATALOGUE_COLUMNS: list[tuple[str, u.UnitBase | None, str]] = [
    ("star_id", None, "star identifier from the manifest"),
    ("status", None, "ok | failed"),
    ("error", None, "why the star failed (empty when ok)"),
    ("prot_d", u.day, "rotation period (MSAP4)"),
    ("numax_uhz", u.uHz, "frequency of maximum oscillation power (MSAP3)"),
    ("dnu_uhz", u.uHz, "large frequency separation (MSAP3)"),
    ("radius_rsun", u.Rsun, "stellar radius (MSAP5)"),
    ("mass_msun", u.Msun, "stellar mass (MSAP5)"),
    ("transit_period_d", u.day, "transit period (BLS)"),
    ("transit_t0_d", u.day, "mid-time of a transit, BJD_TDB - 2457000 (input time system)"),
    ("transit_depth_ppm", PPM, "transit depth"),
    ("transit_duration_h", u.hour, "transit duration"),
    ("transit_snr", u.dimensionless_unscaled, "transit signal-to-noise ratio"),
    ("planet_radius_rearth", u.Rearth, "planet radius from depth and stellar radius"),
    ("cpu_s", u.s, "science CPU seconds spent on this star (all modules)"),
]
COLUMN_NAMES = [c[0] for c in CATALOGUE_COLUMNS]
STRING_COLUMNS = ("star_id", "status", "error")


def enable_units() -> u.set_enabled_units:
    """Make the catalogue's 'ppm' unit known when reading catalogues."""
    return u.add_enabled_units([PPM])


def make_table(rows: list[dict]):
    from astropy.table import Table

    t = Table()
    for name, unit, desc in CATALOGUE_COLUMNS:
        values = [r[name] for r in rows]
        if name in STRING_COLUMNS:
            t[name] = [str(v) for v in values] if values else []
            if not values:
                t[name] = t[name].astype(str)
        else:
            t[name] = [float(v) for v in values]
            t[name].unit = unit
        t[name].description = desc
    return t


def read_catalogue(path):
    from astropy.table import Table

    with enable_units():
        return Table.read(path, format="ascii.ecsv")
