"""The operator CLI against real parts (tests.integration.cli_harness): the commands that put events on
the queue: `backfill`, `reconcile`, `dlq`, `replay`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tasksync.dal.queue import EventQueue
from tasksync.logic.results import ApplyResult
from tasksync.models.queue import QueuedEvent
from tasksync.reconciler import subscribed_pairs
from tasksync.worker import Worker
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tests.integration.cli_harness import Cli, LocalStack, cli, drain, stack, visible
from tests.integration.engine_harness import make_world
from tests.support.handlers import lambda_context

__all__ = ["cli", "stack"]  # the fixtures


# ---------------------------------------------------------------------------------- backfill / reconcile
def test_backfill_enqueues_every_task_updated_since_the_date(stack: LocalStack, cli: Cli) -> None:
    lead = stack.close.add_lead("Acme", emails=["ops@acme.example"])["id"]
    task_ids = {stack.close.create_task(lead_id=lead, text=f"call {n}")["id"] for n in range(23)}
    stack.close.create_task(lead_id=lead, text="an email follow-up", task_type="email_followup")

    result = cli("--local", "backfill", "--since", "2020-01-01")
    assert result.code == 0, result.err
    assert "23" in result.out  # the total, printed once (progress lines only show on a slow run)
    messages = drain(stack.queues, stack.queues.events_url)
    assert {m["body"]["object_id"] for m in messages} == task_ids
    assert all(m["group"] == m["body"]["object_id"] for m in messages)

    future = cli("--local", "backfill", "--since", "2999-01-01")
    assert future.code == 0
    assert visible(stack.queues, stack.queues.events_url) == 0


def test_reconcile_enqueues_an_event_no_webhook_delivered(stack: LocalStack, cli: Cli) -> None:
    lead = stack.close.add_lead("Acme", emails=["ops@acme.example"])["id"]
    task = stack.close.create_task(lead_id=lead, text="missed by the webhook")
    [missed] = [e for e in stack.close.events if e["object_id"] == task["id"]]

    result = cli("--local", "reconcile", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["events_enqueued"] == 1
    assert [m["body"]["id"] for m in drain(stack.queues, stack.queues.events_url)] == [missed["id"]]

    status = json.loads(cli("--local", "status", "--json").out)
    assert set(status["checkpoints"]) == {f"{o}:{a}" for o, a in subscribed_pairs({"lead"})}
    last = status["last_reconcile"]["last"]
    assert (last["events_seen"], last["events_already_applied"], last["events_enqueued"]) == (1, 0, 1)
    text = cli("--local", "status").out
    assert "1 events seen, 0 already applied, 1 enqueued" in text


# ---------------------------------------------------------------------------------- dlq
def _dead_letter(stack: LocalStack, event: dict[str, Any], reason: str | None = None) -> None:
    queued = QueuedEvent.from_raw(event)
    attributes = {"reason": {"DataType": "String", "StringValue": reason}} if reason else {}
    stack.queues.client.send_message(
        QueueUrl=stack.queues.dlq_url,
        MessageBody=queued.message_body(),
        MessageGroupId=queued.group_id,
        MessageDeduplicationId=queued.deduplication_id,
        MessageAttributes=attributes,  # type: ignore[arg-type]
    )


def test_dlq_list_peeks_and_redrive_moves_messages_back(stack: LocalStack, cli: Cli) -> None:
    lead = stack.close.add_lead("Acme", emails=["ops@acme.example"])["id"]
    first = stack.close.create_task(lead_id=lead, text="one")
    second = stack.close.create_task(lead_id=lead, text="two")
    stack.close.update_task(first["id"], text="one, edited")
    events = [e for e in stack.close.events if e["object_type"] == "task.lead"]
    assert len(events) == 3
    # The latest event also still sits in the event queue with its usual deduplication id:
    # a redrive that reused it would be dropped by SQS.
    EventQueue(stack.queues.client, stack.queues.events_url).enqueue_many([QueuedEvent.from_raw(events[-1])])
    for event in events:
        _dead_letter(stack, event, reason="ChartMogul kept answering 500" if event is events[0] else None)

    listed = cli("--local", "dlq", "list", "--json")
    assert listed.code == 0, listed.err
    shown = json.loads(listed.out)["messages"]
    assert {m["event_id"] for m in shown} == {e["id"] for e in events}
    assert {m["close_task"] for m in shown} == {first["id"], second["id"]}
    assert [m["reason"] for m in shown if m["event_id"] == events[0]["id"]] == ["ChartMogul kept answering 500"]
    assert visible(stack.queues, stack.queues.dlq_url) == 3  # peeked, not consumed

    text = cli("--local", "dlq", "list")
    assert events[0]["id"] in text.out
    assert "ChartMogul kept answering 500" in text.out

    moved = cli("--local", "dlq", "redrive")
    assert moved.code == 0, moved.err
    assert "moved 3 messages" in moved.out
    assert visible(stack.queues, stack.queues.dlq_url) == 0
    back = drain(stack.queues, stack.queues.events_url)
    assert sorted(m["body"]["id"] for m in back) == sorted([e["id"] for e in events] + [events[-1]["id"]])
    assert all(m["group"] == m["body"]["object_id"] for m in back)


# ---------------------------------------------------------------------------------- replay
class RecordingSink:
    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def applied(self, result: ApplyResult, event_id: str) -> None:
        self.outcomes.append(result.outcome.value)

    def retrying(self, event_id: str, error: Exception, visibility: int) -> None:
        raise AssertionError(f"{event_id} failed: {error}")

    def settling(self, event_id: str, visibility: int) -> None:
        raise AssertionError(f"{event_id} held back for {visibility} s")

    def rejected(self, message_id: str, reason: str) -> None:
        raise AssertionError(f"{message_id} rejected: {reason}")

    def failed(self, event_id: str, error: Exception) -> None:
        raise AssertionError(f"{event_id} failed unexpectedly: {error!r}")


@dataclass(frozen=True)
class QueueRecord:
    body: str
    receipt_handle: str = "handle"
    message_id: str = "message"


@pytest.fixture
def worker(stack: LocalStack, chartmogul_sim: ChartMogulSimulator) -> Iterator[tuple[Worker, RecordingSink]]:
    """The real worker (engine, Powertools idempotency) on the stack's tables."""
    world = make_world(stack.close, chartmogul_sim, stack.tables.client, stack.tables.state)
    settings = world.services.settings.model_copy(
        update={"idempotency_table": stack.tables.idempotency, "queue_url": stack.queues.events_url}
    )
    sink = RecordingSink()
    sync_worker = Worker(
        settings=settings, engine=world.engine, sqs=stack.queues.client, dynamodb=stack.tables.client, sink=sink
    )
    sync_worker.register_lambda_context(lambda_context())
    yield sync_worker, sink
    world.services.close.close()
    world.services.chartmogul.close()


