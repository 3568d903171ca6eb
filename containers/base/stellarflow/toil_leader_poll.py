"""Shorter leader poll for Toil's single_machine batch system (Toil 9.6.0).

Toil's leader loop asks the batch system for a finished job with ``maxWait=2`` on every turn,
even when it still has job updates of its own to process. When a job finishes, its finished
parents (a CWL sub-workflow, its ResolveIndirect, the scatter) are cleaned up one level per
turn, so every level of CWL nesting costs 2 s of an idle machine: measured here, 12 s between a
chunk's last step and the next job, 5-13 s between MSAP stages, 37 s at the end of a run.
On a single machine a poll is a queue read, so waiting at most POLL_S per turn costs the leader
nothing measurable (a turn is a few hundred microseconds) and removes that latency.

Installed as a Toil batch-system plugin (package toil_batch_system_stellarflow in
containers/base/toil_plugins/) under the upstream name, so profiles keep saying
``batchSystem: single_machine``. Schedulers (Slurm, SGE...) are left alone: there a poll is a
``squeue``/``qstat`` call.
"""

from __future__ import annotations

from typing import Any

POLL_S = 0.1


def fast_poll_class() -> type:
    from toil.batchSystems.singleMachine import SingleMachineBatchSystem

    class SingleMachineBatchSystemFastPoll(SingleMachineBatchSystem):
        __doc__ = (f"{SingleMachineBatchSystem.__doc__ or ''}\n(stellarflow: the leader waits at "
                   f"most {POLL_S} s per poll)")

        def getUpdatedBatchJob(self, maxWait: int) -> Any:  # noqa: N802 (Toil's name)
            return super().getUpdatedBatchJob(min(maxWait, POLL_S))  # type: ignore[arg-type]

    SingleMachineBatchSystemFastPoll.__module__ = __name__
    return SingleMachineBatchSystemFastPoll


def register() -> None:
    from toil.batchSystems.registry import add_batch_system_factory

    add_batch_system_factory("single_machine", fast_poll_class)
