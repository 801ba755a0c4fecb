"""The receiver's side of the event queue: one SQS message per accepted delivery.

The message format (body, group and deduplication ids) is `tasksync.models.queue_message`'s,
built here from the receiver's dict-level check of the webhook, without pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tasksync.models.envelope import WebhookEvent
from tasksync.models.queue_message import deduplication_id, group_id, message_body

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class WebhookQueue:
    """The receiver's side of the event queue: one message per accepted delivery."""

    def __init__(self, sqs_client: SQSClient, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def enqueue(self, event: WebhookEvent, raw_event: Mapping[str, Any], *, subscription_id: str | None = None) -> str:
        """Send one event; return the SQS message id. Raises InvalidInput when it cannot fit,
        botocore errors as they come."""
        answer = self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=message_body(raw_event, subscription_id),
            MessageGroupId=group_id(event.close_task_id, event.object_id, event.id),
            MessageDeduplicationId=deduplication_id(event.id, event.date_updated),
        )
        return answer["MessageId"]
