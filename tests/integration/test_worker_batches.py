"""The worker's batches: the tasks of one batch on several threads (PARALLEL_TASKS), a record
sent back to the queue taking the rest of its task's records with it, and a task's quick
succession of edits settling into one ChartMogul call (SETTLE_SECONDS)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync.dal.queue import EventQueue
from tasksync.dal.read_ahead import LinksReadAhead
from tasksync.models.queue import QueuedEvent
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tests.integration.handler_harness import F1_LEAD, F1_USER, Stack, stack
from tests.integration.test_coalescing import mirrored
from tests.support.handlers import load_handler

__all__ = ["stack"]  # the fixture


def _enqueue(stack: Stack, events: list[dict[str, Any]]) -> None:
    report = EventQueue(stack.sqs, stack.queue_url).enqueue_many(QueuedEvent.from_raw(e) for e in events)
    assert report.ok, report.failures


def test_a_client_counts_the_calls_of_each_thread_apart(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient
) -> None:
    """The engine reports an event's calls as a difference of ``calls``: another thread's
    requests in between must not count."""
    before = chartmogul_client.calls
    seen_there: list[int] = []

    def elsewhere() -> None:
        chartmogul_client.list_tasks(customer_uuid=None)
        seen_there.append(chartmogul_client.calls)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen_there == [1]
    assert chartmogul_client.calls == before
    assert len(chartmogul_sim.calls) == 1


def test_tasks_applied_in_parallel_end_as_one_at_a_time(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    first = len(stack.close.events)
    for n in range(10):
        task = stack.close.create_task(lead_id=F1_LEAD, text=f"Task {n}", assigned_to=F1_USER, date="2025-03-01")
        stack.close.update_task(task["id"], text=f"Task {n}, edited")
    events = stack.close.events[first:]
    monkeypatch.setenv("PARALLEL_TASKS", "5")
    _enqueue(stack, events)
    worker = load_handler("worker")
    while messages := stack.receive():
        assert stack.run_worker(worker, messages)["batchItemFailures"] == []
    assert [details for details, *_ in mirrored(stack, stack.customer)] == sorted(
        f"Task {n}, edited" for n in range(10)
    )
    assert len(stack.chartmogul.live_tasks()) == 10


def test_a_retried_record_brings_the_rest_of_its_task_back_with_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both records of the task fail; both must be receivable again after the backoff (0 here),
    not only the first while the second waits out the queue's visibility timeout."""
    monkeypatch.setenv("RETRY_BASE_SECONDS", "0")
    monkeypatch.setenv("RETRY_MAX_SECONDS", "0")
    first = len(stack.close.events)
    task = stack.close.create_task(lead_id=F1_LEAD, text="Call", assigned_to=F1_USER, date="2025-03-01")
    stack.close.complete_task(task["id"])  # a completion activity: a record of its own in the run
    _enqueue(stack, stack.close.events[first:])
    stack.chartmogul.inject(FaultPlan(error_rate=1.0))
    messages = stack.receive()
    assert len(messages) >= 2
    response = stack.run_worker(load_handler("worker"), messages)
    assert len(response["batchItemFailures"]) == len(messages)
    again = stack.receive()
    assert [m["MessageId"] for m in again] == [m["MessageId"] for m in messages]


def test_edits_soon_after_a_write_settle_into_one_call(stack: Stack) -> None:
    first = len(stack.close.events)
    task = stack.close.create_task(lead_id=F1_LEAD, text="Call", assigned_to=F1_USER, date="2025-03-01")
    _enqueue(stack, stack.close.events[first:])
    worker = load_handler("worker")
    assert stack.run_worker(worker, stack.receive())["batchItemFailures"] == []
    stack.chartmogul.calls.clear()
    mark = len(stack.close.events)
    stack.close.update_task(task["id"], text="Call back")
    _enqueue(stack, stack.close.events[mark:])
    held = stack.receive()
    assert len(held) == 1
    # Written moments ago: the edit waits for the settle window (10 s by default), no call.
    assert len(stack.run_worker(worker, held)["batchItemFailures"]) == 1
    assert stack.chartmogul.calls == []
    assert stack.receive() == []  # invisible until the window ends
    mark = len(stack.close.events)
    stack.close.update_task(task["id"], text="Call back about the renewal")  # the rep's next edit
    _enqueue(stack, stack.close.events[mark:])
    # The window ends (moved forward here rather than waited for): both edits come as one batch.
    stack.sqs.change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=held[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    both = stack.receive()
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in both] == ["2", "1"]
    assert stack.run_worker(worker, both)["batchItemFailures"] == []
    assert [c.method for c in stack.chartmogul.calls] == ["PATCH"]
    assert [t["task_details"] for t in stack.chartmogul.live_tasks()] == ["Call back about the renewal"]


