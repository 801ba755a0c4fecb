"""Poison events to the dead-letter queue: what the reconciler can never enqueue, with the reason.

An event-log entry that is not a valid event, or one SQS refuses for the message itself, would
otherwise pin the reconciler's checkpoint. It goes to the DLQ instead (where `tasksync dlq list`
shows it with its reason and the DeadLetterAlarm fires), and the checkpoint moves on.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from tasksync.models.queue_message import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

POISON_GROUP = "poison"
_REASON_MAX = 1000


def poison_body(raw: Any, event_id: str | None, reason: str) -> str:
    """The entry as Close sent it, or (when it cannot be a message) a summary that names it."""
    try:
        body = json.dumps(raw, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError):
        body = ""
    if not body or len(body) > MAX_MESSAGE_BYTES:
        body = json.dumps({"id": event_id, "poison": reason[:_REASON_MAX], "truncated": True})
    return body


class DeadLetterQueue:
    """Writes poison events to the FIFO DLQ (one group: they are not retried in order)."""

    def __init__(self, sqs_client: SQSClient, dlq_url: str) -> None:
        self._sqs = sqs_client
        self._dlq_url = dlq_url

    def put(self, raw: Any, event_id: str | None, reason: str) -> None:
        body = poison_body(raw, event_id, reason)
        self._sqs.send_message(
            QueueUrl=self._dlq_url,
            MessageBody=body,
            MessageGroupId=POISON_GROUP,
            # The same poison entry seen by overlapping scans lands once (within SQS's 5 minutes).
            MessageDeduplicationId=hashlib.sha256(body.encode()).hexdigest(),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:_REASON_MAX]}},
        )
