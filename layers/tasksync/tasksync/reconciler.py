"""The reconciler: the safety net under the webhooks.

Webhooks get lost (a receiver outage, a paused subscription, a signature window missed), so on
a schedule we read Close's event log and enqueue every task event again: the queue's dedup and
the worker's idempotency make a repeat free, and a missed one is now delivered. We also re-drive
parked tasks whose backoff has elapsed, watch the webhook subscription, and run backfills.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from tasksync.config import SyncSettings
from tasksync.dal.checkpoints import CheckpointStore, RunLock
from tasksync.dal.links import TaskLinkStore
from tasksync.dal.queue import EnqueueReport, EventQueue, QueuedEvent
from tasksync.errors import ApiError, InvalidInput, NotFound
from tasksync.logic.ports import CloseApi
from tasksync.models.close import (
    TASK_COMPLETED_ACTIVITY,
    refetch_event,
    task_snapshot_event,
)

# Close: "To avoid missing recent events when paginating, we recommend to scan the latest five
# minutes of events." Every scan starts this long before the stored checkpoint.
OVERLAP = timedelta(minutes=5)
# With no checkpoint yet (first run), look this far back.
FIRST_SCAN = timedelta(hours=1)
TASK_ACTIONS = ("created", "updated", "completed", "deleted")


def subscribed_pairs(task_types: Iterable[str]) -> list[tuple[str, str]]:
    """The (object_type, action) pairs the webhook subscribes to and the reconciler replays."""
    pairs = [(f"task.{task_type}", action) for task_type in sorted(task_types) for action in TASK_ACTIONS]
    pairs += [(TASK_COMPLETED_ACTIVITY, "created"), (TASK_COMPLETED_ACTIVITY, "deleted")]
    return pairs


class SubscriptionIds(Protocol):
    def subscription_ids(self) -> list[str]: ...


@dataclass
class ReconcileReport:
    events_seen: int = 0
    events_enqueued: int = 0
    parked_retried: int = 0
    backfilled: int = 0
    paused_subscriptions: list[str] = field(default_factory=list)
    resumed_subscriptions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_seen": self.events_seen,
            "events_enqueued": self.events_enqueued,
            "parked_retried": self.parked_retried,
            "backfilled": self.backfilled,
            "paused_subscriptions": self.paused_subscriptions,
            "resumed_subscriptions": self.resumed_subscriptions,
            "failures": self.failures[:20],
            "checkpoints": self.checkpoints,
            "skipped": self.skipped,
        }


class Reconciler:
    def __init__(
        self,
        *,
        settings: SyncSettings,
        close: CloseApi,
        links: TaskLinkStore,
        checkpoints: CheckpointStore,
        queue: EventQueue,
        subscriptions: SubscriptionIds | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.close = close
        self.links = links
        self.checkpoints = checkpoints
        self.queue = queue
        self.subscriptions = subscriptions
        self.clock = clock

    def run(self, lock: RunLock | None = None, lock_seconds: float = 300.0) -> ReconcileReport:
        """One scheduled pass: catch up, retry parked tasks, check the subscription.

        With a ``lock``, a pass that finds another one still running skips itself.
        """
        report = ReconcileReport()
        owner = uuid.uuid4().hex
        if lock is not None and not lock.acquire(owner, lock_seconds):
            report.skipped = "another reconciler run is in progress"
            return report
        try:
            self.catch_up(report)
            self.retry_parked(report)
            self.check_subscriptions(report)
        finally:
            if lock is not None:
                lock.release(owner)
        return report

    # ------------------------------------------------------------------ catch-up
    def catch_up(self, report: ReconcileReport) -> None:
        for object_type, action in subscribed_pairs(self.settings.task_types):
            started = datetime.fromtimestamp(self.clock(), UTC)
            checkpoint = self.checkpoints.get(object_type, action)
            since = (checkpoint - OVERLAP) if checkpoint else started - FIRST_SCAN
            events = list(self._events(object_type, action, since, report))
            report.events_seen += len(events)
            sent = self._enqueue(events, report)
            if sent.ok:
                # Everything up to the scan's start is now queued; the next scan overlaps it.
                self.checkpoints.advance(object_type, action, started)
                report.checkpoints[f"{object_type}:{action}"] = started.isoformat()

    def _events(self, object_type: str, action: str, since: datetime, report: ReconcileReport) -> Iterator[QueuedEvent]:
        for raw in self.close.iter_events(object_type=object_type, action=action, date_updated_gte=since):
            try:
                yield QueuedEvent.from_raw(raw)
            except InvalidInput as exc:
                report.failures.append(f"event {raw.get('id')}: {exc}")

    def _enqueue(self, events: list[QueuedEvent], report: ReconcileReport) -> EnqueueReport:
        # The log lists newest first; the queue wants each task's versions oldest first.
        sent = self.queue.enqueue_many(reversed(events))
        report.events_enqueued += len(sent.sent)
        report.failures += [f"enqueue {f.event_id}: {f.code} {f.message}" for f in sent.failures]
        return sent

    # ------------------------------------------------------------------ parked tasks
    def retry_parked(self, report: ReconcileReport, limit: int = 500) -> None:
        """Re-drive parked tasks whose backoff has elapsed: the customer may exist by now."""
        now = self.clock()
        moment = datetime.fromtimestamp(now, UTC)
        batch = [
            QueuedEvent.from_raw(
                refetch_event(
                    link.close_task_id,
                    link.task_type or "lead",
                    link.lead_id,
                    moment,
                    reason=f"parked retry {link.attempts}: {link.parked_reason}",
                )
            )
            for link in self.links.parked_due(now, limit=limit)
        ]
        sent = self._enqueue(batch, report)
        report.parked_retried += len(sent.sent)

    # ------------------------------------------------------------------ subscription health
    def check_subscriptions(self, report: ReconcileReport) -> None:
        if self.subscriptions is None:
            return
        for subscription_id in self.subscriptions.subscription_ids():
            try:
                subscription = self.close.get_webhook(subscription_id)
            except NotFound:
                report.failures.append(f"webhook {subscription_id} is in the signature-keys secret but not in Close")
                continue
            except ApiError as exc:
                report.failures.append(f"webhook {subscription_id}: {exc}")
                continue
            if not subscription.is_paused:
                continue
            report.paused_subscriptions.append(subscription_id)
            if self.settings.auto_resume_webhook:
                # Close cleared the paused queue; the event-log catch-up covers the gap.
                self.close.update_webhook(subscription_id, status="active")
                report.resumed_subscriptions.append(subscription_id)

    # ------------------------------------------------------------------ backfill
    def backfill(self, since: date, report: ReconcileReport | None = None) -> ReconcileReport:
        """Enqueue a snapshot event for every Close task updated since ``since``."""
        report = report or ReconcileReport()
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        batch: list[QueuedEvent] = []
        for task in self.close.iter_tasks(task_types=self.settings.task_types, date_updated_gte=start):
            try:
                batch.append(QueuedEvent.from_raw(task_snapshot_event(task)))
            except InvalidInput as exc:
                report.failures.append(f"task {task.id}: {exc}")
            if len(batch) >= 100:
                report.backfilled += len(self._enqueue(batch, report).sent)
                batch = []
        report.backfilled += len(self._enqueue(batch, report).sent)
        return report
