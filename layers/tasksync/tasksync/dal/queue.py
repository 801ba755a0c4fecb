"""The SQS FIFO event queue between the receiver (and reconciler) and the worker.

One message per Close event; the message format (body, group and deduplication ids) is
`tasksync.dal.event_message`'s, here built from a parsed `CloseEvent`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tasksync.dal import event_message
from tasksync.dal.event_message import MAX_MESSAGE_BYTES
from tasksync.errors import InvalidInput
from tasksync.models._parsing import parse_model
from tasksync.models.close import CloseEvent

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_BATCH_ENTRIES = 10


def deduplication_id(event: CloseEvent) -> str:
    """sha256 hex of `event.id|date_updated` (64 characters; SQS allows 128)."""
    return event_message.deduplication_id(event.id, event.date_updated)


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
        return event_message.group_id(self.event.close_task_id, self.event.object_id, self.event.id)

    @property
    def deduplication_id(self) -> str:
        return deduplication_id(self.event)

    def message_body(self) -> str:
        return event_message.message_body(self.raw_event, self.subscription_id)


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
    """Writes Close events to the SQS FIFO event queue in batches (the receiver's single sends:
    `tasksync.dal.event_message.WebhookQueue`)."""

    def __init__(self, sqs_client: SQSClient, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

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
