"""Links read ahead for a batch (`TaskLinkStore.read_ahead`), each answering one read."""

from __future__ import annotations

import threading

from tasksync.models.link import TaskLink


class LinksReadAhead:
    """Links read for a batch before its records are applied: each answers one ``get``, once.

    A write of a link drops what was read ahead of it, and the next batch's read replaces the
    whole set. Thread-safe: a batch's message groups are applied on threads of their own.
    """

    def __init__(self) -> None:
        self._links: dict[str, TaskLink | None] = {}
        self._lock = threading.Lock()

    def replace(self, links: dict[str, TaskLink | None]) -> None:
        with self._lock:
            self._links = links

    def take(self, close_task_id: str) -> tuple[bool, TaskLink | None]:
        """(True, the link or None) when it was read ahead and not yet taken, else (False, None)."""
        with self._lock:
            if close_task_id not in self._links:
                return False, None
            return True, self._links.pop(close_task_id)

    def drop(self, close_task_id: str) -> None:
        with self._lock:
            self._links.pop(close_task_id, None)
