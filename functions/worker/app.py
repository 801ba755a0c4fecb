"""Worker: applies queued Close events to ChartMogul (SQS FIFO batch with partial failures).

Thin by design: hand each record of the batch to tasksync.worker.Worker and report the failed
records (tasksync.batch: a failed record fails the rest of its task's group, other groups go
on). The idempotency shape is Powertools' own (examples/idempotency): register the Lambda
context first, then process the records.

No Powertools Tracer: importing the X-Ray SDK builds a client at import time (~240 ms of every
cold start, measured by `make bench`); `Tracing: Active` in the template still traces each
invocation and the AWS calls Lambda makes for it.

This module imports only Powertools' Logger and Metrics and tasksync.wiring: the worker's object
graph (pydantic settings and models, requests, the runtime modules) is imported by
get_worker() at the first invocation, and only the part this function uses.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

from tasksync import wiring
from tasksync.batch import SqsRecord, process_fifo_batch
from tasksync.observability import PowertoolsOutcomeSink

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from tasksync.worker import Worker

# Log lines name the function (POWERTOOLS_SERVICE_NAME, set per function); custom metrics name
# the stack (STACK_NAME), so that one stack's metrics never mix with another's.
logger = Logger()
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TaskSync"), service=os.environ.get("STACK_NAME")
)

_worker: Worker | None = None


def get_worker() -> Worker:
    """Built once per process: clients, caches and keys are reused across invocations."""
    global _worker  # noqa: PLW0603 - the per-process cache Lambda reuses across invocations
    if _worker is None:
        _worker = wiring.worker(os.environ, sink=PowertoolsOutcomeSink(logger, metrics))
    return _worker


def record_handler(record: SqsRecord) -> Any:
    # Per thread: the tasks of one batch are applied on several threads (PARALLEL_TASKS).
    logger.thread_safe_append_keys(correlation_id=record.message_id)
    outcome = get_worker().process_record(record, record.receive_count)
    if outcome.event_id:
        # The Close event id is the correlation id from here on (log lines, traces).
        logger.thread_safe_append_keys(correlation_id=outcome.event_id)
    return outcome.result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    worker = get_worker()
    worker.register_lambda_context(context)
    worker.start_batch(event.get("Records", []))  # parse each message once; plan coalescing
    return dict(process_fifo_batch(event, record_handler, parallel=worker.settings.parallel_tasks))
