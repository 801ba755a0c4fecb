"""Reconciler: what a pass enqueues, what it reads from DynamoDB, and how long it takes.

1,000 Close log events (500 tasks created, each then edited) are all delivered to the engine,
as webhooks would be. A pass over them must enqueue nothing (timed, three times: the median
is reported). Then 1,000 more, of which 5% of the webhooks are lost (each lost one is its task's
latest event, so that every loss is a real one): the pass must enqueue exactly those.

The Close simulator and DynamoDB Local are real; the queue is an in-memory list (this measures
the reconciler, not SQS). Read units are what DynamoDB Local reports for the BatchGetItem calls
(ReturnConsumedCapacity), per log event seen.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from typing import Any

from tasksync.catch_up import Budget
from tasksync.config import ReconcilerSettings
from tasksync.dal.checkpoints import CheckpointStore
from tasksync.models.queue import EnqueueReport, QueuedEvent
from tasksync.reconciler import Reconciler, ReconcileReport
from tests.bench.report import BenchResult, Measurement, markdown_table, ms
from tests.bench.world import backends
from tests.integration.engine_harness import SyncWorld, make_world

SECTION = "Reconciler"


class ListQueue:
    """The event queue as a list: every enqueue succeeds and is kept."""

    def __init__(self) -> None:
        self.events: list[QueuedEvent] = []

    def enqueue_many(self, events: Iterable[QueuedEvent]) -> EnqueueReport:
        batch = list(events)
        self.events += batch
        return EnqueueReport(sent=[(queued.event.id, f"m{len(self.events)}") for queued in batch])


def _events(world: SyncWorld, tasks: int, label: str) -> list[dict[str, Any]]:
    """``tasks`` tasks created and then edited in Close: 2 x ``tasks`` log events, oldest first."""
    created = [
        world.close.create_task(lead_id=world.lead, text=f"{label} {n}", assigned_to=world.rep_id, date="2030-01-01")
        for n in range(tasks)
    ]
    for task in created:
        world.close.update_task(task["id"], text=f"{task['text']} (edited)")
    return world.close.events[-2 * tasks :]


def _pass(reconciler: Reconciler) -> tuple[ReconcileReport, float]:
    started = time.perf_counter()
    report = reconciler.run(budget=Budget(600))
    return report, time.perf_counter() - started


def run(endpoint: str, *, events: int = 1000, missed_share: float = 0.05) -> BenchResult:
    with backends(endpoint) as parts:
        world = make_world(parts.close, parts.chartmogul, parts.dynamodb, parts.state_table)
        queue = ListQueue()
        settings = world.services.settings
        assert isinstance(settings, ReconcilerSettings)  # the harness builds SyncSettings: both at once
        reconciler = Reconciler(
            settings=settings,
            close=world.services.close,
            links=world.links,
            checkpoints=CheckpointStore(parts.dynamodb, parts.state_table),
            queue=queue,
        )
        tasks = events // 2
        for event in _events(world, tasks, "delivered"):
            world.apply_until_done(event)

        quiet = [_pass(reconciler) for _ in range(3)]
        seconds = statistics.median(elapsed for _, elapsed in quiet)
        report = quiet[0][0]
        enqueued_quiet = max(r.events_enqueued for r, _ in quiet)
        units_per_event = report.read_units / report.events_seen if report.events_seen else 0.0

        second = _events(world, tasks, "lossy")
        lost_count = round(events * missed_share)
        edits = second[tasks:]  # each task's latest event
        lost = {event["id"] for event in edits[:: max(1, len(edits) // lost_count)][:lost_count]}
        for event in second:
            if event["id"] not in lost:
                world.apply_until_done(event)
        queue.events.clear()
        lossy, lossy_seconds = _pass(reconciler)
        enqueued_ids = {queued.event.id for queued in queue.events}

    rows = [
        Measurement(
            SECTION,
            f"events enqueued per pass, nothing missed ({report.events_seen} seen)",
            str(enqueued_quiet),
            goal="0",
            met=enqueued_quiet == 0,
        ),
        Measurement(
            SECTION,
            f"events enqueued per pass, {missed_share:.0%} of webhooks missed ({lossy.events_seen} seen)",
            str(lossy.events_enqueued),
            goal=f"{len(lost)} (= missed)",
            met=enqueued_ids == lost,
        ),
        Measurement(SECTION, "DynamoDB read units per log event seen", f"{units_per_event:.3f}"),
        Measurement(SECTION, f"one pass over {report.events_seen} log events (median of 3)", ms(seconds)),
    ]
    details = (
        "Every log event is delivered to the engine first (webhooks that arrived); a pass then reads the"
        " whole window from the Close simulator over HTTP, one BatchGetItem per 50-event page against"
        " DynamoDB Local, and enqueues only what the worker has not applied.\n\n"
        + markdown_table(
            ["pass", "log events seen", "already applied", "enqueued", "slices", "read units", "time"],
            [
                [
                    f"nothing missed #{n + 1}",
                    str(r.events_seen),
                    str(r.events_already_applied),
                    str(r.events_enqueued),
                    str(r.slices),
                    f"{r.read_units:.1f}",
                    ms(t),
                ]
                for n, (r, t) in enumerate(quiet)
            ]
            + [
                [
                    f"{missed_share:.0%} missed",
                    str(lossy.events_seen),
                    str(lossy.events_already_applied),
                    str(lossy.events_enqueued),
                    str(lossy.slices),
                    f"{lossy.read_units:.1f}",
                    ms(lossy_seconds),
                ]
            ],
        )
    )
    return BenchResult(
        rows=rows,
        details=details,
        figures={"reconcile_pass_seconds": seconds, "reconcile_read_units_per_event": units_per_event},
    )


if __name__ == "__main__":
    from tests.bench.report import plain_table
    from tests.bench.world import dynamodb_local

    with dynamodb_local() as dynamodb_endpoint:
        result = run(dynamodb_endpoint)
    print(plain_table(result.rows))
    print(result.details)
