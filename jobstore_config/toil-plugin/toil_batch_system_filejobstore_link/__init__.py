"""Not a batch system: Toil's file job store hard-links the files a job writes into it instead
of copying them. Toil imports every top-level package named ``toil_batch_system_*`` while it
parses its options (the leader); the workers that write the steps' outputs get it from the
``stellarflow_single_machine`` fork server, which applies it before forking them.
See .fix; it leaves Toil alone once Toil's ``FileJobStore.write_file`` no longer copies, and can
be deleted then.
"""

from .fix import apply

apply()
