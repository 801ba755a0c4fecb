"""Logs and metrics for applied events: one place that names every metric.

The worker (and the local runner) report each applied event here: a log line with the event
id, the Close task, the action and the ChartMogul task UUID, and a count per outcome plus the
API calls it took. An ignored event says so; a repeated delivery is a DEBUG line without counts.
Metric names are the ones the template's alarms and dashboard read.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tasksync.logic.results import ApplyResult, Outcome

if TYPE_CHECKING:
    from tasksync.reconciler import ReconcileReport

METRIC_BY_OUTCOME = {
    Outcome.CREATED: "Created",
    Outcome.UPDATED: "Updated",
    Outcome.COMPLETED: "Completed",
    Outcome.REOPENED: "Reopened",
    Outcome.RECREATED: "Recreated",
    Outcome.DELETED: "Deleted",
    Outcome.TOMBSTONED: "Tombstoned",
    Outcome.UNCHANGED: "Unchanged",
    Outcome.SKIPPED_STALE: "SkippedStale",
    Outcome.IGNORED: "Ignored",
    Outcome.PARKED: "TasksParked",
    Outcome.NOTED: "CompletionNoted",
    Outcome.COALESCED: "Coalesced",
}


DUPLICATE_METRIC = "DuplicatesSkipped"


class PowertoolsOutcomeSink:
    """Sends worker outcomes to Powertools Logger and Metrics (EMF in CloudWatch)."""

    def __init__(self, logger: Logger, metrics: Metrics) -> None:
        self.logger = logger
        self.metrics = metrics
        # Powertools' metric set is a plain dict: the worker's threads (one per task of a batch)
        # take turns adding to it, so that no count is lost.
        self._metrics_lock = threading.Lock()

    def _count(self, name: str, value: float = 1) -> None:
        with self._metrics_lock:
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def applied(self, result: ApplyResult, event_id: str) -> None:
        self._count(METRIC_BY_OUTCOME[result.outcome])
        self._count("ChartMogulCalls", result.chartmogul_calls)
        self._count("CloseCalls", result.close_calls)
        details: dict[str, Any] = {
            "event_id": event_id,
            "close_task": result.close_task_id,
            "action": result.outcome.value,
            "chartmogul_task": result.chartmogul_task_uuid,
            "reason": result.reason,
            "chartmogul_calls": result.chartmogul_calls,
            "close_calls": result.close_calls,
        }
        if result.outcome is Outcome.PARKED:
            self.logger.warning("task parked", extra=details)
        elif result.outcome is Outcome.IGNORED:
            self.logger.info("event ignored", extra=details)
        else:
            self.logger.info("event applied", extra=details)

    def replayed(self, result: ApplyResult, event_id: str) -> None:
        """A repeated delivery answered from the idempotency record: no API call was made now, so
        no call counts (they belong to the first delivery), and DEBUG: it is routine, not news."""
        self._count(DUPLICATE_METRIC)
        self.logger.debug(
            "duplicate event skipped (already applied)",
            extra={"event_id": event_id, "close_task": result.close_task_id, "applied_as": result.outcome.value},
        )

    def retrying(self, event_id: str, error: Exception, visibility: int) -> None:
        self._count("Retried")
        self.logger.warning(
            "event will be retried",
            extra={
                "event_id": event_id,
                "error": str(error),
                "error_type": type(error).__name__,
                "retry_in": visibility,
            },
        )

    def settling(self, event_id: str, visibility: int) -> None:
        """A change held back for the task's settle window: routine, so DEBUG."""
        self._count("Settling")
        self.logger.debug("change waits for the task to settle", extra={"event_id": event_id, "retry_in": visibility})

    def failed(self, event_id: str, error: Exception) -> None:
        """A failure nothing planned for (a defect, an answer no rule covers): ERROR, with the trace."""
        self._count("Failed")
        self.logger.exception(
            "event failed", extra={"event_id": event_id, "error": str(error), "error_type": type(error).__name__}
        )

    def rejected(self, message_id: str, reason: str) -> None:
        self._count("Unreadable")
        self.logger.error("unreadable message moved to the DLQ", extra={"message_id": message_id, "reason": reason})


def _counted(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def log_reconcile_pass(logger: Logger, report: ReconcileReport) -> None:
    """One line per reconcile pass: INFO, short, only when the pass found or did something.

    Most passes find every event already applied: a DEBUG line then, as a pass runs every few
    minutes and CloudWatch Logs bills each line. The per-pair checkpoints stay out of the line.
    """
    if report.skipped:
        logger.debug(f"reconcile pass skipped: {report.skipped}")
        return
    done = [
        _counted(count, singular, plural)
        for count, singular, plural in (
            (report.events_enqueued, "event enqueued", "events enqueued"),
            (report.parked_retried, "parked task retried", "parked tasks retried"),
            (report.backfilled, "task backfilled", "tasks backfilled"),
            (len(report.paused_subscriptions), "paused subscription", "paused subscriptions"),
            (len(report.resumed_subscriptions), "subscription resumed", "subscriptions resumed"),
            (report.events_poisoned, "event dead-lettered", "events dead-lettered"),
            (len(report.deferred), "pair left for the next pass", "pairs left for the next pass"),
            (len(report.failures), "failure", "failures"),
        )
        if count
    ]
    if not done:
        seen = _counted(report.events_seen, "event", "events")
        logger.debug(f"reconcile pass: nothing to do ({seen} already applied or queued)")
        return
    extra: dict[str, Any] = {
        "events_seen": report.events_seen,
        "events_already_applied": report.events_already_applied,
        "events_enqueued": report.events_enqueued,
    }
    if report.failures:
        extra["failures"] = report.failures[:3]
    logger.info("reconcile pass: " + ", ".join(done), extra=extra)
