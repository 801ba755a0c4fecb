"""Close CRM objects: the webhook envelope, events, tasks, users, leads and subscriptions.

Shapes follow Close's documented examples and real payloads (docs/upstream-apis.md; events/payloads/).
Unknown fields are ignored: Close adds fields without notice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from tasksync.models._parsing import TaskDate, UtcDatetime, parse_model
from tasksync.models.envelope import (
    SNAPSHOT_ACTION,
    TASK_COMPLETED_ACTIVITY,
    TASK_OBJECT_PREFIX,
    close_task_id_of,
    is_completion_activity,
    is_task_event,
)

# The wait assumed for a Close 429 that carries no usable header (the official client's default).
DEFAULT_RATE_LIMIT_WAIT = 2.0


class _CloseModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class CloseTask(_CloseModel):
    """A Close task of any `_type` (lead, missed_call, email_followup, ...)."""

    id: str = Field(min_length=1)
    type: str = Field(alias="_type", min_length=1)
    lead_id: str | None = None
    lead_name: str | None = None
    contact_id: str | None = None
    contact_name: str | None = None
    assigned_to: str | None = None
    assigned_to_name: str | None = None
    text: str | None = None
    date: TaskDate = None
    is_dateless: bool = False
    is_complete: bool = False
    date_created: UtcDatetime
    date_updated: UtcDatetime
    # Type-specific fields used for readable summaries of non-lead tasks.
    subject: str | None = None
    phone: str | None = None
    phone_formatted: str | None = None
    local_phone: str | None = None
    remote_phone: str | None = None
    remote_phone_formatted: str | None = None
    body_preview: str | None = None


class TaskCompletedActivity(_CloseModel):
    """The `activity.task_completed` object: when and by whom a task was completed."""

    id: str
    task_id: str = Field(min_length=1)
    lead_id: str | None = None
    activity_at: UtcDatetime | None = None
    date_created: UtcDatetime

    @property
    def completed_at(self) -> datetime:
        return self.activity_at or self.date_created


class CloseEvent(_CloseModel):
    """One Close event-log entry (a webhook delivers exactly one, wrapped in an envelope)."""

    id: str = Field(min_length=1)
    object_type: str = Field(min_length=1)
    action: str = Field(min_length=1)
    object_id: str | None = None
    lead_id: str | None = None
    date_created: UtcDatetime
    date_updated: UtcDatetime
    user_id: str | None = None
    request_id: str | None = None
    changed_fields: list[str] = Field(default_factory=list)
    data: dict[str, Any] | None = None
    previous_data: dict[str, Any] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_task_event(self) -> bool:
        return is_task_event(self.object_type, self.action)

    @property
    def is_completion_activity(self) -> bool:
        return is_completion_activity(self.object_type, self.action)

    @property
    def is_relevant(self) -> bool:
        """Whether this service acts on the event at all (others get a 200 and are dropped)."""
        return self.is_task_event or self.is_completion_activity

    @property
    def task_type(self) -> str | None:
        """The Close task `_type` for task events (`task.lead` -> `lead`)."""
        if self.object_type.startswith(TASK_OBJECT_PREFIX):
            return self.object_type[len(TASK_OBJECT_PREFIX) :]
        return None

    @property
    def close_task_id(self) -> str | None:
        """The Close task this event is about, whatever its kind."""
        return close_task_id_of(self.object_type, self.action, self.object_id, self.data, self.previous_data)

    def task(self) -> CloseTask | None:
        """The task snapshot carried in `data`, or None when the event carries no data."""
        if not self.is_task_event or not self.data:
            return None
        return parse_model(CloseTask, self.data, "event.data")

    def completion(self) -> TaskCompletedActivity | None:
        if self.object_type != TASK_COMPLETED_ACTIVITY:
            return None
        source = self.data or self.previous_data
        if not source:
            return None
        return parse_model(TaskCompletedActivity, source, "event.data" if self.data else "event.previous_data")

    @property
    def version_key(self) -> str:
        """Event id plus `date_updated`: Close consolidates rapid changes into one event id."""
        return f"{self.id}@{self.date_updated.isoformat()}"


class CloseWebhook(_CloseModel):
    """The webhook envelope: `{"subscription_id": "whsub_...", "event": {...}}`."""

    subscription_id: str = Field(min_length=1)
    event: CloseEvent


class CloseEmail(_CloseModel):
    email: str


class CloseContact(_CloseModel):
    id: str | None = None
    name: str | None = None
    emails: list[CloseEmail] = Field(default_factory=list)


class CloseLead(_CloseModel):
    """A lead with its contacts' emails and custom fields.

    Close returns custom fields as flat `custom.cf_...` keys; older answers also carry a
    deprecated `custom` dict keyed by field name. Both end up in ``custom``, keyed by the
    field id (`cf_...`) and, for the legacy dict, by name.
    """

    id: str
    name: str | None = None
    display_name: str | None = None
    date_created: UtcDatetime | None = None
    contacts: list[CloseContact] = Field(default_factory=list)
    custom: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_custom_fields(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        custom: dict[str, Any] = {}
        legacy = value.get("custom")
        if isinstance(legacy, dict):
            custom.update(legacy)
        for key, field_value in value.items():
            if key.startswith("custom."):
                custom[key[len("custom.") :]] = field_value
        return {**value, "custom": custom}

    def custom_field(self, name: str) -> Any:
        """Look a custom field up by `cf_...` id, `custom.cf_...` key or (legacy) name."""
        key = name[len("custom.") :] if name.startswith("custom.") else name
        return self.custom.get(key)

    @property
    def emails(self) -> list[str]:
        """Distinct contact emails, lower-cased, in the order Close lists them."""
        seen: dict[str, None] = {}
        for contact in self.contacts:
            for email in contact.emails:
                normalized = email.email.strip().lower()
                if normalized:
                    seen.setdefault(normalized, None)
        return list(seen)


class CloseUser(_CloseModel):
    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class WebhookEventSelector(_CloseModel):
    object_type: str
    action: str
    extra_filter: dict[str, Any] | None = None


class CloseWebhookSubscription(_CloseModel):
    """A webhook subscription. `signature_key` is secret: it signs every delivery."""

    id: str
    url: str
    events: list[WebhookEventSelector] = Field(default_factory=list)
    status: Literal["active", "paused"] | str = "active"
    pause_reason: str | None = None
    health_status: str | None = None
    latest_error: Any = None
    signature_key: SecretStr | None = None
    verify_ssl: bool = True

    @property
    def is_paused(self) -> bool:
        return self.status == "paused"


def task_snapshot_event(
    task: CloseTask, raw: dict[str, Any] | None = None, event_id: str | None = None
) -> dict[str, Any]:
    """A synthetic event carrying a task snapshot (backfill, parked retry, CLI replay).

    ``raw`` is the task JSON as Close sent it, when the caller has it; otherwise the model
    is serialised (in Close's field names, so the worker parses it back to the same task).
    Its id is derived from the task id and version, so enqueuing the same snapshot twice
    deduplicates like a repeated webhook would.
    """
    version = task.date_updated.isoformat()
    return {
        "id": event_id or f"snap_{task.id}_{task.date_updated.strftime('%Y%m%d%H%M%S%f')}",
        "object_type": f"{TASK_OBJECT_PREFIX}{task.type}",
        "action": SNAPSHOT_ACTION,
        "object_id": task.id,
        "lead_id": task.lead_id,
        "date_created": version,
        "date_updated": version,
        "data": raw if raw is not None else task.model_dump(mode="json", by_alias=True),
        "changed_fields": [],
        "previous_data": {},
        "meta": {"source": "tasksync"},
    }


def refetch_event(
    close_task_id: str, task_type: str, lead_id: str | None, now: datetime, reason: str
) -> dict[str, Any]:
    """A synthetic event with no data: the worker fetches the task from Close (parked retry)."""
    stamp = now.isoformat()
    return {
        "id": f"refetch_{close_task_id}_{now.strftime('%Y%m%d%H%M%S%f')}",
        "object_type": f"{TASK_OBJECT_PREFIX}{task_type}",
        "action": SNAPSHOT_ACTION,
        "object_id": close_task_id,
        "lead_id": lead_id,
        "date_created": stamp,
        "date_updated": stamp,
        "data": None,
        "changed_fields": [],
        "previous_data": {},
        "meta": {"source": "tasksync", "reason": reason},
    }


__all__ = [
    "SNAPSHOT_ACTION",
    "TASK_COMPLETED_ACTIVITY",
    "TASK_OBJECT_PREFIX",
    "CloseContact",
    "CloseEvent",
    "CloseLead",
    "CloseTask",
    "CloseUser",
    "CloseWebhook",
    "CloseWebhookSubscription",
    "TaskCompletedActivity",
    "WebhookEventSelector",
]
