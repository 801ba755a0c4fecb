"""Worker: applies queued Close events to ChartMogul (SQS FIFO batch with partial failures).

Thin by design: parse the batch, hand each record to tasksync.worker.Worker, report the
failed records. The batch + idempotency shape is Powertools' own (examples/idempotency,
examples/batch_processing): register the Lambda context first, then process_partial_response.

No Powertools Tracer: importing the X-Ray SDK builds a client at import time (~240 ms of every
cold start, measured by `make bench`); `Tracing: Active` in the template still traces each
invocation and the AWS calls Lambda makes for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tasksync.dal.aws import aws_client
from tasksync.observability import PowertoolsOutcomeSink
from tasksync.wiring import services_from_environment
from tasksync.worker import Worker

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="worker")
metrics = Metrics()
# FIFO: a failed record fails the rest of its task's group (order kept), other groups go on.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# Retries are flow control here (each failed record already has its backoff): report them as
# batchItemFailures even when every record failed, instead of raising, which would also make
# Lambda scale the SQS pollers down.
processor.raise_on_entire_batch_failure = False

_worker: Worker | None = None


def get_worker() -> Worker:
    """Built once per process: clients, caches and keys are reused across invocations."""
    global _worker  # noqa: PLW0603 - the per-process cache Lambda reuses across invocations
    if _worker is None:
        services = services_from_environment(os.environ)
        _worker = Worker(
            settings=services.settings,
            engine=services.engine,
            sqs=aws_client("sqs"),
            dynamodb=aws_client("dynamodb"),
            sink=PowertoolsOutcomeSink(logger, metrics),
        )
    return _worker


def record_handler(record: SQSRecord) -> Any:
    """Powertools calls this with `record=`; the parameter name matters."""
    logger.set_correlation_id(record.message_id)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    outcome = get_worker().process_record(record, receive_count)
    if outcome.event_id:
        # The Close event id is the correlation id from here on (log lines, traces).
        logger.set_correlation_id(outcome.event_id)
    return outcome.result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_worker().register_lambda_context(context)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
