"""Expected errors: reported as one line naming the file and the problem."""

from __future__ import annotations

import os


class InputError(Exception):
    """Bad input the user can fix. ``str()`` is the one-line message."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)
