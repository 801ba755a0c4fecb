"""Webhook deliveries for the receiver's unit tests: real HTTP API v2 events (events/*.json), signed.

The queue is an in-memory stand-in for tasksync.dal.queue.EventQueue with the same `enqueue`
signature. It encodes each event exactly as EventQueue does and decodes it again, so the
tests assert on the message the worker would read, not on calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tasksync.dal.signature_keys import SingleSignatureKey
from tasksync.logic.signature import sign
from tasksync.models.close import CloseEvent
from tasksync.models.queue import QueuedEvent
from tasksync.receiver import Receiver, WebhookResponse

EVENTS = Path(__file__).resolve().parents[2] / "events"
SANDBOX_KEY = "4163f715a56509cf31c5fb4e5ea975c2dc88e6d61ad41c28eab5b9b12c83d548"
OTHER_KEY = "aa" * 32
CREATED_SUBSCRIPTION = "whsub_1vT2aEze4uUzQlqLIBExYl"


class InMemoryEventQueue:
    def __init__(self, failure: Exception | None = None) -> None:
        self.messages: list[QueuedEvent] = []
        self.failure = failure

    def enqueue(self, event: CloseEvent, raw_event: Mapping[str, Any], *, subscription_id: str | None = None) -> str:
        if self.failure is not None:
            raise self.failure
        body = QueuedEvent(event, raw_event, subscription_id).message_body()
        self.messages.append(QueuedEvent.from_message_body(body))
        return f"message-{len(self.messages)}"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def timestamp_of(event: Mapping[str, Any]) -> int:
    return int(event["headers"]["close-sig-timestamp"])


def signed(body: str | bytes, *, timestamp: int = 1_750_000_000, key: str = SANDBOX_KEY) -> dict[str, Any]:
    """An HTTP API v2 event carrying ``body`` with a valid Close signature."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    event = load("webhook-task-created.json")
    event["body"] = raw.decode("utf-8")
    event["headers"]["content-length"] = str(len(raw))
    event["headers"]["close-sig-timestamp"] = str(timestamp)
    event["headers"]["close-sig-hash"] = sign(key, str(timestamp), raw)
    return event


def receiver_at(now: float, queue: InMemoryEventQueue, *, keys: Any = None, tolerance: int = 300) -> Receiver:
    return Receiver(
        keys=keys if keys is not None else SingleSignatureKey(SANDBOX_KEY),
        queue=queue,
        tolerance_seconds=tolerance,
        clock=lambda: now,
    )


def handle(
    event: dict[str, Any], *, keys: Any = None, now: float | None = None, tolerance: int = 300
) -> tuple[WebhookResponse, InMemoryEventQueue]:
    queue = InMemoryEventQueue()
    clock = now if now is not None else float(event["headers"].get("close-sig-timestamp", "0") or 0)
    response = receiver_at(clock, queue, keys=keys, tolerance=tolerance).handle(event)
    return response, queue


def body_of(response: WebhookResponse) -> dict[str, Any]:
    http = response.to_http()
    assert http["headers"]["content-type"] == "application/json"
    decoded: dict[str, Any] = json.loads(http["body"])
    assert "Traceback" not in http["body"]
    return decoded