def _idempotency_keys(stack: LocalStack) -> list[str]:
    items = stack.tables.client.scan(TableName=stack.tables.idempotency, ConsistentRead=True)["Items"]
    return [item["id"]["S"] for item in items]


def test_replay_forgets_the_idempotency_record_and_enqueues_the_event(
    stack: LocalStack, cli: Cli, worker: tuple[Worker, RecordingSink]
) -> None:
    sync_worker, sink = worker
    lead = next(iter(stack.close.leads))
    task = stack.close.create_task(lead_id=lead, text="Renewal call", date="2025-03-01")
    event = [e for e in stack.close.events if e["object_id"] == task["id"]][-1]
    sync_worker.process_record(QueueRecord(QueuedEvent.from_raw(event).message_body()), 1)
    assert sink.outcomes == ["created"]
    assert len(_idempotency_keys(stack)) == 1

    result = cli("--local", "replay", event["id"])
    assert result.code == 0, result.err
    assert event["id"] in result.out
    assert "idempotency record was removed" in result.out
    assert _idempotency_keys(stack) == []
    [message] = drain(stack.queues, stack.queues.events_url)
    assert message["body"]["id"] == event["id"]
    assert message["group"] == task["id"]

    # The worker applies the replayed event again (a stored result would say "created").
    sync_worker.process_record(QueueRecord(json.dumps(message["body"])), 1)
    assert sink.outcomes == ["created", "skipped_stale"]


def test_replay_refuses_unknown_and_non_task_events(stack: LocalStack, cli: Cli) -> None:
    stack.close.add_lead("Acme", emails=["ops@acme.example"])
    [lead_created] = stack.close.events

    unknown = cli("--local", "replay", "ev_doesnotexist")
    assert unknown.code == 2
    assert "no event ev_doesnotexist" in unknown.error_line

    lead_event = cli("--local", "replay", lead_created["id"])
    assert lead_event.code == 2
    assert "lead created" in lead_event.error_line
    assert visible(stack.queues, stack.queues.events_url) == 0
