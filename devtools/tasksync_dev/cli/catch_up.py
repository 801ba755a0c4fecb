"""`tasksync backfill`, `reconcile` and `replay`: put Close events (back) on the event queue.

`reconcile` and `backfill` run the reconciler's own code in this process, against the stack's
table, queue and Close account (the same thing the scheduled Lambda does; running it here shows
progress and needs no Lambda invoke permission). The worker then applies what was enqueued.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterable
from datetime import date

from tasksync.catch_up import Budget
from tasksync.dal.dead_letters import DeadLetterQueue
from tasksync.dal.queue import EventQueue
from tasksync.errors import NotFound
from tasksync.models.queue import EnqueueReport, QueuedEvent
from tasksync.reconciler import DEFAULT_BUDGET_SECONDS, Reconciler, ReconcileReport
from tasksync_dev.cli.idempotency import EventIdempotencyRecords
from tasksync_dev.cli.output import EXIT_FAILED, Progress, UsageError, one_line, print_json
from tasksync_dev.cli.stack import Stack

MAX_FAILURES_SHOWN = 10


class CountedEventQueue(EventQueue):
    """The event queue, counting what it sends on a progress line."""

    def __init__(self, stack: Stack, progress: Progress) -> None:
        super().__init__(stack.sqs, stack.queue_url)
        self.progress = progress

    def enqueue_many(self, events: Iterable[QueuedEvent]) -> EnqueueReport:
        report = super().enqueue_many(events)
        self.progress.add(len(report.sent))
        return report


def _reconciler(stack: Stack, progress: Progress) -> Reconciler:
    return Reconciler(
        settings=stack.settings,
        close=stack.close,
        links=stack.links,
        checkpoints=stack.checkpoints,
        queue=CountedEventQueue(stack, progress),
        poison=DeadLetterQueue(stack.sqs, stack.dlq_url),
        subscriptions=stack.signature_keys_if_any(),
    )


def _print_failures(report: ReconcileReport) -> int:
    for failure in report.failures[:MAX_FAILURES_SHOWN]:
        print(f"  failed: {one_line(failure, 300)}", file=sys.stderr)
    if len(report.failures) > MAX_FAILURES_SHOWN:
        print(f"  … and {len(report.failures) - MAX_FAILURES_SHOWN} more failures", file=sys.stderr)
    return EXIT_FAILED if report.failures else 0


def backfill(stack: Stack, args: argparse.Namespace) -> int:
    since: date = args.since
    progress = Progress("tasks enqueued so far")
    report = _reconciler(stack, progress).backfill(since)
    progress.clear()
    types = ", ".join(sorted(stack.settings.task_types))
    print(f"backfill: {report.backfilled} Close tasks ({types}) updated since {since.isoformat()} enqueued")
    return _print_failures(report)


def reconcile(stack: Stack, args: argparse.Namespace) -> int:
    progress = Progress("events enqueued so far")
    budget = Budget(args.budget or stack.settings.reconcile_budget_seconds or DEFAULT_BUDGET_SECONDS)
    report = _reconciler(stack, progress).run(budget=budget)
    progress.clear()
    if args.json:
        print_json(report.as_dict())
    else:
        print(f"events seen in Close's log: {report.events_seen}")
        print(f"  already applied:          {report.events_already_applied}")
        print(f"events enqueued:            {report.events_enqueued}")
        print(f"parked tasks retried:       {report.parked_retried}")
        for line in report.poisoned:
            print(f"to the DLQ: {one_line(line, 300)}")
        for line in report.deferred:
            print(f"deferred to the next run: {line}")
        for subscription_id in report.paused_subscriptions:
            resumed = " (resumed)" if subscription_id in report.resumed_subscriptions else ""
            print(f"webhook subscription paused: {subscription_id}{resumed}")
        for pair, moment in sorted(report.checkpoints.items()):
            print(f"checkpoint {pair}: {moment}")
    return _print_failures(report)


def replay(stack: Stack, args: argparse.Namespace) -> int:
    event_id: str = args.event_id
    try:
        raw = stack.close.get_event(event_id)
    except NotFound:
        raise UsageError(f"Close has no event {event_id} (its event log keeps 30 days)") from None
    queued = QueuedEvent.from_raw(raw)
    event = queued.event
    if not event.is_relevant:
        raise UsageError(f"event {event_id} is a {event.object_type} {event.action} event: tasksync does not sync it")
    forgotten = EventIdempotencyRecords(stack.dynamodb, stack.settings.idempotency_table).forget(raw)
    # A fresh deduplication id: the event's usual one would be dropped by SQS if the event
    # went through the queue in the last five minutes.
    message_id = stack.sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody=queued.message_body(),
        MessageGroupId=queued.group_id,
        MessageDeduplicationId=f"replay-{uuid.uuid4().hex}",
    )["MessageId"]
    record = "its idempotency record was removed" if forgotten else "it had no idempotency record"
    print(f"replayed {event_id} ({event.object_type} {event.action}, task {event.close_task_id}): {record}")
    print(f"enqueued as message {message_id}")
    return 0
