"""The worker's coalescing, through the Lambda handler: a batch that holds several events of one
task makes ChartMogul end exactly where one record at a time would, with fewer calls, and keeps
the FIFO failure semantics."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tasksync.dal.links import LinkState, TaskLink
from tasksync.models.queue import QueuedEvent
from tasksync_dev.local.sqs_source import sqs_lambda_event
from tests.integration.handler_harness import F1_LEAD, F1_USER, Stack
from tests.integration.handler_harness import stack as _stack  # noqa: F401 - pytest registers it as `_stack`
from tests.support.handlers import lambda_context, load_handler

_ids = itertools.count()
REGION = "us-east-1"


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Stack:
    """The handler tests' stack: DynamoDB Local, moto's SQS and secrets, both simulators."""
    found: Stack = request.getfixturevalue("_stack")
    return found


def script(stack: Stack, lead_id: str) -> list[str]:
    """Five edits of one task (completion and a late edit among them), a task created, edited and
    deleted, and a task created once: the events Close logs for them, in order."""
    close = stack.close
    first = len(close.events)
    edited = close.create_task(lead_id=lead_id, text="Call back", assigned_to=F1_USER, date="2025-03-01")["id"]
    close.update_task(edited, text="Call back about the renewal")
    close.update_task(edited, date="2025-03-04")
    close.complete_task(edited)
    close.update_task(edited, text="Called back about the renewal")
    doomed = close.create_task(lead_id=lead_id, text="Send quote", assigned_to=F1_USER, date="2025-03-02")["id"]
    close.update_task(doomed, text="Send the quote")
    close.delete_task(doomed)
    close.create_task(lead_id=lead_id, text="Say thanks", assigned_to=F1_USER, date="2025-03-03")
    return [QueuedEvent.from_raw(e).message_body() for e in close.events[first:] if e.get("lead_id") == lead_id]


def messages(bodies: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "MessageId": f"m-{next(_ids)}",
            "ReceiptHandle": f"r-{next(_ids)}",
            "Body": body,
            "Attributes": {"MessageGroupId": QueuedEvent.from_message_body(body).group_id},
        }
        for body in bodies
    ]


def mirrored(stack: Stack, customer: str) -> list[tuple[str, str, str, bool]]:
    return sorted(
        (t["task_details"], t["due_date"][:10], t["assignee"], t["completed_at"] is not None)
        for t in stack.chartmogul.live_tasks(customer)
    )


def test_a_coalesced_batch_leaves_chartmogul_as_one_record_at_a_time_does(
    stack: Stack, state_tables: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETTLE_SECONDS", "0")  # one record at a time writes each edit at once
    other_lead = stack.close.add_lead("Globex", emails=["ops@globex.example"])["id"]
    other_customer = stack.chartmogul.add_customer(name="Globex", email="ops@globex.example")["uuid"]
    worker = load_handler("worker")
    arn = stack.queue_arn()
    one_by_one = messages(script(stack, other_lead))
    batched = messages(script(stack, F1_LEAD))
    assert len(batched) == len(one_by_one) > 10

    stack.chartmogul.calls.clear()
    for message in one_by_one:
        assert (
            worker.lambda_handler(sqs_lambda_event([message], arn, REGION), lambda_context())["batchItemFailures"] == []
        )
    calls_one_by_one = len(stack.chartmogul.calls)
    stack.chartmogul.calls.clear()
    for start in range(0, len(batched), 10):  # SQS hands a FIFO queue's messages over 10 at a time
        event = sqs_lambda_event(batched[start : start + 10], arn, REGION)
        assert worker.lambda_handler(event, lambda_context())["batchItemFailures"] == []
    calls_batched = len(stack.chartmogul.calls)

    assert mirrored(stack, stack.customer) == mirrored(stack, other_customer)
    assert len(mirrored(stack, stack.customer)) == 2
    assert calls_batched < calls_one_by_one
    # Every record has its idempotency record, folded or not: a repeat of any of them is a no-op.
    table = state_tables.client.scan(TableName=state_tables.idempotency, ConsistentRead=True)["Items"]
    assert len(table) == len(batched) + len(one_by_one)
    stack.chartmogul.calls.clear()
    assert (
        worker.lambda_handler(sqs_lambda_event(batched[:10], arn, REGION), lambda_context())["batchItemFailures"] == []
    )
    assert stack.chartmogul.calls == []


def test_a_failed_run_fails_the_rest_of_its_task_and_nothing_else(stack: Stack) -> None:
    lead = F1_LEAD
    close = stack.close
    first = len(close.events)
    failing = close.create_task(lead_id=lead, text="Fails", assigned_to=F1_USER, date="2025-03-01")["id"]
    passing = close.create_task(lead_id=lead, text="Passes", assigned_to=F1_USER, date="2025-03-01")["id"]
    close.update_task(failing, text="Fails again")
    close.update_task(passing, text="Passes again")
    batch = messages([QueuedEvent.from_raw(e).message_body() for e in close.events[first:]])
    by_task = {m["MessageId"]: QueuedEvent.from_message_body(m["Body"]).event.close_task_id for m in batch}
    # Another worker holds the creating lease on `failing`: its run fails with LeaseHeld.
    far = 4_102_444_800.0
    stack.links.save(
        None, TaskLink(close_task_id=failing, state=LinkState.CREATING, lease_owner="other", lease_until=far)
    )
    response = load_handler("worker").lambda_handler(
        sqs_lambda_event(batch, stack.queue_arn(), REGION), lambda_context()
    )
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {m for m, task in by_task.items() if task == failing}
    assert len(failed) == 2
    assert [t["task_details"] for t in stack.chartmogul.live_tasks()] == ["Passes again"]
