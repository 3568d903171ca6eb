"""Toil batch-system plugin: fix for DataBiosphere/toil#5577 (grid_engine, torque, lsf).

Toil imports every top-level package named ``toil_batch_system_*`` it finds installed and lets it
register batch systems. This one re-registers grid_engine, torque and lsf with the fixed classes
of .fix, which returns the upstream classes unchanged once Toil is fixed; delete it then.
"""

from .fix import register

register()
