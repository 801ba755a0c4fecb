"""The receiver Lambda handler, invoked with the events/ files against moto server, DynamoDB Local and
the simulators (tests.integration.handler_harness): what it answers and what it queues.
"""

from __future__ import annotations

import json
import time

import pytest

from tasksync.logic.signature import sign
from tests.integration.handler_harness import EVENTS_SUBSCRIPTION, F1_TASK, SANDBOX_SIGNATURE_KEY, Stack, stack
from tests.support.handlers import lambda_context, load_event, load_handler

__all__ = ["stack"]  # the fixture


# ---------------------------------------------------------------------------------- receiver
@pytest.mark.parametrize(
    ("event_file", "status", "queued"),
    [
        ("webhook-task-created.json", 202, 1),
        ("webhook-task-completed.json", 202, 1),
        ("webhook-task-deleted.json", 202, 1),
        ("webhook-bad-signature.json", 401, 0),
        ("webhook-ignored-event.json", 200, 0),
    ],
)
def test_receiver_answers_each_sample_event(stack: Stack, event_file: str, status: int, queued: int) -> None:
    receiver = load_handler("receiver")
    response = receiver.lambda_handler(load_event(event_file), lambda_context())
    assert response["statusCode"] == status
    assert "Traceback" not in response["body"]
    assert stack.depth(stack.queue_url) == queued


def test_receiver_enqueues_a_duplicate_delivery_once(stack: Stack) -> None:
    receiver = load_handler("receiver")
    event = load_event("webhook-task-created.json")
    answers = [receiver.lambda_handler(event, lambda_context()) for _ in range(3)]
    assert [a["statusCode"] for a in answers] == [202, 202, 202]
    assert json.loads(answers[0]["body"])["event_id"] == "ev_34bKnJcMX9UnRJmuGH5Jtr"
    messages = stack.receive()
    assert len(messages) == 1
    assert messages[0]["Attributes"]["MessageGroupId"] == F1_TASK


def test_receiver_rejects_bad_input_without_queueing(stack: Stack) -> None:
    receiver = load_handler("receiver")
    event = load_event("webhook-task-created.json")
    cases = [
        {**event, "body": "{not json"},
        {**event, "headers": {k: v for k, v in event["headers"].items() if k != "close-sig-hash"}},
        {**event, "body": "x" * (256 * 1024 + 1)},
    ]
    statuses = [receiver.lambda_handler(case, lambda_context())["statusCode"] for case in cases]
    assert statuses == [401, 401, 413]
    assert stack.depth(stack.queue_url) == 0


def test_receiver_answers_400_for_a_signed_body_that_is_not_a_close_event(stack: Stack) -> None:
    receiver = load_handler("receiver")
    body = json.dumps({"subscription_id": EVENTS_SUBSCRIPTION, "event": {"id": "ev_1"}}).encode()
    timestamp = str(int(time.time()))
    event = {
        **load_event("webhook-task-created.json"),
        "body": body.decode(),
        "isBase64Encoded": False,
        "headers": {"close-sig-timestamp": timestamp, "close-sig-hash": sign(SANDBOX_SIGNATURE_KEY, timestamp, body)},
    }
    response = receiver.lambda_handler(event, lambda_context())
    assert response["statusCode"] == 400
    assert "event." in response["body"]  # names the missing field
    assert stack.depth(stack.queue_url) == 0


def test_receiver_answers_5xx_only_when_the_queue_write_fails(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_URL", stack.queue_url + "-missing")
    receiver = load_handler("receiver")
    response = receiver.lambda_handler(load_event("webhook-task-created.json"), lambda_context())
    assert response["statusCode"] >= 500
    assert "Traceback" not in response["body"]
