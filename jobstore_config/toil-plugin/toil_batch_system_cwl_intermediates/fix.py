"""Delete a CWL sub-workflow's intermediate files from the job store once the sub-workflow ends.

Toil 9.6's CWL runner keeps every file a step writes until the run ends (``cwltoil.py``: "we
assume CWL can't call deleteGlobalFile"; upstream DataBiosphere/toil#4872 is about deleting
files nothing can use any more, and its first part, PR #5228, is for WDL only). A scatter over
chunks of stars therefore piles up every chunk's intermediate files (light curves, prepared
light curves, spectra) until the last chunk ends, and the job store peaks at the sum of all of
them.

Here each sub-workflow (a workflow run as a step of another: a chunk of the SAS) gets one more
follow-on job, which runs once all of its steps have ended. It deletes the files its steps
produced, except those it returns (its outputs, which its parent still uses) and those it was
given (a step may hand an input on). Nothing else can hold such a file: CWL gives a step only
what its workflow's own steps and inputs provide. The top-level workflow is left alone: its
files end with the run. Toil loads plugins in the leader only; the job classes that make workflow
jobs are replaced by subclasses defined here (CARRIERS), so every worker that loads one imports
this module and applies the same change, whatever the batch system.
``toil_keeps_intermediates`` checks Toil's own CWL code first: once it deletes any file itself,
nothing is changed.
"""

from __future__ import annotations

import logging
import os
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any

from toil.fileStores import FileID
from toil.job import Job

ISSUE = "DataBiosphere/toil#4872 (Toil's CWL runner never deletes an intermediate file)"
OFF_ENV = "STELLARFLOW_JOBSTORE_GC"  # "off": leave Toil alone (to compare)
PREFIX = "toilfile:"

logger = logging.getLogger(__name__)


def _code_objects(module: types.ModuleType) -> Iterator[types.CodeType]:
    todo: list[Any] = [v for v in vars(module).values()
                       if getattr(v, "__module__", None) == module.__name__]
    seen: set[int] = set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, type):
            todo.extend(vars(obj).values())
        elif isinstance(obj, (staticmethod, classmethod)):
            todo.append(obj.__func__)
        elif isinstance(obj, property):
            todo.extend(f for f in (obj.fget, obj.fset) if f is not None)
        elif isinstance(obj, types.FunctionType):
            todo.append(obj.__code__)
        elif isinstance(obj, types.CodeType):
            yield obj
            todo.extend(c for c in obj.co_consts if isinstance(c, types.CodeType))


def toil_keeps_intermediates(module: types.ModuleType) -> bool:
    """True while no code of Toil's CWL runner deletes a file from the job store."""
    return not any({"deleteGlobalFile", "delete_file"} & set(code.co_names)
                   for code in _code_objects(module))


def toil_file_locations(value: Any) -> set[str]:
    """Every ``toilfile:`` location in a CWL value, or in Toil's unresolved wrappers of one."""
    found: set[str] = set()
    todo: list[Any] = [value]
    seen: set[int] = set()
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if item.startswith(PREFIX):
                found.add(item)
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            todo.extend(vars(item).values())  # ResolveSource, DefaultWithSource, ValueFrom
    return found


def resolved(value: Any) -> Any:
    """A workflow's inputs or outputs as values: Toil's wrappers (ResolveSource, ...) hold the
    whole output record of each step they read from, of which a port takes one field."""
    if isinstance(value, dict):
        return {key: resolved(item) for key, item in value.items()}
    resolve = getattr(value, "resolve", None)
    if callable(resolve):
        try:
            return resolve()
        except Exception:  # noqa: BLE001 (what cannot be resolved here is kept whole)
            return value
    return value


class DeleteIntermediates(Job):
    """Deletes the files a sub-workflow's steps produced that it neither returns nor was given."""

    def __init__(self, step_results: list[Any], outputs: Any, given: Iterable[str],
                 name: str) -> None:
        super().__init__(cores=1, memory="256MiB", disk="1MiB", local=True,
                         unitName=f"{name}._delete_intermediates",
                         displayName=f"DeleteIntermediates {name}")
        self.step_results = step_results  # promises, resolved when this job is loaded
        self.outputs = outputs
        self.given = sorted(given)

    def run(self, file_store: Any) -> None:
        keep = set(self.given) | toil_file_locations(resolved(self.outputs))
        doomed = toil_file_locations(self.step_results) - keep
        size = 0
        for location in sorted(doomed):
            file_id = FileID.unpack(location[len(PREFIX):])
            size += file_id.size or 0
            file_store.deleteGlobalFile(file_id)
        logger.info("deleted %d intermediate files (%.1f MB) of %s", len(doomed), size / 1e6,
                    self.description.unitName)


# The cwltoil job classes that make workflow jobs (directly, or through a job they make). Each
# is replaced by a subclass of the same name defined here, so that a pickled job names this
# module and every worker that loads one imports it, and so applies this fix, on any batch
# system: Toil loads plugins in the leader only.
CARRIERS = ("CWLWorkflow", "CWLScatter", "CWLLoop", "CWLStartJob", "CWLImportWrapper")


def _workflow_class(base: type, cwltoil: types.ModuleType) -> type:
    from toil.job import TemporaryID

    producers = (cwltoil.CWLJob, cwltoil.CWLJobWrapper, cwltoil.CWLGather,
                 cwltoil.ResolveIndirect, cwltoil.CWLLoop)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        parent = kwargs.get("parent_name", args[3] if len(args) > 3 else None)
        self._stellarflow_sub_workflow = parent is not None  # the top level has no parent

    def run(self: Any, file_store: Any) -> Any:
        outputs = base.run(self, file_store)
        if not self._stellarflow_sub_workflow:
            return outputs
        steps = [job for job in self._registry.values()
                 if job is not self and isinstance(job, producers)
                 and isinstance(job.jobStoreID, TemporaryID)]
        if not steps:  # skipped (`when` false): no step, nothing written
            return outputs
        # A follow-on runs once this job's children, and everything below them, have ended.
        self.addFollowOn(DeleteIntermediates([job.rv() for job in steps], outputs,
                                             toil_file_locations(resolved(self.cwljob)),
                                             self.task_path))
        return outputs

    return type("CWLWorkflow", (base,), {"__init__": __init__, "run": run,
                                         "__module__": __name__, "__qualname__": "CWLWorkflow"})


def apply(import_toil: bool = False) -> bool:
    """Make CWL sub-workflows delete their intermediate files while Toil keeps them; True if
    applied (now or before)."""
    if os.environ.get(OFF_ENV, "").lower() == "off":
        return False
    if import_toil:
        import toil.cwl.cwltoil  # noqa: F401
    cwltoil = sys.modules.get("toil.cwl.cwltoil")
    if cwltoil is None:  # not a CWL run (toil stats, toil clean): nothing to patch
        return False
    if getattr(cwltoil.CWLWorkflow, "__module__", None) == __name__:
        return True
    if not toil_keeps_intermediates(cwltoil):
        return False
    for name in CARRIERS:
        base = getattr(cwltoil, name)
        carrier = (_workflow_class(base, cwltoil) if name == "CWLWorkflow" else
                   type(name, (base,), {"__module__": __name__, "__qualname__": name}))
        globals()[name] = carrier
        setattr(cwltoil, name, carrier)  # makeJob and the others look these names up there
    return True


def __getattr__(name: str) -> Any:
    """A worker unpickling one of the CARRIERS imports this module first: apply, then hand it."""
    if name in CARRIERS and apply(import_toil=True) and name in globals():
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
