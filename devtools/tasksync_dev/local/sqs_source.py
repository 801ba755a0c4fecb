"""Lambda's SQS event source mapping, played by one thread.

It long-polls the event queue for batches of up to 10, builds the event Lambda would build,
calls the worker handler and then does what Lambda does with `ReportBatchItemFailures`:
deletes the records that succeeded and leaves the reported failures in the queue (the worker
has already set their visibility, i.e. their backoff). When the handler raises, or reports a
failure it was never given, nothing is deleted: the whole batch comes back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tasksync_dev.local.background import BackgroundLoop

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

BATCH_SIZE = 10  # WorkerFunction's BatchSize in template.yaml
WAIT_SECONDS = 1  # short long-polls, so that stop() is noticed within a second
ERROR_PAUSE_SECONDS = 1.0

Invoke = Callable[[dict[str, Any]], Any]


def _message_attributes(message: MessageTypeDef) -> dict[str, Any]:
    """ReceiveMessage's MessageAttributes in the Lambda event's camel-case shape."""
    converted: dict[str, Any] = {}
    for name, attribute in (message.get("MessageAttributes") or {}).items():
        converted[name] = {
            "stringValue": attribute.get("StringValue"),
            "binaryValue": attribute.get("BinaryValue"),
            "stringListValues": list(attribute.get("StringListValues") or []),
            "binaryListValues": list(attribute.get("BinaryListValues") or []),
            "dataType": attribute.get("DataType", "String"),
        }
    return converted


def sqs_lambda_event(messages: list[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller hands the function for these received messages."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                # Every system attribute SQS returned: ApproximateReceiveCount, MessageGroupId,
                # MessageDeduplicationId, SequenceNumber, SentTimestamp, ...
                "attributes": dict(message.get("Attributes") or {}),
                "messageAttributes": _message_attributes(message),
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def failed_message_ids(response: Any, batch_ids: set[str]) -> set[str]:
    """Which records to leave in the queue, by Lambda's rules for a batch-item-failures answer."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set(batch_ids)
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(batch_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            # An empty, null or unknown identifier fails the whole batch.
            return set(batch_ids)
        failed.add(identifier)
    return failed


def delete_succeeded(sqs: SQSClient, queue_url: str, messages: list[MessageTypeDef], response: Any) -> list[str]:
    """Delete the records of an invocation that did not fail, by Lambda's rules for a
    batch-item-failures answer (the failures stay in the queue, with the backoff the worker set).
    Returns what SQS refused to delete: those records come back after the visibility timeout."""
    failed = failed_message_ids(response, {message["MessageId"] for message in messages})
    done: list[DeleteMessageBatchRequestEntryTypeDef] = [
        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
        for index, message in enumerate(messages)
        if message["MessageId"] not in failed
    ]
    if not done:
        return []
    answer = sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)
    return [f"{failure.get('Code')}: {failure.get('Message')}" for failure in answer.get("Failed") or []]


def receive_batch(sqs: SQSClient, queue_url: str, wait_seconds: int = WAIT_SECONDS) -> list[MessageTypeDef]:
    """One ReceiveMessage as Lambda's poller makes it: up to a batch, with every attribute."""
    answer = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=BATCH_SIZE,
        WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(answer.get("Messages") or [])


def queue_counts(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    """(visible, in flight): the queue's approximate message counts, as SQS reports them."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def queue_arn(sqs: SQSClient, queue_url: str) -> str:
    """The ARN Lambda puts in each record's ``eventSourceARN``."""
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def invoke_batch(
    *, sqs: SQSClient, queue_url: str, queue_arn: str, region: str, messages: list[MessageTypeDef], invoke: Invoke
) -> Any:
    """One invocation as Lambda's poller makes it: the event for these received messages, then
    the records that did not fail are deleted. When ``invoke`` raises, nothing is deleted (the
    whole batch comes back) and the exception propagates. Returns the handler's answer."""
    response = invoke(sqs_lambda_event(messages, queue_arn, region))
    delete_succeeded(sqs, queue_url, messages, response)
    return response


class SqsEventSource(BackgroundLoop):
    """Polls one queue and feeds its batches to one function, until stopped."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        invoke: Invoke,
        region: str,
        on_batch_error: Callable[[BaseException, int], None],
        on_poll_error: Callable[[BaseException], None],
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._invoke = invoke
        self._region = region
        self._on_batch_error = on_batch_error
        self._on_poll_error = on_poll_error
        super().__init__()
        self._busy = threading.Event()
        self._queue_arn = ""
        self.batches = 0

    @property
    def busy(self) -> bool:
        """A batch has been received and is not finished (deleted or left) yet."""
        return self._busy.is_set()

    def wrap_invoke(self, wrapper: Callable[[Invoke], Invoke]) -> None:
        """Put ``wrapper`` around the function call from the next batch on (fault injection:
        the chaos tests kill the worker in the middle of a batch this way)."""
        self._invoke = wrapper(self._invoke)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError) as exc:
                self._on_poll_error(exc)
                self._stopping.wait(ERROR_PAUSE_SECONDS)

    def poll_once(self) -> int:
        """One ReceiveMessage and, if it returned messages, one invocation. Returns the batch size."""
        messages = receive_batch(self._sqs, self._queue_url)
        if not messages:
            return 0
        self._busy.set()
        try:
            self.batches += 1
            self._process(messages)
        finally:
            self._busy.clear()
        return len(messages)

    def _process(self, messages: list[MessageTypeDef]) -> None:
        if not self._queue_arn:
            self._queue_arn = queue_arn(self._sqs, self._queue_url)
        try:
            response = self._invoke(sqs_lambda_event(messages, self._queue_arn, self._region))
        except Exception as exc:  # Lambda: a failed invocation returns the whole batch to the queue
            self._on_batch_error(exc, len(messages))
            return
        refused = delete_succeeded(self._sqs, self._queue_url, messages, response)
        if refused:  # those records come back after the visibility timeout: late, so say so
            self._on_poll_error(RuntimeError(f"SQS did not delete {len(refused)} handled records: {refused[:3]}"))
