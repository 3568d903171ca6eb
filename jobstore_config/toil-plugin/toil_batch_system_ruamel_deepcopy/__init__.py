"""Not a batch system: the fix for ruamel.yaml's quadratic deep copy of a sequence, applied in
every Toil process that loads plugins (the leader first of all, before it reads the CWL job).

Toil imports every top-level package named ``toil_batch_system_*`` while it parses its options,
which is before it loads the job order: the earliest point where code of ours runs in the leader.
See .fix; it leaves ruamel.yaml alone once ruamel.yaml is fixed, and can be deleted then.
"""

from .fix import apply

apply()
