"""The reconciler's catch-up against the Close simulator, DynamoDB Local and moto's SQS.

What it must do: enqueue only what the worker has not applied, move each pair's checkpoint
slice by slice, and keep going past a bad entry, a Close failure, an oversized event or a
spent budget, while the parked retry and the subscription check still run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tasksync.catch_up import Budget
from tasksync.dal.checkpoints import RunLock
from tasksync.models.link import LinkState
from tasksync.models.queue_message import MAX_MESSAGE_BYTES
from tests.integration.engine_harness import SyncWorld, make_world
from tests.integration.reconciler_harness import Fault, ReconcilerWorld, Ticking, make_reconciler_world, utc


@pytest.fixture
def rw(close_sim: Any, chartmogul_sim: Any, state_tables: Any, queues: Any) -> ReconcilerWorld:
    world = make_world(
        close_sim,
        chartmogul_sim,
        state_tables.client,
        state_tables.state,
        queue_url=queues.events_url,
        dlq_url=queues.dlq_url,
    )
    return make_reconciler_world(world, queues, state_tables.client, state_tables.state)


def new_task(world: SyncWorld, text: str, **extra: Any) -> dict[str, Any]:
    return world.close.create_task(lead_id=world.lead, text=text, assigned_to=world.rep_id, date="2030-01-01", **extra)


def park_one(rw: ReconcilerWorld) -> str:
    """A task parked for want of a customer, its backoff already over."""
    world = rw.world
    lead = world.close.add_lead("Nobody Inc", emails=["nobody@nowhere.example"])["id"]
    task = world.close.create_task(lead_id=lead, text="parked", assigned_to=world.rep_id, date="2030-01-01")
    rw.deliver(world.last_event(task["id"]))
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.PARKED
    world.links.save(link, replace(link, retry_at=1.0))
    return str(task["id"])


def others_ran(rw: ReconcilerWorld, report: Any, asked_before: int) -> None:
    """The parked retry and the subscription check ran in this pass."""
    assert report.parked_retried == 1
    assert rw.subscriptions.asked == asked_before + 1


# ----------------------------------------------------------------------------- skip what is applied
def test_with_nothing_missed_a_pass_enqueues_nothing_and_a_lost_webhook_exactly_once(rw: ReconcilerWorld) -> None:
    world = rw.world
    tasks = [new_task(world, f"follow up {n}") for n in range(12)]
    world.close.update_task(tasks[0]["id"], text="follow up 0, changed")
    world.close.complete_task(tasks[1]["id"])
    world.close.delete_task(tasks[2]["id"])
    lost = new_task(world, "its webhook never came")
    for event in world.close.events:
        if event["object_type"].startswith(("task.", "activity.task_completed")) and event["object_id"] != lost["id"]:
            rw.deliver(event)

    first = rw.run()
    assert first.failures == []
    assert first.events_enqueued == 1
    assert first.events_already_applied == first.events_seen - 1
    assert rw.drain() == 1
    world.assert_mirrors(lost["id"])

    for _ in range(3):
        again = rw.run()
        assert (again.events_enqueued, again.events_already_applied) == (0, again.events_seen)
        assert again.events_seen == first.events_seen  # the overlap re-reads the window
    assert rw.messages() == []
    record = rw.record()
    assert record is not None
    assert record["runs"] == 4
    assert record["totals"]["events_enqueued"] == 1
    assert record["last"]["events_already_applied"] == first.events_seen


def test_an_event_newer_than_the_applied_version_is_enqueued(rw: ReconcilerWorld) -> None:
    world = rw.world
    task = new_task(world, "v1")
    rw.deliver(world.last_event(task["id"]))
    world.close.update_task(task["id"], text="v2")  # the update's webhook is lost
    report = rw.run()
    assert (report.events_enqueued, report.events_already_applied) == (1, 1)
    rw.drain()
    world.assert_mirrors(task["id"])


# ----------------------------------------------------------------------------- isolation
def test_an_invalid_entry_goes_to_the_dlq_with_its_id_and_nothing_else_stops(rw: ReconcilerWorld) -> None:
    world = rw.world
    parked = park_one(rw)
    tasks = [new_task(world, f"call {n}") for n in range(3)]
    bad_id: list[str] = []

    def break_newest(body: dict[str, Any]) -> None:
        bad_id.append(body["data"][0]["id"])
        body["data"][0]["meta"] = None  # what the issue saw: one entry Close sends malformed

    rw.session.faults.append(Fault("task.lead", "created", edit=break_newest))
    asked = rw.subscriptions.asked
    report = rw.run()

    assert report.failures == []
    assert report.events_invalid == report.events_poisoned == 1
    assert report.poisoned[0].startswith(f"event {bad_id[0]}: invalid event-log entry")
    [dead] = rw.messages(rw.dlq_url)
    assert json.loads(dead["Body"])["id"] == bad_id[0]
    assert "meta" in dead["MessageAttributes"]["reason"]["StringValue"]
    assert set(report.checkpoints) == {"task.lead:created", "task.lead:updated", "task.lead:completed",
                                       "task.lead:deleted", "activity.task_completed:created",
                                       "activity.task_completed:deleted"}  # fmt: skip
    others_ran(rw, report, asked)
    rw.drain()
    broken_task = next(e["object_id"] for e in world.close.events if e["id"] == bad_id[0])
    for task in tasks:
        if task["id"] != broken_task:
            world.assert_mirrors(task["id"])
    link = world.links.get(parked)
    assert link is not None
    assert link.attempts == 2  # parked again after its retry: still no customer


def test_a_close_500_on_page_two_stops_only_that_pair_and_the_next_run_finishes(rw: ReconcilerWorld) -> None:
    world = rw.world
    park_one(rw)
    tasks = [new_task(world, f"renewal {n}") for n in range(60)]  # two pages of `created`
    before = rw.close_now() - timedelta(minutes=1)
    rw.checkpoint_all(before)  # the last run was a minute ago
    world.close.update_task(tasks[0]["id"], text="renewal 0, changed")
    rw.session.faults.append(Fault("task.lead", "created", later_pages=True, status=500))
    asked = rw.subscriptions.asked

    report = rw.run()

    [failure] = report.failures
    assert failure.startswith("catch-up task.lead:created: RetryableApiError")
    assert "task.lead:created" not in report.checkpoints
    assert utc(report.checkpoints["task.lead:updated"]) > before
    assert report.events_enqueued == 1  # the update; the created slice was not enqueued
    others_ran(rw, report, asked)
    assert rw.checkpoints.get("task.lead", "created") == before
    rw.drain()

    again = rw.run()
    assert again.failures == []
    # Every created event but the first task's: its update, applied already, carried a newer version.
    assert again.events_enqueued == 59
    rw.drain()
    for task in tasks:
        world.assert_mirrors(task["id"])


def test_a_close_429_is_waited_out_within_the_budget_or_stops_the_pair_cleanly(rw: ReconcilerWorld) -> None:
    world = rw.world
    new_task(world, "rate limited")
    rw.session.faults.append(Fault("task.lead", "created", status=429, headers={"retry-after": "5"}))
    waited = rw.run(Budget(60))
    assert rw.sleeps == [5.0]
    assert (waited.failures, waited.deferred, waited.events_enqueued) == ([], [], 1)
    rw.drain()

    rw.session.faults.append(Fault("task.lead", "updated", status=429, headers={"retry-after": "120"}))
    world.close.update_task(world.close.events[-1]["object_id"], text="later")
    stopped = rw.run(Budget(60))
    assert stopped.failures == []
    [deferred] = stopped.deferred
    assert deferred.startswith("task.lead:updated: Close asked to wait 120")
    assert "task.lead:updated" not in stopped.checkpoints
    assert "task.lead:created" in stopped.checkpoints
    assert rw.run(Budget(60)).events_enqueued == 1  # the next run picks the update up


# ----------------------------------------------------------------------------- poison events
def test_an_event_too_large_for_sqs_is_enqueued_as_a_refetch_and_the_worker_reads_the_task(
    rw: ReconcilerWorld,
) -> None:
    world = rw.world
    park_one(rw)
    big = new_task(world, "a task with a huge note", notes="x" * (MAX_MESSAGE_BYTES + 1024))
    small = new_task(world, "a normal one")
    asked = rw.subscriptions.asked
    report = rw.run()
    assert report.failures == []
    assert (report.events_enqueued, report.events_refetched, report.events_poisoned) == (2, 1, 0)
    assert len(report.checkpoints) == 6  # every pair moved, the one with the big event too
    others_ran(rw, report, asked)
    world.reset_calls()
    assert rw.drain() == 3  # the two events and the parked retry
    assert len(world.close.calls_to("GET", f"/task/{big['id']}/$")) == 1  # refetched from Close
    world.assert_mirrors(big["id"])
    world.assert_mirrors(small["id"])
    assert rw.run().events_enqueued == 0


# ----------------------------------------------------------------------------- bounded progress
def test_a_two_day_backlog_finishes_over_several_short_runs_with_nothing_lost(rw: ReconcilerWorld) -> None:
    world = rw.world
    rw.checkpoint_all(rw.close_now())  # the last run before a two-day outage
    tasks = []
    for hour in range(48):
        world.close.advance_clock(3600)
        tasks.append(new_task(world, f"backlog {hour}"))
        if hour % 6 == 0:
            world.close.update_task(tasks[-1]["id"], text=f"backlog {hour}, changed")
    world.close.advance_clock(60)
    park_one(rw)

    runs = []
    for _ in range(30):
        asked = rw.subscriptions.asked
        link = world.links.get(next(link.close_task_id for link in world.links.scan_links()
                                    if link.state is LinkState.PARKED))  # fmt: skip
        assert link is not None
        world.links.save(link, replace(link, retry_at=1.0))
        # Eight checks of the budget per run: a few slices, then the run stops by itself.
        report = rw.run(Budget(4, clock=Ticking(0.5)))
        runs.append(report)
        others_ran(rw, report, asked)
        assert report.failures == []
        rw.drain()
        if report.caught_up:
            break
    assert len(runs) >= 3
    assert runs[-1].caught_up
    assert all(report.deferred for report in runs[:-1])
    assert sum(r.events_enqueued for r in runs) - sum(r.parked_retried for r in runs) >= 48
    for task in tasks:
        world.assert_mirrors(task["id"])


# ----------------------------------------------------------------------------- parked retries, the lock
def test_a_queued_parked_retry_is_not_queued_again_by_the_next_pass(rw: ReconcilerWorld) -> None:
    task_id = park_one(rw)
    first = rw.run()  # the worker is behind: the retry stays in the queue
    second = rw.run()

    assert (first.parked_retried, second.parked_retried) == (1, 0)
    link = rw.world.links.get(task_id)
    assert link is not None
    assert link.retry_at is not None
    assert link.retry_at > rw.close_now().timestamp()
    assert link.attempts == 1  # not parked again meanwhile: the backoff has not doubled


class BrokenLock(RunLock):
    """A run lock whose table refuses the write: on acquire, or on release."""

    def __init__(self, *, on: str) -> None:
        self.on = on
        self.released = 0

    def acquire(self, owner: str, seconds: float) -> bool:
        if self.on == "acquire":
            raise RuntimeError("lock table unavailable")
        return True

    def release(self, owner: str) -> None:
        self.released += 1
        if self.on == "release":
            raise RuntimeError("lock table unavailable")


@pytest.mark.parametrize("on", ["acquire", "release"])
def test_a_failing_run_lock_is_reported_and_the_pass_still_runs(rw: ReconcilerWorld, on: str) -> None:
    park_one(rw)
    asked = rw.subscriptions.asked
    lock = BrokenLock(on=on)

    report = rw.reconciler.run(lock=lock, budget=Budget(60))

    others_ran(rw, report, asked)
    assert any(f.startswith("run lock") and "lock table unavailable" in f for f in report.failures)
    assert lock.released == (1 if on == "release" else 0)  # no release of a lock never taken
    assert rw.record() is not None  # the run was recorded
