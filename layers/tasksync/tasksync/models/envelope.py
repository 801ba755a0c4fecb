"""The Close webhook envelope checked at the dict level, without pydantic.

The receiver answers Close within a few hundred milliseconds of a cold start, and importing
pydantic (with the models built on it) would cost it more than all its own work. So the
receiver checks the envelope here, field by field with the same rules as `CloseWebhook` in
`tasksync.models.close`, and the worker still parses every message fully with that model.
Whatever this check accepts, the model accepts too (tests/unit/test_envelope.py holds both to
that): a stricter edge is safe, a looser one would queue messages the worker can only
dead-letter.

Which events the service acts on, and which task an event is about, are plain functions of
the event's fields, shared with `CloseEvent`, so that the rules live in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tasksync.errors import InvalidInput

TASK_OBJECT_PREFIX = "task."
TASK_COMPLETED_ACTIVITY = "activity.task_completed"
# The action our reconciler/backfill/CLI uses for an event it made from a task snapshot.
SNAPSHOT_ACTION = "snapshot"

TASK_ACTIONS = frozenset({"created", "updated", "completed", "deleted", SNAPSHOT_ACTION})
ACTIVITY_ACTIONS = frozenset({"created", "deleted"})

# The RFC 3339 subset Close writes ("2025-02-28T19:20:45.507000", no offset), with an optional
# "Z" or +hh:mm offset: a strict subset of what pydantic's datetime accepts.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?")


def is_task_event(object_type: str, action: str) -> bool:
    return object_type.startswith(TASK_OBJECT_PREFIX) and action in TASK_ACTIONS


def is_completion_activity(object_type: str, action: str) -> bool:
    return object_type == TASK_COMPLETED_ACTIVITY and action in ACTIVITY_ACTIONS


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def close_task_id_of(
    object_type: str,
    action: str,
    object_id: str | None,
    data: Mapping[str, Any] | None,
    previous_data: Mapping[str, Any] | None,
) -> str | None:
    """The Close task an event is about, whatever its kind (None for other objects)."""
    if is_task_event(object_type, action):
        return _text(object_id) or _text((data or {}).get("id")) or _text((previous_data or {}).get("id"))
    if object_type == TASK_COMPLETED_ACTIVITY:
        for source in (data, previous_data):
            if source and isinstance(source.get("task_id"), str):
                return str(source["task_id"])
    return None


def utc(value: datetime) -> datetime:
    """Close event timestamps carry no offset ("2025-02-28T19:20:45.507000"); they are UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class WebhookEvent:
    """The fields of one delivered event that the receiver reads (the rest travels as sent)."""

    id: str
    object_type: str
    action: str
    object_id: str | None
    date_updated: datetime
    data: Mapping[str, Any] | None
    previous_data: Mapping[str, Any] | None

    @property
    def is_relevant(self) -> bool:
        """Whether this service acts on the event at all (others get a 200 and are dropped)."""
        return is_task_event(self.object_type, self.action) or is_completion_activity(self.object_type, self.action)

    @property
    def close_task_id(self) -> str | None:
        return close_task_id_of(self.object_type, self.action, self.object_id, self.data, self.previous_data)


@dataclass(frozen=True)
class WebhookEnvelope:
    """`{"subscription_id": "whsub_...", "event": {...}}`, checked."""

    subscription_id: str
    event: WebhookEvent
    raw_event: Mapping[str, Any]


def _required_text(source: Mapping[str, Any], name: str, where: str) -> str:
    if name not in source:
        raise InvalidInput(f"{where}.{name}", "Field required")
    value = source[name]
    if not isinstance(value, str):
        raise InvalidInput(f"{where}.{name}", "Input should be a valid string")
    if not value:
        raise InvalidInput(f"{where}.{name}", "String should have at least 1 character")
    return value


def _optional(source: Mapping[str, Any], name: str, kind: type, where: str, expected: str) -> Any:
    value = source.get(name)
    if value is not None and not isinstance(value, kind):
        raise InvalidInput(f"{where}.{name}", f"Input should be a valid {expected}")
    return value


def _timestamp(source: Mapping[str, Any], name: str, where: str) -> datetime:
    if name not in source:
        raise InvalidInput(f"{where}.{name}", "Field required")
    value = source[name]
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise InvalidInput(f"{where}.{name}", "Input should be a valid datetime")
    try:
        return utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise InvalidInput(f"{where}.{name}", "Input should be a valid datetime in range") from None


def parse_event(raw: Any, where: str = "event") -> WebhookEvent:
    """Check one Close event object as `CloseEvent` would; raise InvalidInput naming the field."""
    if not isinstance(raw, dict):
        raise InvalidInput(where, "Input should be a valid dictionary")
    event_id = _required_text(raw, "id", where)
    object_type = _required_text(raw, "object_type", where)
    action = _required_text(raw, "action", where)
    object_id = _optional(raw, "object_id", str, where, "string")
    for name in ("lead_id", "user_id", "request_id"):
        _optional(raw, name, str, where, "string")
    _timestamp(raw, "date_created", where)
    date_updated = _timestamp(raw, "date_updated", where)
    if "changed_fields" in raw:
        changed = raw["changed_fields"]
        if not isinstance(changed, list) or not all(isinstance(name, str) for name in changed):
            raise InvalidInput(f"{where}.changed_fields", "Input should be a valid list of strings")
    data = _optional(raw, "data", dict, where, "dictionary")
    previous_data = _optional(raw, "previous_data", dict, where, "dictionary")
    if "meta" in raw and not isinstance(raw["meta"], dict):
        raise InvalidInput(f"{where}.meta", "Input should be a valid dictionary")
    return WebhookEvent(event_id, object_type, action, object_id, date_updated, data, previous_data)


def parse_envelope(parsed: Mapping[str, Any], where: str = "body") -> WebhookEnvelope:
    """Check a decoded webhook body; raise InvalidInput naming the field, never the value."""
    subscription_id = _required_text(parsed, "subscription_id", where)
    if "event" not in parsed:
        raise InvalidInput(f"{where}.event", "Field required")
    raw_event = parsed["event"]
    return WebhookEnvelope(subscription_id, parse_event(raw_event, f"{where}.event"), raw_event)
