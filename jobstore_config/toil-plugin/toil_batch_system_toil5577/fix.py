"""Work-around for DataBiosphere/toil#5577 (Toil 9.6.0): grid_engine, torque and lsf fail on every
submission with "prepareSubmission() takes from 6 to 8 positional arguments but 9 were given".

The shared worker loop calls ``prepareSubmission(cpu, memory, walltime, jobID, command, jobName,
environment, gpus)`` but these three batch systems still define it without ``walltime``. The
subclasses here accept (and ignore, as upstream does for these systems) the walltime and call the
upstream method. Installed as a Toil batch-system plugin (package toil_batch_system_toil5577 of
jobstore_config/toil-plugin) under the upstream names, so profiles keep saying
``batchSystem: grid_engine``. Each factory checks the upstream signature first: once Toil is
fixed, the upstream class is returned untouched, and this module and the plugin can be deleted.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

ISSUE = "DataBiosphere/toil#5577"

# Toil batch-system name -> (module, class) of the upstream implementation.
AFFECTED = {
    "grid_engine": ("toil.batchSystems.gridengine", "GridEngineBatchSystem"),
    "torque": ("toil.batchSystems.torque", "TorqueBatchSystem"),
    "lsf": ("toil.batchSystems.lsf", "LSFBatchSystem"),
}


def upstream_class(name: str) -> type:
    module, cls = AFFECTED[name]
    return getattr(importlib.import_module(module), cls)


def has_bug(cls: type) -> bool:
    """True while the class's submission thread defines prepareSubmission without walltime."""
    params = inspect.signature(cls.GridEngineThread.prepareSubmission).parameters
    return "walltime" not in params


def fixed_class(cls: type) -> type:
    """``cls`` itself when upstream is fixed, else a subclass whose thread takes walltime."""
    if not has_bug(cls):
        return cls

    class Thread(cls.GridEngineThread):  # type: ignore[name-defined, misc]
        def prepareSubmission(self, cpu: int, memory: int, walltime: int, jobID: int,
                              command: str, jobName: str,
                              job_environment: dict[str, str] | None = None,
                              gpus: int | None = None) -> Any:
            # walltime: these systems take no time limit from Toil (upstream ignores it too);
            # set one through TOIL_GRIDENGINE_ARGS / TOIL_TORQUE_ARGS / TOIL_LSF_ARGS instead.
            return super().prepareSubmission(cpu, memory, jobID, command, jobName,
                                             job_environment, gpus)

    Thread.__name__ = Thread.__qualname__ = "GridEngineThread"
    fixed = type(cls.__name__, (cls,), {"GridEngineThread": Thread,
                                        "__doc__": f"{cls.__doc__ or ''}\n(fix for {ISSUE})",
                                        "__module__": __name__})
    return fixed


def factory(name: str) -> Callable[[], type]:
    return lambda: fixed_class(upstream_class(name))


OFF_ENV = "STELLARFLOW_TOIL5577"  # "off": leave Toil's classes alone (to see the upstream bug)


def register() -> None:
    """Register the fixed classes with Toil under their upstream names."""
    import os

    from toil.batchSystems.registry import add_batch_system_factory

    if os.environ.get(OFF_ENV, "").lower() == "off":
        return

    for name in AFFECTED:
        add_batch_system_factory(name, factory(name))
