"""Solar reference values of the seismic scaling relations: one copy for every module.

Huber et al. (2011, ApJ 743, 143): νmax☉ = 3090 µHz, Δν☉ = 135.1 µHz, Teff☉ = 5777 K;
log g☉ = 4.438 (cgs). Changing one changes every scaling relation together.
"""

NUMAX_SUN_UHZ = 3090.0
DNU_SUN_UHZ = 135.1
TEFF_SUN_K = 5777.0
LOGG_SUN = 4.438
