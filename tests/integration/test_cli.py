"""The operator CLI, command by command, against real parts.

The target is a local stack state file (the layout `tasksync_dev.local.state` writes) pointing at
the moto server (SQS, Secrets Manager), DynamoDB Local and the Close simulator; one test reads
a deployed-style target from CloudFormation outputs in moto. `main()` runs in-process and we
read what it printed.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tasksync.dal.links import LinkState, TaskLink, TaskLinkStore
from tasksync.dal.queue import EventQueue
from tasksync.dal.state_cache import StateCache
from tasksync.logic.results import ApplyResult
from tasksync.models.queue import QueuedEvent
from tasksync.reconciler import subscribed_pairs
from tasksync.worker import Worker
from tasksync_dev.cli import main
from tasksync_dev.local.state import write_state
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.integration.engine_harness import make_world
from tests.support.aws import Queues, Secrets
from tests.support.dynamodb import StateTables
from tests.support.handlers import lambda_context

RECEIVER_URL = "http://127.0.0.1:9/webhooks/close"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"expected one error line, got: {self.err!r}"
        return lines[0]


@dataclass
class LocalStack:
    path: Path
    queues: Queues
    tables: StateTables
    secrets: Secrets
    arns: dict[str, str]
    close: CloseSimulator

    @property
    def signature_keys(self) -> dict[str, str]:
        value = self.secrets.client.get_secret_value(SecretId=self.arns["SignatureKeysSecret"])["SecretString"]
        keys: dict[str, str] = json.loads(value)
        return keys

    def links(self) -> TaskLinkStore:
        return TaskLinkStore(self.tables.client, self.tables.state)


Cli = Callable[..., Outcome]


@pytest.fixture
def stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    queues: Queues,
    secrets: Secrets,
    state_tables: StateTables,
    close_sim: CloseSimulator,
    dynamodb_local: str,
    moto_server: str,
) -> LocalStack:
    """A local stack state file in a fresh TASKSYNC_LOCAL_DIR, as `make run` would write it."""
    arns = secrets.from_template({})
    state = {
        "version": 1,
        "pid": os.getpid(),
        "mode": "sandbox",
        "region": "us-east-1",
        "receiver_url": RECEIVER_URL,
        "endpoints": {"dynamodb": dynamodb_local, "sqs": moto_server, "secretsmanager": moto_server},
        "tables": state_tables.names,
        "queues": queues.urls,
        "secrets": arns,
        "close": {"api_url": f"{close_sim.url}/api/v1", "api_key": close_sim.api_key, "simulator_url": close_sim.url},
        "chartmogul": {"api_url": "http://127.0.0.1:9/v1", "api_key": None, "simulator_url": None},
        "environment": {"TASK_TYPES": "lead"},
    }
    local_dir = tmp_path / "local-stack"
    write_state(local_dir / "stack.json", state)
    monkeypatch.setenv("TASKSYNC_LOCAL_DIR", str(local_dir))
    for name in ("CLOSE_API_KEY", "CLOSE_API_URL", "TASK_TYPES"):
        monkeypatch.delenv(name, raising=False)
    return LocalStack(local_dir / "stack.json", queues, state_tables, secrets, arns, close_sim)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> Outcome:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Outcome(code, captured.out, captured.err)

    return run


def drain(queues: Queues, url: str) -> list[dict[str, Any]]:
    """Receive and delete every message (short polls until one comes back empty)."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = queues.client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            queues.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            messages.append({"body": json.loads(message["Body"]), "group": message["Attributes"]["MessageGroupId"]})


def visible(queues: Queues, url: str) -> int:
    attributes = queues.client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


# ---------------------------------------------------------------------------------- webhook
def test_webhook_register_stores_the_key_and_prints_only_the_id(stack: LocalStack, cli: Cli) -> None:
    stack.secrets.client.put_secret_value(
        SecretId=stack.arns["SignatureKeysSecret"], SecretString=json.dumps({"whsub_older": "ab" * 32})
    )
    result = cli("webhook", "register", "--url", RECEIVER_URL, "--local")
    assert result.code == 0, result.err
    subscription_id = result.out.strip()
    subscription = stack.close.subscriptions[subscription_id]
    key = subscription["signature_key"]
    assert stack.signature_keys == {"whsub_older": "ab" * 32, subscription_id: key}
    assert key not in result.out
    assert key not in result.err
    assert subscription["url"] == RECEIVER_URL
    wanted = set(subscribed_pairs({"lead"}))
    assert {(e["object_type"], e["action"]) for e in subscription["events"]} == wanted


