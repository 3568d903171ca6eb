"""Toil batch-system plugin: fix for DataBiosphere/toil#5577 (grid_engine, torque, lsf).

Toil imports every top-level package named ``toil_batch_system_*`` on sys.path and lets it register
batch systems. This one re-registers grid_engine, torque and lsf with the fixed classes from
stellarflow.toil_fix_5577. Delete this folder when Toil ships the upstream fix (the classes are
then returned unchanged anyway). ``stellarflow run`` puts containers/base/toil_plugins on
PYTHONPATH; for toil-cwl-runner directly: export PYTHONPATH=$PWD/containers/base/toil_plugins.
"""

from stellarflow.toil_fix_5577 import register

register()
