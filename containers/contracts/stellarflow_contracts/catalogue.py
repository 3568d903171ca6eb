"""The catalogue contract: columns, units, and reading/writing catalogue tables.

Units are astropy unit strings; astropy itself is imported only to build or read a table (the
``astropy`` extra of this library), so modules that never touch a catalogue do not need it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

# (name, unit, description) in the fixed contract order; unit None for strings.
CATALOGUE_COLUMNS: list[tuple[str, str | None, str]] = [
    ("star_id", None, "star identifier from the manifest"),
    ("status", None, "ok | failed"),
    ("error", None, "why the star failed (empty when ok)"),
    ("prot_d", "d", "rotation period (MSAP4)"),
    ("numax_uhz", "uHz", "frequency of maximum oscillation power (MSAP3)"),
    ("dnu_uhz", "uHz", "large frequency separation (MSAP3)"),
    ("radius_rsun", "solRad", "stellar radius (MSAP5)"),
    ("mass_msun", "solMass", "stellar mass (MSAP5)"),
    ("transit_period_d", "d", "transit period (BLS)"),
    ("transit_t0_d", "d", "mid-time of a transit, BJD_TDB - 2457000 (input time system)"),
    ("transit_depth_ppm", "ppm", "transit depth"),
    ("transit_duration_h", "h", "transit duration"),
    ("transit_snr", "", "transit signal-to-noise ratio"),
    ("planet_radius_rearth", "earthRad", "planet radius from depth and stellar radius"),
    ("cpu_s", "s", "science CPU seconds spent on this star (all modules)"),
]
COLUMN_NAMES = [c[0] for c in CATALOGUE_COLUMNS]
STRING_COLUMNS = ("star_id", "status", "error")
# Table metadata key listing the stages a contract-conformant fake stood in for (if any).
FAKE_STAGES_META = "fake_stages"


@cache
def ppm_unit() -> Any:
    """astropy's unit for parts per million (not an astropy built-in)."""
    import astropy.units as u

    return u.def_unit("ppm", 1e-6 * u.dimensionless_unscaled)


def enable_units() -> Any:
    """Make the catalogue's 'ppm' unit known when reading catalogues (a context manager)."""
    import astropy.units as u

    return u.add_enabled_units([ppm_unit()])


def _unit(name: str) -> Any:
    import astropy.units as u

    return ppm_unit() if name == "ppm" else u.Unit(name)


def _text(value: Any) -> str:
    import numpy as np

    return "" if value is np.ma.masked else str(value)


def make_table(rows: list[dict]) -> Any:
    """An astropy Table with the contract's columns, order, units and descriptions."""
    from astropy.table import Table

    t = Table()
    for name, unit, desc in CATALOGUE_COLUMNS:
        values = [r[name] for r in rows]
        if unit is None:
            # astropy reads an ECSV "" back as a masked value: that is an empty string here.
            t[name] = [_text(v) for v in values] if values else []
            if not values:
                t[name] = t[name].astype(str)
        else:
            t[name] = [float(v) for v in values]
            t[name].unit = _unit(unit)
        t[name].description = desc
    return t


def read_catalogue(path: Any) -> Any:
    """A catalogue (or rows) ECSV as a Table, units known, empty strings as "" (astropy reads an
    ECSV "" back as a masked value)."""
    from astropy.table import MaskedColumn, Table

    with enable_units():
        t = Table.read(path, format="ascii.ecsv")
    for name in STRING_COLUMNS:
        if name in t.colnames and isinstance(t[name], MaskedColumn):
            t[name] = t[name].filled("")
    return t
