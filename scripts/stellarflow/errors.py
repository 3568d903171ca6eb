"""Expected errors: reported as one line naming the file and the problem.

InputError is the contracts library's (the same class in the modules and on the host)."""

from __future__ import annotations

from stellarflow_contracts.errors import InputError

__all__ = ["InputError", "RunError"]


class RunError(Exception):
    """A run could not complete (runner failed, site unavailable...). One line."""
