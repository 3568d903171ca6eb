"""stellarflow trigger service: launch workflows as manifests (or dataset lines) arrive.

Toil has no triggering of its own; this package is the small external service that does it:
watchdog (inotify) or a cron pass claims complete manifests, validates them with the same
code as `stellarflow run`, merges those arriving close together into one Toil run, and records
everything in a SQLite ledger so that a restart after kill -9 finishes every manifest exactly once.
"""

CLAIM_PREFIX = ".sfclaim."
