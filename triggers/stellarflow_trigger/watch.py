"""watchdog (inotify) events -> the service's queue. Runs in watchdog's observer thread."""

from __future__ import annotations

import queue

from watchdog.events import FileSystemEvent, FileSystemEventHandler


class Handler(FileSystemEventHandler):
    """Queue what matters: renamed in (moved/created-without-open), closed after writing,
    and changes to dataset files; the service decides what is a manifest."""

    def __init__(self, events: queue.Queue[tuple[str, str]]) -> None:
        self.events = events

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.events.put(("moved", str(event.dest_path)))

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.events.put(("created", str(event.src_path)))

    def on_opened(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.events.put(("opened", str(event.src_path)))

    def on_closed(self, event: FileSystemEvent) -> None:  # IN_CLOSE_WRITE
        if not event.is_directory:
            self.events.put(("closed", str(event.src_path)))
            self.events.put(("dataset", str(event.src_path)))

    def on_closed_no_write(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.events.put(("closed_no_write", str(event.src_path)))

    def on_modified(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.events.put(("dataset", str(event.src_path)))
