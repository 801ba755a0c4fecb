"""The worker Lambda handler, invoked with the events/ files against moto server, DynamoDB Local and
the simulators (tests.integration.handler_harness): applying queued events, partial-batch failures,
the DLQ.
"""

from __future__ import annotations

import json

import pytest

from tasksync.dal.links import LinkState, TaskLink
from tasksync_dev.sandbox._server import FaultPlan
from tests.integration.handler_harness import F1_LEAD, F1_USER, REP, Stack, enqueue_webhook, signed_delivery, stack
from tests.support.handlers import lambda_context, load_event, load_handler
from tests.support.template import queue_definitions

__all__ = ["stack"]  # the fixture


# ---------------------------------------------------------------------------------- worker


def test_worker_applies_the_sample_sqs_event(stack: Stack) -> None:
    worker = load_handler("worker")
    event = load_event("sqs-task-created.json")
    response = worker.lambda_handler(event, lambda_context())
    assert response == {"batchItemFailures": []}
    tasks = stack.chartmogul.live_tasks(stack.customer)
    assert [t["task_details"] for t in tasks] == ["Instantly: Test20250227"]
    assert tasks[0]["assignee"] == REP
    # The same record again (SQS redelivery): the idempotency record answers, ChartMogul is untouched.
    stack.chartmogul.calls.clear()
    assert worker.lambda_handler(event, lambda_context()) == {"batchItemFailures": []}
    assert stack.chartmogul.calls == []


def test_each_batch_tells_the_chartmogul_pacer_that_work_resumes(stack: Stack) -> None:
    """The pacer tells slots left unused between batches from over-holding by this signal."""
    worker = load_handler("worker")
    worker.lambda_handler(load_event("sqs-task-created.json"), lambda_context())
    built = worker.get_worker()
    assert built.batch_starts == built.engine.chartmogul.pacer.resume


def test_worker_reports_partial_batch_failures_and_backs_off(stack: Stack) -> None:
    blocked = stack.close.create_task(lead_id=F1_LEAD, text="blocked", assigned_to=F1_USER, date="2025-03-01")
    free = stack.close.create_task(lead_id=F1_LEAD, text="free", assigned_to=F1_USER, date="2025-03-01")
    # Another worker holds the creating lease on `blocked` for the next 10 minutes.
    stack.links.save(
        None,
        TaskLink(
            close_task_id=blocked["id"], state=LinkState.CREATING, lease_owner="other", lease_until=4_102_444_800.0
        ),
    )
    receiver = load_handler("receiver")
    for task in (blocked, free):
        body, headers = signed_delivery(stack, task["id"])
        event = {
            **load_event("webhook-task-created.json"),
            "body": body.decode(),
            "headers": headers,
            "isBase64Encoded": False,
        }
        assert receiver.lambda_handler(event, lambda_context())["statusCode"] == 202
    messages = stack.receive()
    assert len(messages) == 2
    response = stack.run_worker(load_handler("worker"), messages)
    blocked_message = next(m for m in messages if m["Attributes"]["MessageGroupId"] == blocked["id"])
    assert response["batchItemFailures"] == [{"itemIdentifier": blocked_message["MessageId"]}]
    assert [t["task_details"] for t in stack.chartmogul.live_tasks()] == ["free"]
    # The failed record's visibility was pushed out (backoff ≥ RETRY_BASE_SECONDS/2): not receivable now.
    assert stack.receive() == []
    assert stack.depth(stack.queue_url) == 1


def test_worker_message_reaches_the_dlq_after_max_receive_count(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    redrive = queue_definitions()["EventQueue"]["redrive"]
    max_receives = int(redrive["max_receive_count"])
    monkeypatch.setenv("RETRY_BASE_SECONDS", "0")  # retry at once, so the test needs no waiting
    monkeypatch.setenv("RETRY_MAX_SECONDS", "0")
    enqueue_webhook(stack)
    stack.chartmogul.inject(FaultPlan(error_rate=1.0))  # an outage that outlasts every retry
    worker = load_handler("worker")
    for _ in range(max_receives):
        messages = stack.receive()
        assert len(messages) == 1
        assert stack.run_worker(worker, messages)["batchItemFailures"]
    assert stack.receive() == []  # the next receive moves it to the DLQ
    dead = stack.receive(stack.dlq_url)
    assert len(dead) == 1
    assert json.loads(dead[0]["Body"])["id"] == "ev_34bKnJcMX9UnRJmuGH5Jtr"


def test_worker_moves_an_unreadable_message_to_the_dlq_with_its_reason(stack: Stack) -> None:
    stack.sqs.send_message(
        QueueUrl=stack.queue_url, MessageBody="{broken", MessageGroupId="g", MessageDeduplicationId="d1"
    )
    messages = stack.receive()
    assert stack.run_worker(load_handler("worker"), messages) == {"batchItemFailures": []}
    dead = stack.receive(stack.dlq_url)
    assert [m["Body"] for m in dead] == ["{broken"]
    assert "JSON" in dead[0]["MessageAttributes"]["reason"]["StringValue"]
    assert stack.depth(stack.queue_url) == 0
