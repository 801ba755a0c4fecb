"""ChartMogul objects: tasks, the fields we push, and customers.

See docs/upstream-apis.md, "ChartMogul tasks". ChartMogul echoes `due_date` as a full timestamp
("2025-04-30T00:00:00.000Z") even when given a date; the docs show date-only. We therefore
never compare our fields with ChartMogul's echo; we compare with what we last pushed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

TASK_DETAILS_MAX = 255
UPDATABLE_TASK_FIELDS = ("task_details", "assignee", "due_date", "completed_at")


class ChartMogulTask(BaseModel):
    """A task as ChartMogul returns it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_uuid: str = Field(min_length=1)
    # Null for tasks attached to a contact (newer API surface).
    customer_uuid: str | None = None
    task_details: str = ""
    assignee: str | None = None
    due_date: str | None = None
    completed_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class TaskPage:
    """One page of `GET /tasks`: its tasks and the cursor to the next page."""

    entries: list[ChartMogulTask]
    cursor: str | None
    has_more: bool


class TaskFilters(TypedDict, total=False):
    """The filters of `GET /tasks` (each one left out when not given), declared once for the
    port, the client and the fakes."""

    customer_uuid: str
    assignee: str
    due_date_on_or_after: str
    due_date_on_or_before: str
    completed: bool
    per_page: int  # at most 200


class TaskFields(BaseModel):
    """The ChartMogul task fields we derive from a Close task (the translation's output)."""

    model_config = ConfigDict(frozen=True)

    task_details: str = Field(min_length=1, max_length=TASK_DETAILS_MAX)
    assignee: str = Field(min_length=1)
    # "YYYY-MM-DD" for date-only Close dates, "YYYY-MM-DDTHH:MM:SSZ" (UTC) for datetimes.
    due_date: str = Field(min_length=10)
    completed_at: str | None = None

    def as_payload(self) -> dict[str, Any]:
        return self.model_dump()

    def fingerprint(self) -> str:
        canonical = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def changes_from(self, previous: TaskFields | None) -> dict[str, Any]:
        """The fields that differ from ``previous`` (all of them when there is none)."""
        mine = self.model_dump()
        if previous is None:
            return mine
        theirs = previous.model_dump()
        return {name: mine[name] for name in UPDATABLE_TASK_FIELDS if mine[name] != theirs[name]}

    def with_assignee(self, assignee: str) -> TaskFields:
        return self.model_copy(update={"assignee": assignee})


class ChartMogulCustomer(BaseModel):
    """The subset of a ChartMogul customer we use for matching."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    uuid: str = Field(min_length=1)
    external_id: str | None = None
    data_source_uuid: str | None = None
    email: str | None = None
    name: str | None = None


def normalize_due_date(value: str | None) -> str | None:
    """Reduce ChartMogul's echo and our own form to one comparable string.

    "2025-04-30", "2025-04-30T00:00:00Z" and "2025-04-30T00:00:00.000Z" are the same due
    date to ChartMogul; a midnight-UTC timestamp is treated as the date itself.
    """
    if value is None:
        return None
    text = value.strip()
    if len(text) >= 10 and text[10:] in ("", "T00:00:00Z", "T00:00:00.000Z", "T00:00:00+00:00"):
        return text[:10]
    return text.replace(".000Z", "Z")
