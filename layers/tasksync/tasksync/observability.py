"""Logs and metrics for applied events: one place that names every metric.

The worker (and the local runner) report each applied event here: a log line with the event
id, the Close task, the action and the ChartMogul task UUID, and a count per outcome plus the
API calls it took. Metric names are the ones the template's alarms and dashboard read.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tasksync.logic.results import ApplyResult, Outcome

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


class PowertoolsOutcomeSink:
    """Sends worker outcomes to Powertools Logger and Metrics (EMF in CloudWatch)."""

    def __init__(self, logger: Logger, metrics: Metrics) -> None:
        self.logger = logger
        self.metrics = metrics

    def applied(self, result: ApplyResult, event_id: str) -> None:
        self.metrics.add_metric(name=METRIC_BY_OUTCOME[result.outcome], unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(name="ChartMogulCalls", unit=MetricUnit.Count, value=result.chartmogul_calls)
        self.metrics.add_metric(name="CloseCalls", unit=MetricUnit.Count, value=result.close_calls)
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
        else:
            self.logger.info("event applied", extra=details)

    def retrying(self, event_id: str, error: Exception, visibility: int) -> None:
        self.metrics.add_metric(name="Retried", unit=MetricUnit.Count, value=1)
        self.logger.warning(
            "event will be retried",
            extra={
                "event_id": event_id,
                "error": str(error),
                "error_type": type(error).__name__,
                "retry_in": visibility,
            },
        )

    def rejected(self, message_id: str, reason: str) -> None:
        self.metrics.add_metric(name="Unreadable", unit=MetricUnit.Count, value=1)
        self.logger.error("unreadable message moved to the DLQ", extra={"message_id": message_id, "reason": reason})
