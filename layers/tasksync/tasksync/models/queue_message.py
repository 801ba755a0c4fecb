"""The queue message of one Close event: body, group id and deduplication id, without pydantic.

One format, built two ways: `tasksync.models.queue.QueuedEvent` builds it from a parsed
`CloseEvent` (reconciler, CLI), and the receiver from its dict-level check of the webhook
(`tasksync.models.envelope`), because importing pydantic would double its cold start. Both go
through the functions here, so the bytes SQS sees are the same either way.

- The body is the raw event object as Close sent it, plus ``subscription_id``.
- MessageGroupId = the Close task id: events about one task are delivered in order and never
  processed by two workers at once, while different tasks proceed in parallel.
- MessageDeduplicationId = sha256(event id + "|" + date_updated in UTC): a repeated delivery
  of the same event version within SQS's 5-minute window is dropped, while a consolidated
  event (same id, newer date_updated) is a new message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tasksync.errors import InvalidInput

# SQS's classic per-message (and per-batch) size limit. The receiver refuses bodies above the
# same size, so a webhook that was accepted always fits.
MAX_MESSAGE_BYTES = 256 * 1024
_MAX_GROUP_ID_LENGTH = 128
# MessageGroupId may hold alphanumerics and ASCII punctuation only.
_GROUP_ID_CHARS = re.compile(r"[!-~]+")
# Characters SQS accepts in a message body (the XML 1.0 character set).
_SQS_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def group_id(close_task_id: str | None, object_id: str | None, event_id: str) -> str:
    """The task the event is about, else its object, else the event itself."""
    candidate = close_task_id or object_id or event_id
    if len(candidate) <= _MAX_GROUP_ID_LENGTH and _GROUP_ID_CHARS.fullmatch(candidate):
        return candidate
    # Not a Close id shape: keep the grouping (same input, same group) in a form SQS accepts.
    return hashlib.sha256(candidate.encode("utf-8", "surrogatepass")).hexdigest()


def deduplication_id(event_id: str, date_updated: datetime) -> str:
    """sha256 hex of `event id|date_updated` (64 characters; SQS allows 128); UTC-aware input."""
    version = f"{event_id}|{date_updated.isoformat()}"
    return hashlib.sha256(version.encode("utf-8", "surrogatepass")).hexdigest()


def message_body(raw_event: Mapping[str, Any], subscription_id: str | None) -> str:
    """The raw event plus the subscription id, as compact JSON. Raises InvalidInput when too large."""
    payload = {**raw_event, "subscription_id": subscription_id}
    # Compact and UTF-8 keeps the message no larger than the body Close sent; fall back to
    # \\u escapes when the text holds a character SQS would refuse (e.g. a lone surrogate).
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if _SQS_INVALID_CHARS.search(body):
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    size = len(body.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise InvalidInput("event", f"is {size} bytes as a queue message; SQS takes at most {MAX_MESSAGE_BYTES}")
    return body
