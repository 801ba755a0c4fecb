"""Links read ahead for a batch (`TaskLinkStore.read_ahead`), each answering one read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tasksync.models.link import TaskLink

# How long after the read a link read ahead may still answer: about the first round of a batch's
# tasks. A task whose turn comes later reads its link itself, so it sees what another process
# (the reconciler's parked retry, the sync-back) wrote meanwhile as promptly as it did before
# the read-ahead: a ChartMogul write goes out before the conditional link write that would
# catch an outdated read.
MAX_AGE_SECONDS = 0.5


class LinksReadAhead:
    """Links read for a batch before its records are applied: each answers one ``get``, once,
    and only within ``max_age`` seconds of the read.

    A write of a link drops what was read ahead of it, and the next batch's read replaces the
    whole set. Thread-safe: a batch's message groups are applied on threads of their own.
    """

    def __init__(self, *, max_age: float = MAX_AGE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._links: dict[str, TaskLink | None] = {}
        self._read_at = 0.0
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._clock()

    def replace(self, links: dict[str, TaskLink | None], *, read_at: float | None = None) -> None:
        """The links read at ``read_at`` (this clock's time, before the read was sent)."""
        with self._lock:
            self._links = links
            self._read_at = self._clock() if read_at is None else read_at

    def take(self, close_task_id: str) -> tuple[bool, TaskLink | None]:
        """(True, the link or None) when it was read ahead, not yet taken and is fresh enough,
        else (False, None): the caller reads the link itself."""
        with self._lock:
            if close_task_id not in self._links:
                return False, None
            link = self._links.pop(close_task_id)
            if self._clock() - self._read_at > self._max_age:
                return False, None
            return True, link

    def drop(self, close_task_id: str) -> None:
        with self._lock:
            self._links.pop(close_task_id, None)
