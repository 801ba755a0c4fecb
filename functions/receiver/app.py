"""Close webhook receiver (HTTP API, payload v2): a thin shell around tasksync.receiver.

A plain handler rather than Powertools' APIGatewayHttpResolver: there is one route, and the
resolver roughly doubles the import time that every cold start of this latency-bound function
pays (measured with `python -X importtime`). Powertools Tracer is left out for the same reason
(its X-Ray patching costs more than this function's whole work); `Tracing: Active` in the
template still traces each invocation.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from tasksync import wiring
from tasksync.receiver import Receiver, WebhookResponse

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Log lines name the function (POWERTOOLS_SERVICE_NAME, set per function); custom metrics name
# the stack (STACK_NAME), so that one stack's metrics never mix with another's.
logger = Logger()
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TaskSync"), service=os.environ.get("STACK_NAME")
)

_METRIC_BY_OUTCOME = {
    "accepted": "WebhooksAccepted",
    "ignored": "WebhooksIgnored",
    "rejected": "WebhooksRejected",
    "failed": "WebhooksFailed",
}

_receiver: Receiver | None = None


def get_receiver() -> Receiver:
    """Built once per process: clients, caches and keys are reused across invocations."""
    global _receiver  # noqa: PLW0603 - the per-process cache Lambda reuses across invocations
    if _receiver is None:
        _receiver = wiring.receiver(os.environ)
    return _receiver


def _record(response: WebhookResponse) -> None:
    if response.event_id:
        # Set only once the signature holds: an unverified id is attacker-controlled text.
        logger.set_correlation_id(response.event_id)
    metrics.add_metric(name=_METRIC_BY_OUTCOME[response.outcome], unit=MetricUnit.Count, value=1)
    if response.signature_age_seconds is not None:
        metrics.add_metric(name="WebhookSignatureAge", unit=MetricUnit.Seconds, value=response.signature_age_seconds)
    details = {
        "status": response.status,
        "outcome": response.outcome,
        "reason": response.reason,
        "subscription_id": response.subscription_id,
        "object_type": response.object_type,
        "action": response.action,
        "message_id": response.message_id,
        "signature_age_seconds": response.signature_age_seconds,
    }
    if response.outcome == "failed":
        logger.error("webhook not queued", extra=details, exc_info=response.error)
    elif response.outcome == "rejected":
        logger.warning("webhook rejected", extra=details)
    else:
        logger.info("webhook " + response.outcome, extra=details)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        receiver = get_receiver()
    except Exception:
        logger.exception("receiver is misconfigured")
        metrics.add_metric(name="WebhooksFailed", unit=MetricUnit.Count, value=1)
        return {
            "statusCode": 500,
            "headers": {"content-type": "application/json"},
            "body": '{"message":"receiver is not configured"}',
        }
    response = receiver.handle(event)
    _record(response)
    return response.to_http()
