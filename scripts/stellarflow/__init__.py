"""stellarflow: CWL workflows run by Toil for stellar analysis of space-photometry light curves."""

__version__ = "0.1.0"
