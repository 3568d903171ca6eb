"""cwltool's container monitor, reduced to waiting for the container.

cwltool runs every container step with ``--cidfile`` and a monitor (``ContainerCommandLineJob.
docker_monitor``) that reads the container's id from that file, follows the container's memory
with ``podman stats`` until it exits, and logs the peak ("Max memory used"). Two costs per step:
- the monitor sleeps a whole second before it first looks at the file or at the process, and
  the step waits for the monitor: a container that runs 0.2 s (MSAP5, the catalogue) held its
  step, and every step after it, for a second;
- ``podman stats``, and the wrapper's ``podman inspect`` that ends it (scripts/bin/podman), are
  two more podman processes per step, ~0.25 s of CPU.
stellarflow's step profile already records each step's peak memory from inside the container
(``used.max_rss_bytes``, docs/provenance.md), so the monitor here only waits for the container
to end and removes the id file. ``still_sleeps`` checks cwltool's own code first: once its
monitor no longer sleeps a second before it looks, nothing is changed (and this can go).
"""

from __future__ import annotations

import os
from typing import Any

OFF_ENV = "STELLARFLOW_CONTAINER_WAIT"  # "off": leave cwltool alone (to compare)


def still_sleeps(monitor: Any) -> bool:
    """True while cwltool's monitor is the one that sleeps a second before it looks (it calls
    ``time.sleep`` and holds the constant 1)."""
    code = getattr(monitor, "__code__", None)
    return code is not None and "sleep" in code.co_names and 1 in code.co_consts


def docker_monitor(self: Any, cidfile: str, tmpdir_prefix: str, cleanup_cidfile: bool,
                   docker_exe: str, process: Any) -> None:
    """Wait for the container's ``podman run`` to end; remove its id file as cwltool does."""
    process.wait()
    if cleanup_cidfile:
        try:
            os.remove(cidfile)
        except OSError:
            pass


def apply() -> bool:
    """Replace cwltool's container monitor while it sleeps a second first; True if replaced."""
    if os.environ.get(OFF_ENV, "").lower() == "off":
        return False
    try:
        from cwltool.job import ContainerCommandLineJob
    except ImportError:
        return False
    current = ContainerCommandLineJob.docker_monitor
    if getattr(current, "_stellarflow_fix", False) or not still_sleeps(current):
        return False
    docker_monitor._stellarflow_fix = True  # type: ignore[attr-defined]
    docker_monitor.__wrapped__ = current  # type: ignore[attr-defined]
    ContainerCommandLineJob.docker_monitor = docker_monitor  # type: ignore[method-assign]
    return True
