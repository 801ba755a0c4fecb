"""The local stack's Lambda emulation, piece by piece: the SQS poller's partial-batch rules and the
HTTP API v2 event of a request.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tasksync_dev.local.http_api import http_api_event
from tasksync_dev.local.sqs_source import (
    SqsEventSource,
    delete_succeeded,
    failed_message_ids,
    queue_counts,
    receive_batch,
)
from tests.support.aws import Queues
from tests.support.local_runner import poll


# ---------------------------------------------------------------- Lambda's rules, piece by piece
def _event_source(
    queues: Queues, invoke: Callable[[dict[str, Any]], Any], errors: list[BaseException]
) -> SqsEventSource:
    return SqsEventSource(
        sqs=queues.client,
        queue_url=queues.events_url,
        invoke=invoke,
        region="us-east-1",
        on_batch_error=lambda exc, _size: errors.append(exc),
        on_poll_error=errors.append,
    )


def _queue_counts(queues: Queues) -> tuple[int, int]:
    """(visible, in flight) messages of the event queue."""
    return queue_counts(queues.client, queues.events_url)


def test_the_poller_deletes_the_records_that_succeeded_and_leaves_the_failures(queues: Queues) -> None:
    for group in ("task_a", "task_b"):
        queues.client.send_message(
            QueueUrl=queues.events_url, MessageBody=group, MessageGroupId=group, MessageDeduplicationId=group
        )
    events: list[dict[str, Any]] = []

    def fail_task_a(event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "task_a"]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}

    errors: list[BaseException] = []
    assert _event_source(queues, fail_task_a, errors).poll_once() == 2
    assert errors == []
    records = {r["body"]: r for r in events[0]["Records"]}
    assert records["task_a"]["attributes"]["ApproximateReceiveCount"] == "1"
    assert records["task_a"]["attributes"]["MessageGroupId"] == "task_a"
    assert records["task_a"]["eventSource"] == "aws:sqs"
    assert records["task_a"]["eventSourceARN"].endswith(urlsplit(queues.events_url).path.rsplit("/", 1)[-1])
    assert _queue_counts(queues) == (0, 1)  # task_b deleted, task_a left for its retry


def test_when_the_handler_raises_the_whole_batch_comes_back(queues: Queues) -> None:
    # A short visibility timeout, so that the undeleted record is visible again within a second.
    queues.client.set_queue_attributes(QueueUrl=queues.events_url, Attributes={"VisibilityTimeout": "1"})
    queues.client.send_message(
        QueueUrl=queues.events_url, MessageBody="task_a", MessageGroupId="task_a", MessageDeduplicationId="a1"
    )
    errors: list[BaseException] = []

    def crash(event: dict[str, Any]) -> None:
        raise RuntimeError("worker crashed")

    assert _event_source(queues, crash, errors).poll_once() == 1
    assert [str(e) for e in errors] == ["worker crashed"]
    assert sum(_queue_counts(queues)) == 1  # not deleted

    receive_counts: list[str] = []

    def succeed(event: dict[str, Any]) -> dict[str, Any]:
        receive_counts.extend(r["attributes"]["ApproximateReceiveCount"] for r in event["Records"])
        return {"batchItemFailures": []}

    retry = _event_source(queues, succeed, errors)
    poll(retry.poll_once, what="the redelivery of the crashed batch", timeout=10)
    assert receive_counts == ["2"]
    assert _queue_counts(queues) == (0, 0)


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, {"m1"}),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"m1", "m2"}),
        ({"batchItemFailures": "m1"}, {"m1", "m2"}),
        ("not a dict", {"m1", "m2"}),
    ],
)
def test_batch_item_failures_follow_lambdas_rules(response: Any, failed: set[str]) -> None:
    assert failed_message_ids(response, {"m1", "m2"}) == failed


def test_a_request_becomes_an_http_api_v2_event() -> None:
    event = http_api_event(
        method="POST",
        target="/webhooks/close?x=1",
        headers=[("Content-Type", "application/octet-stream"), ("X-Seen", "a"), ("x-seen", "b")],
        body=b"\xff\x00binary",
        source_ip="127.0.0.1",
        host="127.0.0.1:3000",
        route_key="POST /webhooks/close",
    )
    assert event["version"] == "2.0"
    assert event["headers"] == {"content-type": "application/octet-stream", "x-seen": "a,b"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/webhooks/close"
    assert event["rawQueryString"] == "x=1"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00binary"
    text = http_api_event(
        method="POST",
        target="/webhooks/close",
        headers=[("content-type", "application/json")],
        body=b'{"a": 1}',
        source_ip="127.0.0.1",
        host="h",
        route_key="POST /webhooks/close",
    )
    assert (text["isBase64Encoded"], text["body"]) == (False, '{"a": 1}')


def test_a_delete_sqs_refuses_is_reported_not_dropped(queues: Queues) -> None:
    # The record comes back after the visibility timeout, its task's later events behind it:
    # late, so the event source says so.
    queues.client.send_message(
        QueueUrl=queues.events_url, MessageBody="task_a", MessageGroupId="task_a", MessageDeduplicationId="a1"
    )
    [message] = receive_batch(queues.client, queues.events_url)
    stale = message.copy()
    stale["ReceiptHandle"] = "not-a-receipt-handle"
    refused = delete_succeeded(queues.client, queues.events_url, [stale], {"batchItemFailures": []})
    assert len(refused) == 1
    assert refused[0].startswith("ReceiptHandleIsInvalid")
    assert delete_succeeded(queues.client, queues.events_url, [message], {"batchItemFailures": []}) == []
