"""Toil batch-system plugin: ``stellarflow_single_machine`` (see .single_machine).

Toil imports every top-level package named ``toil_batch_system_*`` it finds installed and lets it
register batch systems; site profiles then say ``batchSystem: stellarflow_single_machine``.
"""

from .single_machine import register

register()
