"""One worker execution environment for the benchmarks: an OS process of its own, as Lambda runs it.

    python -m tests.bench.worker_process STATS_FILE

The function's environment comes from the parent. The process polls the event queue the way
Lambda's SQS event source does (`tasksync_dev.local.sqs_source`: batches of up to 10, delete
what succeeded) and runs functions/worker/app.py's handler on each batch, one batch at a time,
until SIGTERM. Then it writes what its ChartMogul pacer did to STATS_FILE as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import boto3

from tasksync_dev.local.sqs_source import SqsEventSource
from tests.support.handlers import lambda_context, load_handler


def main(argv: list[str]) -> int:
    stats_file = Path(argv[0])
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    handler = load_handler("worker")
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], region_name=region)
    errors: list[str] = []

    def invoke(event: dict[str, Any]) -> Any:
        return handler.lambda_handler(event, lambda_context())

    source = SqsEventSource(
        sqs=sqs,
        queue_url=os.environ["QUEUE_URL"],
        invoke=invoke,
        region=region,
        on_batch_error=lambda exc, size: errors.append(f"batch of {size}: {exc!r}"),
        on_poll_error=lambda exc: errors.append(f"poll: {exc!r}"),
    )
    pacer = handler.get_worker().engine.chartmogul.pacer
    if os.environ.get("BENCH_PACER_GRACE"):  # design experiments only (docs/performance.md)
        pacer.grace = round(float(os.environ["BENCH_PACER_GRACE"]) * 1_000_000)
    records = 0
    while not stopping:
        records += source.poll_once()
    stats = {
        "records": records,
        "batches": source.batches,
        "schedule_writes": pacer.schedule.writes,
        "reservations": pacer.reservations,
        "slots_used": pacer.used,
        "slots_dropped": pacer.dropped,
        "sleeps_overran": pacer.overran,
        "errors": errors[:5],
    }
    stats_file.write_text(json.dumps(stats), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
