"""Close's event log as the catch-up reads it: a query, and pages of entries.

Each entry keeps the raw object Close sent beside its parsed event (or the reason it has none),
so that one malformed entry never hides the others and can still be dead-lettered as it came.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from tasksync.models.close import CloseEvent


class EventLogQuery(TypedDict):
    """One scan of Close's event log (`GET /event/`): a pair and a `date_updated` window."""

    object_type: str
    action: str
    date_updated_gte: datetime
    date_updated_lte: NotRequired[datetime | None]
    limit: NotRequired[int]  # per page; Close caps it at 50


@dataclass(frozen=True)
class LogEntry:
    """One event-log entry as Close sent it, and either its parsed event or why it has none."""

    raw: Any
    event: CloseEvent | None
    problem: str | None = None

    @property
    def entry_id(self) -> str | None:
        """The entry's `id` when it has a usable one (for reports on invalid entries)."""
        value = self.raw.get("id") if isinstance(self.raw, dict) else None
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class EventPage:
    number: int  # 1 for the first page of a scan
    entries: list[LogEntry]
    more: bool  # Close gave a cursor to a next page
