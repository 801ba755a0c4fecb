"""Reconciler: the scheduled catch-up from Close's event log, parked-task retries,
subscription health, and (when invoked with {"backfill_since": "YYYY-MM-DD"}) backfills.

No Powertools Tracer, as in the worker: its import-time X-Ray client costs more cold-start time
than the traces are worth; `Tracing: Active` in the template still traces each invocation.
"""

from __future__ import annotations

import os
from datetime import date
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tasksync.catch_up import Budget
from tasksync.dal.aws import aws_client
from tasksync.dal.checkpoints import CheckpointStore, RunLock
from tasksync.dal.dead_letters import DeadLetterQueue
from tasksync.dal.queue import EventQueue
from tasksync.dal.subscriptions import SubscriptionDirectory
from tasksync.dal.syncback_ledger import SyncBackLedger
from tasksync.errors import InvalidInput
from tasksync.logic.syncback import SyncBack, SyncBackReport
from tasksync.observability import log_reconcile_pass
from tasksync.reconciler import Reconciler, ReconcileReport
from tasksync.wiring import reconciler_services_from_environment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="reconciler")
metrics = Metrics()
_reconciler: Reconciler | None = None


def get_reconciler() -> Reconciler:
    global _reconciler  # noqa: PLW0603 - the per-process cache Lambda reuses across invocations
    if _reconciler is None:
        services = reconciler_services_from_environment(os.environ)
        settings = services.settings
        if not settings.queue_url:
            raise InvalidInput("QUEUE_URL", "is not set")
        # The ids alone, never the signature-keys secret: the reconciler holds no grant on it.
        subscriptions = SubscriptionDirectory(aws_client("dynamodb"), settings.state_table)
        # Wiring builds a ChartMogul client (and reads its key) only when the sync-back is on.
        sync_back = (
            SyncBack(
                close=services.close,
                chartmogul=services.chartmogul,
                links=services.links,
                ledger=SyncBackLedger(aws_client("dynamodb"), settings.state_table),
                every_passes=settings.sync_back_every_passes,
            )
            if services.chartmogul is not None
            else None
        )
        _reconciler = Reconciler(
            settings=settings,
            close=services.close,
            links=services.links,
            checkpoints=CheckpointStore(aws_client("dynamodb"), settings.state_table),
            queue=EventQueue(aws_client("sqs"), settings.queue_url),
            poison=DeadLetterQueue(aws_client("sqs"), settings.dlq_url) if settings.dlq_url else None,
            subscriptions=subscriptions,
            sync_back=sync_back,
        )
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
    reconciler = get_reconciler()
    since = event.get("backfill_since") if isinstance(event, dict) else None
    if since:
        try:
            day = date.fromisoformat(str(since))
        except ValueError:
            raise InvalidInput("backfill_since", "must be a date, YYYY-MM-DD") from None
        report = reconciler.backfill(day)
    else:
        # At most one scheduled pass at a time; the lease outlives the function's timeout.
        budget = Budget.for_lambda(
            context.get_remaining_time_in_millis(), cap=reconciler.settings.reconcile_budget_seconds
        )
        report = reconciler.run(
            RunLock(aws_client("dynamodb"), reconciler.settings.state_table, "reconcile"), 330.0, budget=budget
        )
    report_metrics(report)
    for subscription_id in report.paused_subscriptions:
        logger.warning(
            "Close webhook subscription is paused",
            extra={"subscription_id": subscription_id, "resumed": subscription_id in report.resumed_subscriptions},
        )
    log_reconcile_pass(logger, report)
    return report.as_dict()
