"""stellarflow's interface contracts, as a library every science module pins.

The contracts themselves are written down in docs/contracts.md and, machine-readably, in
``specs/`` (checked by :mod:`stellarflow_contracts.conform`). The library version is the
contract version: a file written by 1.x is read by any 1.y; a major bump is an incompatible
change. Dependencies: numpy, h5py and threadpoolctl only (astropy for FITS/table light curves
and catalogues).
"""

__version__ = "1.3.0"
CONTRACT_MAJOR = int(__version__.split(".")[0])
