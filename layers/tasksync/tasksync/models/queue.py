"""An event on its way through the queue, and what a batch send reports.

The values the reconciler's ports exchange with the queue (tasksync.logic.ports.Enqueuer);
`tasksync.dal.queue.EventQueue` sends them with SQS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tasksync.errors import InvalidInput
from tasksync.models import queue_message
from tasksync.models._parsing import parse_model
from tasksync.models.close import CloseEvent


def deduplication_id(event: CloseEvent) -> str:
    """sha256 hex of `event.id|date_updated` (64 characters; SQS allows 128)."""
    return queue_message.deduplication_id(event.id, event.date_updated)


@dataclass(frozen=True)
class QueuedEvent:
    """One Close event as it travels through the queue."""

    event: CloseEvent
    raw_event: Mapping[str, Any]
    subscription_id: str | None = None

    @classmethod
    def from_raw(cls, raw_event: Mapping[str, Any], subscription_id: str | None = None) -> QueuedEvent:
        """Parse a raw Close event (event log entry or webhook `event`). Raises InvalidInput."""
        return cls(parse_model(CloseEvent, raw_event, "event"), raw_event, subscription_id)

    @classmethod
    def from_message_body(cls, body: str) -> QueuedEvent:
        """The worker's side: decode a message body written by `EventQueue`. Raises InvalidInput."""
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            raise InvalidInput("message.body", "is not valid JSON") from None
        if not isinstance(decoded, dict):
            raise InvalidInput("message.body", "is not a JSON object")
        subscription_id = decoded.pop("subscription_id", None)
        return cls.from_raw(decoded, subscription_id if isinstance(subscription_id, str) else None)

    @property
    def group_id(self) -> str:
        return queue_message.group_id(self.event.close_task_id, self.event.object_id, self.event.id)

    @property
    def deduplication_id(self) -> str:
        return deduplication_id(self.event)

    def message_body(self) -> str:
        return queue_message.message_body(self.raw_event, self.subscription_id)


@dataclass(frozen=True)
class EnqueueFailure:
    event_id: str
    code: str
    message: str
    # True when SQS says the message itself is at fault (retrying it unchanged will not help).
    sender_fault: bool


@dataclass
class EnqueueReport:
    """What `enqueue_many` did: (event id, SQS message id) per sent event, and the failures."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    failures: list[EnqueueFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures
