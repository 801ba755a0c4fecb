"""The SQS FIFO event queue between the receiver (and reconciler) and the worker.

One message per Close event. Its body is the raw event object (not the webhook envelope) plus
``subscription_id``, so the worker sees exactly what Close sent. Two ids make the queue do the
right thing:

- MessageGroupId = the Close task id: events about one task are delivered in order and never
  processed by two workers at once, while different tasks proceed in parallel.
- MessageDeduplicationId = sha256(event id + "|" + date_updated): a repeated delivery of the same
  event version within SQS's 5-minute window is dropped, while a consolidated event (same id,
  newer date_updated) is a new message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tasksync.errors import InvalidInput
from tasksync.models._parsing import parse_model
from tasksync.models.close import CloseEvent

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# SQS's classic per-message (and per-batch) size limit. The receiver refuses bodies above the
# same size, so a webhook that was accepted always fits.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH_ENTRIES = 10
_MAX_GROUP_ID_LENGTH = 128
# MessageGroupId may hold alphanumerics and ASCII punctuation only.
_GROUP_ID_CHARS = re.compile(r"[!-~]+")
# Characters SQS accepts in a message body (the XML 1.0 character set).
_SQS_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _group_id(event: CloseEvent) -> str:
    candidate = event.close_task_id or event.object_id or event.id
    if len(candidate) <= _MAX_GROUP_ID_LENGTH and _GROUP_ID_CHARS.fullmatch(candidate):
        return candidate
    # Not a Close id shape: keep the grouping (same input, same group) in a form SQS accepts.
    return hashlib.sha256(candidate.encode("utf-8", "surrogatepass")).hexdigest()


def deduplication_id(event: CloseEvent) -> str:
    """sha256 hex of `event.id|date_updated` (64 characters; SQS allows 128)."""
    version = f"{event.id}|{event.date_updated.isoformat()}"
    return hashlib.sha256(version.encode("utf-8", "surrogatepass")).hexdigest()


def _encode_body(payload: Mapping[str, Any]) -> str:
    # Compact and UTF-8 keeps the message no larger than the body Close sent; fall back to
    # \u escapes when the text holds a character SQS would refuse (e.g. a lone surrogate).
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if _SQS_INVALID_CHARS.search(text):
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text


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
        return _group_id(self.event)

    @property
    def deduplication_id(self) -> str:
        return deduplication_id(self.event)

    def message_body(self) -> str:
        body = _encode_body({**self.raw_event, "subscription_id": self.subscription_id})
        size = len(body.encode("utf-8"))
        if size > MAX_MESSAGE_BYTES:
            raise InvalidInput("event", f"is {size} bytes as a queue message; SQS takes at most {MAX_MESSAGE_BYTES}")
        return body


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


class EventQueue:
    """Writes Close events to the SQS FIFO event queue."""

    def __init__(self, sqs_client: SQSClient, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def enqueue(self, event: CloseEvent, raw_event: Mapping[str, Any], *, subscription_id: str | None = None) -> str:
        """Send one event; return the SQS message id. Raises botocore errors as they come."""
        queued = QueuedEvent(event, raw_event, subscription_id)
        answer = self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=queued.message_body(),
            MessageGroupId=queued.group_id,
            MessageDeduplicationId=queued.deduplication_id,
        )
        return answer["MessageId"]

    def enqueue_many(self, events: Iterable[QueuedEvent]) -> EnqueueReport:
        """Send events with SendMessageBatch (10 per call); every failure is reported, none raised.

        A batch call that fails as a whole (throttling, network) marks each of its events as
        failed and the next batch is still tried: the caller (the reconciler) decides what to
        retry, typically by not advancing its checkpoint.
        """
        report = EnqueueReport()
        for batch in self._batches(events, report):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": str(index),
                    "MessageBody": body,
                    "MessageGroupId": queued.group_id,
                    "MessageDeduplicationId": queued.deduplication_id,
                }
                for index, (queued, body) in enumerate(batch)
            ]
            try:
                answer = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                code = (
                    exc.response.get("Error", {}).get("Code", "Unknown") if isinstance(exc, ClientError) else "Network"
                )
                report.failures.extend(EnqueueFailure(q.event.id, str(code), str(exc), False) for q, _ in batch)
                continue
            for ok in answer.get("Successful", []):
                report.sent.append((batch[int(ok["Id"])][0].event.id, ok["MessageId"]))
            for failed in answer.get("Failed", []):
                report.failures.append(
                    EnqueueFailure(
                        batch[int(failed["Id"])][0].event.id,
                        failed.get("Code", "Unknown"),
                        failed.get("Message", ""),
                        bool(failed.get("SenderFault", False)),
                    )
                )
        return report

    @staticmethod
    def _batches(events: Iterable[QueuedEvent], report: EnqueueReport) -> Iterator[list[tuple[QueuedEvent, str]]]:
        """Groups of at most 10 entries whose bodies together stay within the batch size limit."""
        batch: list[tuple[QueuedEvent, str]] = []
        batch_bytes = 0
        for queued in events:
            try:
                body = queued.message_body()
            except InvalidInput as exc:
                report.failures.append(EnqueueFailure(queued.event.id, "MessageTooLong", exc.message, True))
                continue
            size = len(body.encode("utf-8"))
            if batch and (len(batch) == MAX_BATCH_ENTRIES or batch_bytes + size > MAX_MESSAGE_BYTES):
                yield batch
                batch, batch_bytes = [], 0
            batch.append((queued, body))
            batch_bytes += size
        if batch:
            yield batch
