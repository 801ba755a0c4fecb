"""The three Lambda handlers, invoked with the events/ files against moto server (SQS, Secrets
Manager), DynamoDB Local and the simulators. Resource names and schemas come from template.yaml.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters

from tasksync.dal.aws import aws_client, forget_clients
from tasksync.dal.checkpoints import RunLock
from tasksync.dal.links import LinkState, TaskLink, TaskLinkStore
from tasksync.dal.subscriptions import SubscriptionDirectory
from tasksync.logic.signature import sign
from tasksync_dev.cli.signature_secret import SignatureKeySecret
from tasksync_dev.local.sqs_source import invoke_batch
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.support.handlers import lambda_context, load_event, load_handler, repo_path
from tests.support.template import queue_definitions

EVENTS_SUBSCRIPTION = "whsub_1vT2aEze4uUzQlqLIBExYl"  # events/payloads/close-task-created.json
SANDBOX_SIGNATURE_KEY = "4163f715a56509cf31c5fb4e5ea975c2dc88e6d61ad41c28eab5b9b12c83d548"  # events/README.md
F1_LEAD = "lead_mtonPqjLkC0X93AW6evKVa1Sbpq7l8opyuaV5olT2Cf"
F1_USER = "user_8HHUh3SH67YzD8IMakjKoJ9SWputzlUdaihCG95g7as"
F1_TASK = "task_CIRBr39mOsTfWAc3ErihkSt4cX0PlVBpTovHGNj939w"
REP = "barbara@sales.example"


@dataclass
class Stack:
    close: CloseSimulator
    chartmogul: ChartMogulSimulator
    sqs: Any
    queue_url: str
    dlq_url: str
    links: TaskLinkStore
    customer: str
    secret_arns: dict[str, str]

    def receive(self, url: str | None = None, visibility: int | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "QueueUrl": url or self.queue_url,
            "MaxNumberOfMessages": 10,
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if visibility is not None:
            kwargs["VisibilityTimeout"] = visibility
        return list(self.sqs.receive_message(**kwargs).get("Messages", []))

    def depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def queue_arn(self) -> str:
        return str(
            self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        )

    def run_worker(self, worker: ModuleType, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """What Lambda's poller does: invoke, then delete the records that did not fail."""
        response: dict[str, Any] = invoke_batch(
            sqs=self.sqs,
            queue_url=self.queue_url,
            queue_arn=self.queue_arn(),
            region="us-east-1",
            messages=messages,
            invoke=lambda event: worker.lambda_handler(event, lambda_context()),
        )
        return response


