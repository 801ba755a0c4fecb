"""One worker execution environment for the benchmarks: an OS process of its own, as Lambda runs it.

    python -m tests.bench.worker_process STATS_FILE

The function's environment comes from the parent. Once the worker is built it touches
STATS_FILE with the suffix ``.ready``. A poller thread receives batches of up to 10 the way
Lambda's SQS event source does (see `Poller`), and the main thread runs
functions/worker/app.py's handler on each batch, one batch at a time, until SIGTERM; what
succeeded is deleted as Lambda deletes it (`tasksync_dev.local.sqs_source`). Then it writes what
its ChartMogul pacer did to STATS_FILE as JSON.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from tasksync_dev.local.sqs_source import delete_succeeded, queue_arn, receive_batch, sqs_lambda_event
from tests.support.handlers import lambda_context, load_handler


class Poller:
    """Lambda's SQS poller for one execution environment.

    Lambda's pollers are not the function: they long-poll the queue on their own and invoke
    the function with the next batch as soon as it is free, and delete what succeeded after the
    invocation. So this one receives the next batch while the handler runs (one batch ahead;
    the FIFO queue keeps the groups of the batch in hand from being received again), and the
    deletes go on a thread of their own. Polling first and then invoking, one after the other,
    would put a receive and a delete (about 50 ms on moto) between every two batches, time in
    which the worker's ChartMogul slots go unused and which Lambda does not spend.
    """

    def __init__(self, sqs_client: Any, queue_url: str, region: str, errors: list[str]) -> None:
        self.batches: queue.Queue[list[Any]] = queue.Queue(maxsize=1)
        self._receiver = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], region_name=region)
        self._queue_url = queue_url
        self._errors = errors
        self.queue_arn = queue_arn(sqs_client, queue_url)

    def start(self, stopping: list[bool]) -> None:
        threading.Thread(target=self._receive, args=(stopping,), name="poller", daemon=True).start()

    def _receive(self, stopping: list[bool]) -> None:
        while not stopping:
            try:
                messages = receive_batch(self._receiver, self._queue_url)
            except (BotoCoreError, ClientError) as exc:
                self._errors.append(f"poll: {exc!r}")
                continue
            while messages and not stopping:
                try:
                    self.batches.put(messages, timeout=0.2)
                    break
                except queue.Full:
                    continue


def main(argv: list[str]) -> int:
    stats_file = Path(argv[0])
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    handler = load_handler("worker")
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], region_name=region)
    errors: list[str] = []

    in_handler = [0.0]

    def delete(messages: list[Any], response: Any) -> None:
        # On a thread of its own: what goes wrong here would otherwise vanish with the future.
        try:
            refused = delete_succeeded(sqs, os.environ["QUEUE_URL"], messages, response)
        except (BotoCoreError, ClientError) as exc:
            refused = [repr(exc)]
        errors.extend(f"delete: {reason}" for reason in refused)

    def invoke(event: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return handler.lambda_handler(event, lambda_context())
        finally:
            in_handler[0] += time.perf_counter() - started

    pacer = handler.get_worker().engine.chartmogul.pacer
    if os.environ.get("BENCH_PACER_GRACE"):  # design experiments only (docs/performance.md)
        pacer.grace = round(float(os.environ["BENCH_PACER_GRACE"]) * 1_000_000)
    profile = None
    if os.environ.get("BENCH_PROFILE"):  # a development aid: where a worker's time goes
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    poller = Poller(sqs, os.environ["QUEUE_URL"], region, errors)
    stats_file.with_suffix(".ready").touch()  # built: the parent may start the clock
    poller.start(stopping)
    records = batches = 0
    polling = 0.0  # from the first batch on: the time of the whole loop, waits for a batch included
    started = 0.0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="delete") as deletes:
        while not stopping:
            try:
                messages = poller.batches.get(timeout=0.2)
            except queue.Empty:
                continue
            started = started or time.perf_counter()
            batches += 1
            records += len(messages)
            try:
                response = invoke(sqs_lambda_event(messages, poller.queue_arn, region))
            except Exception as exc:  # Lambda: a failed invocation returns the whole batch to the queue
                errors.append(f"batch of {len(messages)}: {exc!r}")
                continue
            deletes.submit(delete, messages, response)
            polling = time.perf_counter() - started
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    stats = {
        "records": records,
        "batches": batches,
        "schedule_writes": pacer.schedule.writes,
        "reservations": pacer.reservations,
        "slots_used": pacer.used,
        "slots_dropped": pacer.dropped,
        "sleeps_overran": pacer.overran,
        "slot_wait_seconds": round(pacer.slept, 3),
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
