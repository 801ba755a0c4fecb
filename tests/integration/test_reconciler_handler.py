"""The reconciler Lambda handler, invoked with the events/ files against moto server, DynamoDB Local
and the simulators (tests.integration.handler_harness): catch-up from the event log, parked retries,
paused subscriptions, backfill, the run lock.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tasksync.dal.aws import aws_client
from tasksync.dal.checkpoints import RunLock
from tasksync.dal.links import LinkState
from tasksync.dal.subscriptions import SubscriptionDirectory
from tasksync_dev.cli.signature_secret import SignatureKeySecret
from tests.integration.handler_harness import F1_LEAD, F1_USER, Stack, deliver_webhook, stack
from tests.support.handlers import lambda_context, load_event, load_handler

__all__ = ["stack"]  # the fixture


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
    stack.run_worker(load_handler("worker"), deliver_webhook(stack, task["id"]))
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
