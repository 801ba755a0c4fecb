"""The reconciler: the safety net under the webhooks.

Webhooks get lost (a receiver outage, a paused subscription, a signature window missed), so on
a schedule we replay Close's event log (`tasksync.catch_up`: oldest first, in checkpointed
slices, enqueuing only what the worker has not applied yet). We also re-drive parked tasks
whose backoff has elapsed, watch the webhook subscription, and run backfills. Every phase is
isolated from the others, and a run stops by itself before its time is up.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import InitVar, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from tasksync.catch_up import Budget, CatchUp, CatchUpTally, OutOfTime, PairScan
from tasksync.config import ReconcilerSettings
from tasksync.errors import ApiError, ConcurrentUpdate, InvalidInput, NotFound, RateLimited
from tasksync.logic.ports import CloseSource, Enqueuer, PoisonSink, ReconcilerLinks, RunLock, RunLog, SubscriptionIds
from tasksync.logic.syncback import SyncBack
from tasksync.logic.syncback_report import SyncBackReport
from tasksync.models.close import TASK_COMPLETED_ACTIVITY, refetch_event, task_snapshot_event
from tasksync.models.link import TaskLink
from tasksync.models.queue import EnqueueReport, QueuedEvent

TASK_ACTIONS = ("created", "updated", "completed", "deleted")
# A queued parked retry is not queued again for this long: the worker's default longest SQS
# backoff (RETRY_MAX_SECONDS), so a retry stuck behind a backlog is queued at most this often.
QUEUED_RETRY_GRACE_SECONDS = 900
# A run with no budget given (the CLI without --budget) stops after this long.
DEFAULT_BUDGET_SECONDS = 240.0


def subscribed_pairs(task_types: Iterable[str]) -> list[tuple[str, str]]:
    """The (object_type, action) pairs the webhook subscribes to and the reconciler replays."""
    pairs = [(f"task.{task_type}", action) for task_type in sorted(task_types) for action in TASK_ACTIONS]
    pairs += [(TASK_COMPLETED_ACTIVITY, "created"), (TASK_COMPLETED_ACTIVITY, "deleted")]
    return pairs


# The counters of a run, as they appear in the report, the log line, the metrics and the run record.
COUNTERS = (
    "events_seen",
    "events_already_applied",
    "events_enqueued",
    "events_invalid",
    "events_poisoned",
    "events_refetched",
    "parked_retried",
    "backfilled",
)


@dataclass
class ReconcileReport(CatchUpTally):
    parked_retried: int = 0
    backfilled: int = 0
    paused_subscriptions: list[str] = field(default_factory=list)
    resumed_subscriptions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Pairs that stopped cleanly before reaching now (budget spent, Close rate limit): next run.
    deferred: list[str] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)  # the ones this run moved
    newest_checkpoint: datetime | None = None
    checkpoint_age_seconds: float | None = None
    skipped: str | None = None
    sync_back: SyncBackReport | None = None  # only on passes that ran the sync-back

    @property
    def caught_up(self) -> bool:
        return not self.deferred and not self.failures and self.skipped is None

    def counts(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in COUNTERS}

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts(),
            "slices": self.slices,
            "read_units": round(self.read_units, 2),
            "paused_subscriptions": self.paused_subscriptions,
            "resumed_subscriptions": self.resumed_subscriptions,
            "failures": self.failures[:20],
            "poisoned": self.poisoned[:20],
            "deferred": self.deferred,
            "caught_up": self.caught_up,
            "checkpoints": self.checkpoints,
            "newest_checkpoint": self.newest_checkpoint.isoformat() if self.newest_checkpoint else None,
            "checkpoint_age_seconds": self.checkpoint_age_seconds,
            "skipped": self.skipped,
            "sync_back": self.sync_back.as_dict() if self.sync_back else None,
        }


@dataclass(eq=False, kw_only=True)
class Reconciler:
    settings: ReconcilerSettings
    close: CloseSource
    links: ReconcilerLinks
    checkpoints: RunLog
    queue: Enqueuer
    poison: InitVar[PoisonSink | None] = None
    subscriptions: SubscriptionIds | None = None
    clock: Callable[[], float] = time.time
    sleep: InitVar[Callable[[float], None]] = time.sleep
    sync_back: SyncBack | None = None  # None unless SYNC_COMPLETION_BACK is on
    catch_up_scanner: CatchUp = field(init=False)

    def __post_init__(self, poison: PoisonSink | None, sleep: Callable[[float], None]) -> None:
        self.catch_up_scanner = CatchUp(
            log=self.close,
            applied=self.links,
            checkpoints=self.checkpoints,
            queue=self.queue,
            poison=poison,
            sleep=sleep,
        )

    def run(
        self, lock: RunLock | None = None, lock_seconds: float = 300.0, budget: Budget | None = None
    ) -> ReconcileReport:
        """One scheduled pass: check the subscription, retry parked tasks, catch up.

        Each phase (and each pair of the catch-up) is isolated: a failure is reported and the
        others still run. The catch-up stops by itself when ``budget`` is spent. With a
        ``lock``, a pass that finds another one still running skips itself.
        """
        report = ReconcileReport()
        budget = budget or Budget(DEFAULT_BUDGET_SECONDS)
        owner = uuid.uuid4().hex
        locked = False
        if lock is not None:
            try:
                if not lock.acquire(owner, lock_seconds):
                    report.skipped = "another reconciler run is in progress"
                    return report
                locked = True
            except Exception as exc:  # the phases are safe to run twice: go on, unlocked, and say so
                report.failures.append(f"run lock: {type(exc).__name__}: {exc}; this pass ran without it")
        try:
            # The short phases first: the catch-up may use the rest of the budget.
            self._isolated(report, "subscription check", lambda: self.check_subscriptions(report))
            self._isolated(report, "parked retry", lambda: self.retry_parked(report))
            if self.sync_back is not None:
                self._isolated(report, "sync-back", lambda: self._sync_back(report, budget))
            self.catch_up(report, budget)
        finally:
            if lock is not None and locked:
                # It expires by itself: a failed release only delays the next pass.
                self._isolated(report, "run lock release", lambda: lock.release(owner))
        self._isolated(report, "run record", lambda: self._record(report))
        return report

    @staticmethod
    def _isolated(report: ReconcileReport, phase: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # the isolation boundary: reported, and the run goes on
            report.failures.append(f"{phase}: {type(exc).__name__}: {exc}")

    def _sync_back(self, report: ReconcileReport, budget: Budget) -> None:
        """SYNC_COMPLETION_BACK: completions made in ChartMogul, written back every Nth pass."""
        if self.sync_back is not None:
            report.sync_back = self.sync_back.maybe_run(budget)

    def _record(self, report: ReconcileReport) -> None:
        finished = datetime.fromtimestamp(self.clock(), UTC)
        if report.newest_checkpoint is not None:
            report.checkpoint_age_seconds = round((finished - report.newest_checkpoint).total_seconds(), 3)
        summary: dict[str, Any] = {
            **report.counts(),
            "failures": len(report.failures),
            "deferred": len(report.deferred),
            "caught_up": report.caught_up,
        }
        self.checkpoints.record_run(summary, finished)

    # ------------------------------------------------------------------ catch-up
    def catch_up(self, report: ReconcileReport, budget: Budget) -> None:
        """Replay the event log of every pair, one slice per pair in turn, until now or out of time."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        scans: list[PairScan] = []
        for object_type, action in subscribed_pairs(self.settings.task_types):
            try:
                scans.append(self.catch_up_scanner.begin(object_type, action, now))
            except Exception as exc:  # one pair's failure must not stop the others
                report.failures.append(f"catch-up {object_type}:{action}: {type(exc).__name__}: {exc}")
        tallies = {scan.name: CatchUpTally() for scan in scans}
        active = list(scans)
        try:
            # Rounds: every pair moves a slice per round, the one furthest behind first, so a
            # backlog in one pair never starves the others, in this run or across runs.
            while active:
                for scan in sorted(active, key=lambda scan: scan.start):
                    if not self._step(scan, tallies[scan.name], budget, report) or scan.done:
                        active.remove(scan)
        except OutOfTime:
            report.deferred += [f"{scan.name}: out of time; resumes from {scan.start.isoformat()}" for scan in active]
        finally:
            for scan in scans:
                report.add(tallies[scan.name])
                if scan.advanced and scan.checkpoint is not None:
                    report.checkpoints[scan.name] = scan.checkpoint.isoformat()
            known = [scan.checkpoint for scan in scans if scan.checkpoint is not None]
            report.newest_checkpoint = max(known) if known else None

    def _step(self, scan: PairScan, tally: CatchUpTally, budget: Budget, report: ReconcileReport) -> bool:
        """One slice of one pair; False when the pair stops for this run."""
        try:
            self.catch_up_scanner.step(scan, tally, budget)
        except OutOfTime:
            raise
        except RateLimited as exc:
            report.deferred.append(
                f"{scan.name}: Close asked to wait {exc.retry_after}s (beyond this run's budget, or once too often);"
                " resumes next run"
            )
            return False
        except Exception as exc:  # one pair's failure must not stop the others
            report.failures.append(f"catch-up {scan.name}: {type(exc).__name__}: {exc}")
            return False
        return True

    def _enqueue(self, events: list[QueuedEvent], report: ReconcileReport) -> EnqueueReport:
        # The caller lists each task's events oldest first, and counts what was sent.
        sent = self.queue.enqueue_many(events)
        report.failures += [f"enqueue {f.event_id}: {f.code} {f.message}" for f in sent.failures]
        return sent

    # ------------------------------------------------------------------ parked tasks
    def retry_parked(self, report: ReconcileReport, limit: int = 500) -> None:
        """Re-drive parked tasks whose backoff has elapsed: the customer may exist by now."""
        now = self.clock()
        moment = datetime.fromtimestamp(now, UTC)
        due: dict[str, TaskLink] = {}
        batch: list[QueuedEvent] = []
        for link in self.links.parked_due(now, limit=limit):
            queued = QueuedEvent.from_raw(
                refetch_event(
                    link.close_task_id,
                    link.task_type or "lead",
                    link.lead_id,
                    moment,
                    reason=f"parked retry {link.attempts}: {link.parked_reason}",
                )
            )
            due[queued.event.id] = link
            batch.append(queued)
        sent = self._enqueue(batch, report)
        report.parked_retried += len(sent.sent)
        # A queued retry is not due again while the worker may still be on it (a backlog, SQS
        # retries): without this, every pass queues it once more.
        grace = QUEUED_RETRY_GRACE_SECONDS
        for event_id, _ in sent.sent:
            queued_link = due.get(event_id)
            if queued_link is None:
                continue
            # ConcurrentUpdate: the worker got to it first, and its own write sets the next retry.
            with contextlib.suppress(ConcurrentUpdate):
                self.links.save(queued_link, queued_link.retry_enqueued(now=now, grace=grace))

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
        self._isolated(report, "backfill", lambda: self._backfill(since, report))
        return report

    def _backfill(self, since: date, report: ReconcileReport) -> None:
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        batch: list[QueuedEvent] = []
        try:
            for task in self.close.iter_tasks(task_types=self.settings.task_types, date_updated_gte=start):
                try:
                    batch.append(QueuedEvent.from_raw(task_snapshot_event(task)))
                except InvalidInput as exc:
                    report.failures.append(f"task {task.id}: {exc}")
                if len(batch) >= 100:
                    report.backfilled += len(self._enqueue(batch, report).sent)
                    batch = []
        finally:
            # What was read before a failure still goes out.
            report.backfilled += len(self._enqueue(batch, report).sent)
