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
import time
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

    in_handler = [0.0]

    def invoke(event: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return handler.lambda_handler(event, lambda_context())
        finally:
            in_handler[0] += time.perf_counter() - started

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
    profile = None
    if os.environ.get("BENCH_PROFILE"):  # a development aid: where a worker's time goes
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    records = 0
    polling = 0.0  # from the first batch on: the handler's time plus the poller's receives and deletes
    while not stopping:
        started = time.perf_counter()
        received = source.poll_once()
        if received or records:
            polling += time.perf_counter() - started
        records += received
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    stats = {
        "records": records,
        "batches": source.batches,
        "schedule_writes": pacer.schedule.writes,
        "reservations": pacer.reservations,
        "slots_used": pacer.used,
        "slots_dropped": pacer.dropped,
        "sleeps_overran": pacer.overran,
        "handler_seconds": round(in_handler[0], 3),
        "polling_seconds": round(polling, 3),
        # The process's own CPU (all its threads): what one execution environment needs per event.
        "cpu_seconds": round(time.process_time(), 3),
        "errors": errors[:5],
    }
    stats_file.write_text(json.dumps(stats), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