def test_a_change_back_from_its_wait_goes_out_as_close_has_it_now(stack: Stack) -> None:
    """The held edit comes back alone (its task's next edit is left for another batch): it
    writes the task as Close has it now, and the next edit then costs no ChartMogul call."""
    first = len(stack.close.events)
    task = stack.close.create_task(lead_id=F1_LEAD, text="Call", assigned_to=F1_USER, date="2025-03-01")
    _enqueue(stack, stack.close.events[first:])
    worker = load_handler("worker")
    assert stack.run_worker(worker, stack.receive())["batchItemFailures"] == []
    mark = len(stack.close.events)
    stack.close.update_task(task["id"], text="Call back")
    _enqueue(stack, stack.close.events[mark:])
    held = stack.receive()
    assert len(stack.run_worker(worker, held)["batchItemFailures"]) == 1  # settling
    mark = len(stack.close.events)
    stack.close.update_task(task["id"], text="Call back about the renewal")
    _enqueue(stack, stack.close.events[mark:])
    stack.chartmogul.calls.clear()
    stack.sqs.change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=held[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    back = stack.receive()
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in back] == ["2", "1"]
    assert stack.run_worker(worker, back[:1])["batchItemFailures"] == []  # the batch ends after it
    assert [t["task_details"] for t in stack.chartmogul.live_tasks()] == ["Call back about the renewal"]
    stack.sqs.change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=back[1]["ReceiptHandle"], VisibilityTimeout=0
    )
    tail = stack.receive()
    assert len(tail) == 1
    assert stack.run_worker(worker, tail)["batchItemFailures"] == []
    assert [c.method for c in stack.chartmogul.calls] == ["PATCH"]


def test_a_batch_reads_the_links_of_its_tasks_in_one_request(stack: Stack) -> None:
    """Each record used to read its task's link with a GetItem of its own, one round trip on
    every record's path; the batch now reads them all with one BatchGetItem, and the tasks end
    the same."""
    first = len(stack.close.events)
    for n in range(5):
        stack.close.create_task(lead_id=F1_LEAD, text=f"Task {n}", assigned_to=F1_USER, date="2025-03-01")
    _enqueue(stack, stack.close.events[first:])
    worker = load_handler("worker")
    calls: list[tuple[str, str]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        keys = [params.get("Key", {})] if "Key" in params else []
        keys += [k for table in params.get("RequestItems", {}).values() for k in table.get("Keys", [])]
        calls.extend((model.name, str(key.get("pk", {}).get("S", ""))) for key in keys)

    links = worker.get_worker().engine.links
    links.client.meta.events.register("provide-client-params.dynamodb", record)
    # A stopped clock: on a slow host a task's turn may come after the read-ahead's age limit,
    # and then it reads its link itself; that rule has tests of its own (test_read_ahead.py).
    links._ahead = LinksReadAhead(clock=lambda: 0.0)
    batches = 0
    while messages := stack.receive():
        batches += 1
        assert stack.run_worker(worker, messages)["batchItemFailures"] == []
    link_reads = [(name, pk) for name, pk in calls if pk.startswith("task#") and name.endswith("GetItem")]
    assert {name for name, _ in link_reads} == {"BatchGetItem"}
    assert len(link_reads) == 5  # each task's link once, in the batches' requests
    assert len(stack.chartmogul.live_tasks()) == 5
