"""Reconciler: the scheduled catch-up from Close's event log, parked-task retries,
subscription health, and (when invoked with {"backfill_since": "YYYY-MM-DD"}) backfills.

No Powertools Tracer, as in the worker: its import-time X-Ray client costs more cold-start time
than the traces are worth; `Tracing: Active` in the template still traces each invocation.

This module imports only Powertools' Logger and Metrics and tasksync.wiring: the reconciler's object
graph (pydantic settings and models, requests, the runtime modules) is imported by
get_reconciler() at the first invocation, and only the part this function uses.
"""

from __future__ import annotations

import os
from datetime import date
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from tasksync import wiring
from tasksync.errors import InvalidInput
from tasksync.observability import log_reconcile_pass

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from tasksync.logic.syncback_report import SyncBackReport
    from tasksync.reconciler import ReconcileReport

# Log lines name the function (POWERTOOLS_SERVICE_NAME, set per function); custom metrics name
# the stack (STACK_NAME), so that one stack's metrics never mix with another's.
logger = Logger()
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TaskSync"), service=os.environ.get("STACK_NAME")
)
_reconciler: wiring.ScheduledReconciler | None = None


def get_reconciler() -> wiring.ScheduledReconciler:
    """Built once per process: clients, caches and keys are reused across invocations."""
    global _reconciler  # noqa: PLW0603 - the per-process cache Lambda reuses across invocations
    if _reconciler is None:
        _reconciler = wiring.reconciler(os.environ)
    return _reconciler


def report_metrics(report: ReconcileReport) -> None:
    metrics.add_metric(name="ReconcileEventsSeen", unit=MetricUnit.Count, value=report.events_seen)
    metrics.add_metric(name="ReconcileEventsAlreadyApplied", unit=MetricUnit.Count, value=report.events_already_applied)
    metrics.add_metric(name="ReconcileEventsEnqueued", unit=MetricUnit.Count, value=report.events_enqueued)
    metrics.add_metric(name="ReconcileEventsPoisoned", unit=MetricUnit.Count, value=report.events_poisoned)
    metrics.add_metric(name="ReconcileEventsRefetched", unit=MetricUnit.Count, value=report.events_refetched)
    if report.checkpoint_age_seconds is not None:
        # ReconcileStalledAlarm: no pass has completed for too long (or none has run at all).
        metrics.add_metric(name="ReconcileCheckpointAge", unit=MetricUnit.Seconds, value=report.checkpoint_age_seconds)
    metrics.add_metric(name="ParkedRetried", unit=MetricUnit.Count, value=report.parked_retried)
    metrics.add_metric(name="Backfilled", unit=MetricUnit.Count, value=report.backfilled)
    metrics.add_metric(name="WebhookPaused", unit=MetricUnit.Count, value=len(report.paused_subscriptions))
    metrics.add_metric(name="ReconcileFailures", unit=MetricUnit.Count, value=len(report.failures))
    if report.sync_back is not None:
        report_sync_back(report.sync_back)


def report_sync_back(sync_back: SyncBackReport) -> None:
    """Metrics for the pass, and one log line per write it made."""
    for name, value in (
        ("SyncBackChecked", sync_back.checked),
        ("SyncBackCompletions", sync_back.completions_written),
        ("SyncBackReopenings", sync_back.reopenings_written),
        ("SyncBackChartMogulAligned", sync_back.chartmogul_aligned),
        ("SyncBackConflicts", sync_back.conflicts),
        ("SyncBackDeletedInChartMogul", len(sync_back.deleted_in_chartmogul)),
        ("SyncBackChartMogulCalls", sync_back.chartmogul_calls),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for write in sync_back.writes:
        logger.info("completion synced back", extra=write.as_dict())
    if sync_back.close_write_refused:
        logger.warning("the Close API key cannot write tasks", extra={"detail": sync_back.close_write_refused})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scheduled = get_reconciler()
    since = event.get("backfill_since") if isinstance(event, dict) else None
    if since:
        try:
            day = date.fromisoformat(str(since))
        except ValueError:
            raise InvalidInput("backfill_since", "must be a date, YYYY-MM-DD") from None
        report = scheduled.reconciler.backfill(day)
    else:
        # At most one scheduled pass at a time; the lease outlives the function's timeout.
        budget = scheduled.budget(context.get_remaining_time_in_millis())
        report = scheduled.reconciler.run(scheduled.lock, 330.0, budget=budget)
    report_metrics(report)
    for subscription_id in report.paused_subscriptions:
        logger.warning(
            "Close webhook subscription is paused",
            extra={"subscription_id": subscription_id, "resumed": subscription_id in report.resumed_subscriptions},
        )
    log_reconcile_pass(logger, report)
    return report.as_dict()
