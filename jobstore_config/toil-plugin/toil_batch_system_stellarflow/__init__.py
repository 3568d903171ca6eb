"""Toil batch-system plugin: single_machine with a short leader poll and forked workers
(stellarflow.toil_single_machine).

Toil imports every top-level package named ``toil_batch_system_*`` on sys.path and lets it register
batch systems. ``stellarflow run`` puts containers/base/toil_plugins on PYTHONPATH; for
toil-cwl-runner directly: export PYTHONPATH=$PWD/containers/base/toil_plugins.
"""

from stellarflow.toil_single_machine import register

register()