def test_webhook_register_defaults_to_the_receiver_url_and_explains_a_duplicate(stack: LocalStack, cli: Cli) -> None:
    first = cli("--local", "webhook", "register")
    assert first.code == 0, first.err
    subscription_id = first.out.strip()
    assert stack.close.subscriptions[subscription_id]["url"] == RECEIVER_URL

    again = cli("--local", "webhook", "register")
    assert again.code == 2
    assert "already has an active subscription" in again.error_line
    assert subscription_id in again.error_line
    assert list(stack.signature_keys) == [subscription_id]


def test_webhook_register_takes_the_subscription_back_when_the_key_cannot_be_stored(
    stack: LocalStack, cli: Cli
) -> None:
    stack.secrets.client.put_secret_value(SecretId=stack.arns["SignatureKeysSecret"], SecretString="not a JSON map")
    result = cli("--local", "webhook", "register")
    assert result.code == 1
    assert "the subscription was deleted again" in result.error_line
    assert "not a JSON object" in result.error_line
    assert stack.close.subscriptions == {}


def test_webhook_status_pause_resume_delete(stack: LocalStack, cli: Cli) -> None:
    subscription_id = cli("--local", "webhook", "register").out.strip()

    status = cli("--local", "webhook", "status", "--json")
    assert status.code == 0, status.err
    [row] = json.loads(status.out)
    assert row["id"] == subscription_id
    assert row["status"] == "active"
    assert row["key_stored"] is True
    assert stack.close.subscriptions[subscription_id]["signature_key"] not in status.out

    assert cli("--local", "webhook", "pause").code == 0
    assert stack.close.subscriptions[subscription_id]["status"] == "paused"
    text = cli("--local", "webhook", "status")
    assert subscription_id in text.out
    assert "paused" in text.out
    assert "api" in text.out  # the pause reason Close gives to a pause through the API

    assert cli("--local", "webhook", "resume").code == 0
    assert stack.close.subscriptions[subscription_id]["status"] == "active"

    deleted = cli("--local", "webhook", "delete")
    assert deleted.code == 0, deleted.err
    assert subscription_id not in stack.close.subscriptions
    assert stack.signature_keys == {}


def test_webhook_commands_need_an_id_when_there_are_several(stack: LocalStack, cli: Cli) -> None:
    first = cli("--local", "webhook", "register", "--url", RECEIVER_URL).out.strip()
    second = cli("--local", "webhook", "register", "--url", "http://127.0.0.1:9/other").out.strip()

    ambiguous = cli("--local", "webhook", "pause")
    assert ambiguous.code == 2
    assert "--id" in ambiguous.error_line

    assert cli("--local", "webhook", "pause", "--id", second).code == 0
    assert stack.close.subscriptions[second]["status"] == "paused"
    assert stack.close.subscriptions[first]["status"] == "active"
    rows = json.loads(cli("--local", "webhook", "status", "--json").out)
    assert {row["id"]: row["status"] for row in rows} == {first: "active", second: "paused"}


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


# ---------------------------------------------------------------------------------- status / parked
def _seed_links(links: TaskLinkStore) -> None:
    for task_id, state, reason, attempts, retry_at in (
        ("task_a", LinkState.ACTIVE, None, 0, None),
        ("task_b", LinkState.ACTIVE, None, 0, None),
        ("task_c", LinkState.PARKED, "no ChartMogul customer", 2, 1_900_000_000.0),
        ("task_d", LinkState.PARKED, "no ChartMogul customer", 1, 1_800_000_000.0),
        ("task_e", LinkState.PARKED, "ChartMogul refused the assignee", 4, 1_850_000_000.0),
        ("task_f", LinkState.DELETED, None, 0, None),
        ("task_g", LinkState.CREATING, None, 0, None),
    ):
        link = TaskLink(
            close_task_id=task_id,
            state=state,
            parked_reason=reason,
            attempts=attempts,
            retry_at=retry_at,
            lead_id="lead_x",
            task_type="lead",
            updated_at=1_700_000_000.0,
        )
        links.save(None, link)