def sample_subscriptions() -> set[str]:
    """The subscription ids the events/ webhook files were delivered for (real ids, events/payloads/)."""
    found = {EVENTS_SUBSCRIPTION}
    for path in repo_path("events").glob("webhook-*.json"):
        event = json.loads(path.read_text())
        try:
            found.add(json.loads(event["body"])["subscription_id"])
        except (ValueError, KeyError):
            continue
    return found


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch,
    dynamodb_local: str,
    moto_server: str,
    state_tables: Any,
    queues: Any,
    secrets: Any,
    close_sim: CloseSimulator,
    chartmogul_sim: ChartMogulSimulator,
) -> Iterator[Stack]:
    arns = secrets.from_template(
        {
            "CloseApiKeySecret": close_sim.api_key,
            "ChartMogulApiKeySecret": chartmogul_sim.api_key,
            "SignatureKeysSecret": json.dumps(dict.fromkeys(sample_subscriptions(), SANDBOX_SIGNATURE_KEY)),
        }
    )
    environment = {
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local,
        "AWS_ENDPOINT_URL_SQS": moto_server,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_server,  # boto3 names it by service id
        "STATE_TABLE": state_tables.state,
        "IDEMPOTENCY_TABLE": state_tables.idempotency,
        "QUEUE_URL": queues.events_url,
        "DLQ_URL": queues.dlq_url,
        "CLOSE_API_URL": f"{close_sim.url}/api/v1",
        "CHARTMOGUL_API_URL": f"{chartmogul_sim.url}/v1",
        "CLOSE_API_KEY_SECRET_ARN": arns["CloseApiKeySecret"],
        "CHARTMOGUL_API_KEY_SECRET_ARN": arns["ChartMogulApiKeySecret"],
        "SIGNATURE_KEYS_SECRET_ARN": arns["SignatureKeysSecret"],
        "ASSIGNEE_MAP": json.dumps({REP: REP}),
        "DEFAULT_ASSIGNEE": REP,
        "RETRY_BASE_SECONDS": "30",
        "RETRY_MAX_SECONDS": "600",
        "POWERTOOLS_SERVICE_NAME": "tasksync",
        "POWERTOOLS_METRICS_NAMESPACE": "TaskSyncTest",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLOSE_WEBHOOK_SIGNATURE_KEY", raising=False)
    parameters.clear_caches()
    forget_clients()
    close_sim.add_user(REP, user_id=F1_USER)
    close_sim.add_lead("Test Instantly", emails=["ops@instantly.example"], lead_id=F1_LEAD)
    chartmogul_sim.add_user(REP)
    customer = chartmogul_sim.add_customer(name="Instantly", email="ops@instantly.example")["uuid"]
    yield Stack(
        close=close_sim,
        chartmogul=chartmogul_sim,
        sqs=queues.client,
        queue_url=queues.events_url,
        dlq_url=queues.dlq_url,
        links=TaskLinkStore(state_tables.client, state_tables.state),
        customer=customer,
        secret_arns=arns,
    )
    parameters.clear_caches()
    forget_clients()


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


# ---------------------------------------------------------------------------------- worker
def enqueue_webhook(stack: Stack, event_file: str = "webhook-task-created.json") -> None:
    response = load_handler("receiver").lambda_handler(load_event(event_file), lambda_context())
    assert response["statusCode"] == 202


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
        body, headers = _signed(stack, task["id"])
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


def _signed(stack: Stack, task_id: str) -> tuple[bytes, dict[str, str]]:
    """The latest event of the task as Close would deliver it, signed with the sandbox key."""
    event = next(e for e in reversed(stack.close.events) if e["object_id"] == task_id)
    body = json.dumps({"subscription_id": EVENTS_SUBSCRIPTION, "event": event}).encode()
    timestamp = str(int(time.time()))
    headers = {
        "close-sig-timestamp": timestamp,
        "close-sig-hash": sign(SANDBOX_SIGNATURE_KEY, timestamp, body),
        "content-type": "application/json",
    }
    return body, headers


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


# ---------------------------------------------------------------------------------- reconciler
def test_reconciler_recovers_an_event_whose_webhook_never_arrived(stack: Stack) -> None:
    task = stack.close.create_task(lead_id=F1_LEAD, text="never delivered", assigned_to=F1_USER, date="2025-03-01")
    report = load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), lambda_context())
    assert report["events_enqueued"] >= 1
    stack.run_worker(load_handler("worker"), stack.receive())
    [mirrored] = stack.chartmogul.live_tasks()
    assert mirrored["task_details"] == "never delivered"
    link = stack.links.get(task["id"])
    assert link is not None
    assert link.cm_task_uuid == mirrored["task_uuid"]
    # A second pass finds the same event again, sees it applied, and enqueues nothing.
    again = load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), lambda_context())
    assert (again["events_enqueued"], again["events_already_applied"]) == (0, again["events_seen"])
    assert again["events_seen"] >= 1
    assert stack.depth(stack.queue_url) == 0


def test_a_reconcile_pass_emits_its_counts_and_checkpoint_age(
    stack: Stack, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    stack.close.create_task(lead_id=F1_LEAD, text="counted", assigned_to=F1_USER, date="2025-03-01")
    capsys.readouterr()
    load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), lambda_context())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [emf] = [line for line in lines if "ReconcileEventsSeen" in line]  # (cold start has its own line)
    assert (emf["ReconcileEventsSeen"], emf["ReconcileEventsAlreadyApplied"], emf["ReconcileEventsEnqueued"]) == (
        [1.0],
        [0.0],
        [1.0],
    )
    assert 0 <= emf["ReconcileCheckpointAge"][0] < 30  # the pass just completed: a fresh checkpoint
    # The log line (its stream is whichever stdout Powertools' logger was first given: read the record).
    [finished] = [record for record in caplog.records if record.getMessage().startswith("reconcile pass: ")]
    counts = tuple(getattr(finished, name) for name in ("events_seen", "events_already_applied", "events_enqueued"))
    assert counts == (1, 0, 1)


