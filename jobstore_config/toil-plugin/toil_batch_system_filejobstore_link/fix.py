"""Hard links for the files a job writes into a file job store (Toil 9.6 copies every one).

``FileJobStore.write_file`` copies the job's file into the job store (``atomic_copy``), although
both are usually on one file system: every chunk file a step writes is then written twice, and
the job's copy is deleted when the job ends (upstream: DataBiosphere/toil#2224, closed in favour
of #2551, a rework of Toil's copying and linking). Here ``write_file`` makes a hard link when it
can: a regular file (not a symlink: it may point into a folder that goes away), the
non-caching file store (Toil's default for a file job store; the caching one counts links
itself), and a link the file system allows (same file system, permitted); otherwise it copies,
as Toil does. The job's file is never written again once the step has ended, so the job store's
file cannot change under it. ``still_copies`` checks Toil's own code first: once ``write_file``
no longer calls ``atomic_copy``, nothing is changed.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

ISSUE = "DataBiosphere/toil#2224 (FileJobStore.write_file copies the job's file)"
OFF_ENV = "STELLARFLOW_JOBSTORE_LINK"  # "off": leave Toil alone (to compare)


def still_copies(write_file: Any) -> bool:
    """True while Toil's ``write_file`` is the copying one (it calls ``atomic_copy``)."""
    code = getattr(write_file, "__code__", None)
    return code is not None and "atomic_copy" in code.co_names


def _linking_write_file(original: Any) -> Any:
    def write_file(self: Any, local_path: str, job_id: Any = None, cleanup: bool = False,
                   hints: Any = None) -> str:
        caching = getattr(getattr(self, "config", None), "caching", False)
        if caching or os.path.islink(local_path) or not os.path.isfile(local_path):
            return original(self, local_path, job_id, cleanup, hints=hints)
        abs_path = self._get_unique_file_path(local_path, job_id, cleanup, hints=hints)
        # Like atomic_copy: a new name, then renamed over the path (which may exist: a hinted
        # path is claimed by creating it empty).
        linked = f"{abs_path}.link-{uuid.uuid4().hex[:12]}"
        try:
            os.link(local_path, linked)
            os.replace(linked, abs_path)
        except OSError:  # another file system, links not permitted: copy, as Toil does
            with contextlib.suppress(OSError):
                os.unlink(linked)
            from toil.lib.io import atomic_copy

            atomic_copy(local_path, abs_path)
        return self._get_file_id_from_path(abs_path)

    write_file._stellarflow_fix = True  # type: ignore[attr-defined]
    write_file.__wrapped__ = original  # type: ignore[attr-defined]
    return write_file


def apply() -> bool:
    """Patch FileJobStore.write_file while Toil's copies; True if patched."""
    if os.environ.get(OFF_ENV, "").lower() == "off":
        return False
    try:
        from toil.jobStores.fileJobStore import FileJobStore
    except ImportError:
        return False
    current = FileJobStore.write_file
    if getattr(current, "_stellarflow_fix", False) or not still_copies(current):
        return False
    FileJobStore.write_file = _linking_write_file(current)  # type: ignore[method-assign]
    return True
