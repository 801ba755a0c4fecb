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

import boto3
from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit
from botocore.config import Config

from tasksync.config import SyncSettings
from tasksync.receiver import Receiver, WebhookResponse, build_receiver

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="receiver")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TaskSync"))

# Close waits for our answer and the function times out after 5 s: fail fast and answer 503
# (Close retries) rather than let the invocation time out.
_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "max_attempts": 2})

_METRIC_BY_OUTCOME = {
    "accepted": "WebhooksAccepted",
    "ignored": "WebhooksIgnored",
    "rejected": "WebhooksRejected",
    "failed": "WebhooksFailed",
}

_receiver: Receiver | None = None


def _get_receiver() -> Receiver:
    # Built on the first invocation and kept for the life of the process (clients, key cache).
    global _receiver  # noqa: PLW0603 - the per-process cache Lambda reuses across invocations
    if _receiver is None:
        settings = SyncSettings.from_env(os.environ)
        _receiver = build_receiver(
            settings,
            sqs_client=boto3.client("sqs", config=_CLIENT_CONFIG),
            secrets_client=(
                boto3.client("secretsmanager", config=_CLIENT_CONFIG) if settings.signature_keys_secret_arn else None
            ),
        )
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


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        receiver = _get_receiver()
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
