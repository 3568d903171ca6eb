"""Not a batch system: a CWL sub-workflow's intermediate files leave the job store once every
step of it has ended. Toil imports every top-level package named ``toil_batch_system_*`` while
it parses its options (the leader); the workers that run the workflows' jobs get it from the
``stellarflow_single_machine`` fork server, which applies it before forking them.
See .fix; it leaves Toil alone once Toil's CWL runner deletes files itself, and can be deleted
then.
"""

from .fix import apply

apply()