def test_parked_task_is_retried_and_synced_once_its_customer_appears(stack: Stack) -> None:
    lead = stack.close.add_lead("Initech", emails=["cto@initech.example"])["id"]
    task = stack.close.create_task(lead_id=lead, text="for a new customer", assigned_to=F1_USER, date="2025-03-01")
    stack.run_worker(load_handler("worker"), _deliver(stack, task["id"]))
    link = stack.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.PARKED
    stack.chartmogul.add_customer(name="Initech", email="cto@initech.example")
    # Its backoff has elapsed (written as elapsed, rather than waiting for it).
    stack.links.save(link, replace(link, retry_at=1.0))
    report = load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), lambda_context())
    assert report["parked_retried"] == 1
    stack.run_worker(
        load_handler("worker"), [m for m in stack.receive() if m["Attributes"]["MessageGroupId"] == task["id"]]
    )
    link = stack.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.ACTIVE
    assert [t["task_details"] for t in stack.chartmogul.live_tasks()] == ["for a new customer"]


def _deliver(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    body, headers = _signed(stack, task_id)
    event = {
        **load_event("webhook-task-created.json"),
        "body": body.decode(),
        "headers": headers,
        "isBase64Encoded": False,
    }
    assert load_handler("receiver").lambda_handler(event, lambda_context())["statusCode"] == 202
    return [m for m in stack.receive() if m["Attributes"]["MessageGroupId"] == task_id]


@pytest.mark.parametrize("auto_resume", [False, True])
def test_reconciler_detects_a_paused_subscription(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, auto_resume: bool
) -> None:
    subscription = stack.close.create_subscription(
        "https://example.invalid/webhooks/close", [{"object_type": "task.lead", "action": "created"}]
    )
    # What `tasksync webhook register` stores: the key in the secret, the id alone in the StateTable.
    SignatureKeySecret(
        aws_client("secretsmanager"),
        stack.secret_arns["SignatureKeysSecret"],
        SubscriptionDirectory(aws_client("dynamodb"), stack.links.table_name),
    ).add(subscription["id"], subscription["signature_key"])
    stack.close.pause_subscription(subscription["id"])
    monkeypatch.setenv("AUTO_RESUME_WEBHOOK", "true" if auto_resume else "false")
    report = load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), lambda_context())
    assert report["paused_subscriptions"] == [subscription["id"]]
    assert report["resumed_subscriptions"] == ([subscription["id"]] if auto_resume else [])
    assert stack.close.subscriptions[subscription["id"]]["status"] == ("active" if auto_resume else "paused")


def test_reconciler_backfill_enqueues_every_task_since_a_date(stack: Stack) -> None:
    for n in range(3):
        stack.close.create_task(lead_id=F1_LEAD, text=f"old task {n}", assigned_to=F1_USER, date="2025-03-01")
    report = load_handler("reconciler").lambda_handler(load_event("reconcile-backfill.json"), lambda_context())
    assert report["backfilled"] == 3
    assert stack.depth(stack.queue_url) == 3


def test_a_reconcile_pass_skips_itself_while_another_holds_the_lock(stack: Stack) -> None:
    lock = RunLock(aws_client("dynamodb"), stack.links.table_name, "reconcile")
    assert lock.acquire("a long run", 300)
    stack.close.create_task(lead_id=F1_LEAD, text="waits for the next pass", assigned_to=F1_USER, date="2025-03-01")
    report = load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), lambda_context())
    assert report["skipped"]
    assert stack.depth(stack.queue_url) == 0
    lock.release("a long run")
    report = load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), lambda_context())
    assert report["skipped"] is None
    assert report["events_enqueued"] >= 1
