"""The SQS FIFO event queue between the reconciler (and the receiver) and the worker.

One message per Close event, a `QueuedEvent` (tasksync.models.queue); the message format
(body, group and deduplication ids) is `tasksync.models.queue_message`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tasksync.errors import InvalidInput
from tasksync.models.queue import EnqueueFailure, EnqueueReport, QueuedEvent, deduplication_id
from tasksync.models.queue_message import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_BATCH_ENTRIES = 10


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


# Re-exported for the modules that still import them from here (the worker, the CLI, the benches).
__all__ = ["MAX_MESSAGE_BYTES", "EnqueueFailure", "EnqueueReport", "EventQueue", "QueuedEvent", "deduplication_id"]