def test_status_counts_links_queues_and_checkpoints(stack: LocalStack, cli: Cli) -> None:
    _seed_links(stack.links())
    for n in range(2):
        stack.queues.client.send_message(
            QueueUrl=stack.queues.dlq_url, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId=f"d{n}"
        )
    stack.queues.client.send_message(
        QueueUrl=stack.queues.events_url, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId="e"
    )

    result = cli("--local", "status", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["tasks"] == {"linked": 2, "parked": 3, "deleted": 1, "creating": 1}
    assert report["parked_reasons"] == {"no ChartMogul customer": 2, "ChartMogul refused the assignee": 1}
    assert report["queue"] == {"waiting": 1, "in_flight": 0}
    assert report["dlq"] == {"waiting": 2, "in_flight": 0}
    assert report["checkpoints"] == {}

    text = cli("--local", "status")
    assert text.code == 0
    assert "2 linked, 3 parked, 1 deleted, 1 creating" in text.out
    assert "dead-letter queue: 2 waiting" in text.out


def test_status_lists_refused_assignees(stack: LocalStack, cli: Cli) -> None:
    StateCache(stack.tables.client, stack.tables.state).note_assignee_refusal("Rep@Sales.Example", "HTTP 422", 600)
    report = json.loads(cli("--local", "status", "--json").out)
    assert report["refused_assignees"] == {"rep@sales.example": "HTTP 422"}
    assert "refused assignee rep@sales.example" in cli("--local", "status").out


def test_parked_lists_reason_attempts_and_next_retry(stack: LocalStack, cli: Cli) -> None:
    _seed_links(stack.links())
    result = cli("--local", "parked", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [(r["close_task_id"], r["attempts"]) for r in rows] == [("task_d", 1), ("task_e", 4), ("task_c", 2)]
    assert rows[0]["reason"] == "no ChartMogul customer"
    assert rows[0]["next_retry"] == "2027-01-15T08:00:00+00:00"

    text = cli("--local", "parked")
    assert "task_e" in text.out
    assert "ChartMogul refused the assignee" in text.out
    assert "3 parked" in text.out


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


# ---------------------------------------------------------------------------------- deployed stack
def test_a_deployed_stack_is_found_by_its_cloudformation_outputs(
    stack: LocalStack,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    moto_server: str,
    dynamodb_local: str,
    close_sim: CloseSimulator,
) -> None:
    close_key_arn = stack.secrets.put("close-api-key", close_sim.api_key)
    outputs = {
        "StateTableName": stack.tables.state,
        "IdempotencyTableName": stack.tables.idempotency,
        "EventQueueUrl": stack.queues.events_url,
        "EventDLQUrl": stack.queues.dlq_url,
        "SignatureKeysSecretArn": stack.arns["SignatureKeysSecret"],
        "CloseApiKeySecretArn": close_key_arn,
        "WebhookUrl": "http://127.0.0.1:9/deployed/webhooks/close",
    }
    name = f"tasksync-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Anchor": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-anchor"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = boto3.client("cloudformation", endpoint_url=moto_server, region_name="us-east-1")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    monkeypatch.delenv("TASKSYNC_LOCAL_DIR")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local)
    monkeypatch.setenv("CLOSE_API_URL", f"{close_sim.url}/api/v1")
    try:
        _seed_links(stack.links())
        status = cli("status", "--stack", name, "--json")
        assert status.code == 0, status.err
        assert json.loads(status.out)["tasks"]["parked"] == 3

        registered = cli("--stack", name, "webhook", "register")
        assert registered.code == 0, registered.err
        subscription_id = registered.out.strip()
        assert stack.close.subscriptions[subscription_id]["url"] == outputs["WebhookUrl"]
        assert list(stack.signature_keys) == [subscription_id]

        missing = cli("--stack", "no-such-stack", "status")
        assert missing.code == 2
        assert "no CloudFormation stack no-such-stack" in missing.error_line
    finally:
        cloudformation.delete_stack(StackName=name)


# ---------------------------------------------------------------------------------- bad input
def test_bad_input_exits_2_with_one_clear_line(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    missing_file = cli("--stack-file", str(tmp_path / "nowhere.json"), "status")
    assert missing_file.code == 2
    assert "nowhere.json" in missing_file.error_line

    monkeypatch.setenv("TASKSYNC_LOCAL_DIR", str(tmp_path / "empty"))
    not_running = cli("--local", "status")
    assert not_running.code == 2
    assert "make run" in not_running.error_line

    bad_date = cli("--local", "backfill", "--since", "2024-13-45")
    assert bad_date.code == 2
    assert "'2024-13-45' is not a date" in bad_date.error_line

    no_target = cli("status")
    assert no_target.code == 2
    assert "--stack NAME" in no_target.error_line

    unknown_command = cli("--local", "frobnicate")
    assert unknown_command.code == 2


def test_an_unreachable_local_stack_fails_with_one_line(tmp_path: Path, cli: Cli, stack: LocalStack) -> None:
    state = json.loads(stack.path.read_text())
    state["endpoints"] = dict.fromkeys(state["endpoints"], "http://127.0.0.1:9")
    write_state(stack.path, state)
    result = cli("--local", "status")
    assert result.code == 1
    assert "127.0.0.1:9" in result.error_line
