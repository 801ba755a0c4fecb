"""End-to-end latency in the local stack (sandbox mode): webhook accepted → ChartMogul task created.

`make run`'s stack in-process: real HTTP into the receiver, the SQS poller (moto server) driving
the worker, DynamoDB Local. Webhooks are sent one at a time; a watcher thread polls the
ChartMogul simulator every 2 ms and notes when each task first appears.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests

from tasksync_dev.local.stack import LocalStack
from tests.bench.report import BenchResult, Measurement, markdown_table, ms, percentile

DEADLINE_SECONDS = 30.0


def run(*, webhooks: int) -> BenchResult:
    environment = {
        "PORT": "0",
        "TASKSYNC_LOCAL_DIR": tempfile.mkdtemp(prefix="tasksync-bench-stack-"),
        "TASKSYNC_LOCAL_DYNAMODB": "dynamodb-local",
        "RECONCILE_INTERVAL_SECONDS": "3600",  # only the webhook path may create the tasks
    }
    stack = LocalStack(environment)
    with contextlib.redirect_stdout(io.StringIO()):  # the stack's own log lines
        stack.start()
    try:
        latencies = _measure(stack, webhooks)
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            stack.stop()
    result = BenchResult()
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    result.rows += [
        Measurement("end to end", "webhook 202 → ChartMogul task, p50", ms(p50)),
        Measurement("end to end", "same, p99", ms(p99)),
    ]
    result.details = (
        f"{len(latencies)} webhooks, one at a time, each a new task on the sandbox's Acme lead.\n\n"
        + markdown_table(
            ["p50", "p90", "p99", "max"],
            [[ms(percentile(latencies, f)) for f in (0.5, 0.9, 0.99)] + [ms(max(latencies))]],
        )
        + "\n\nThe local worker is fed by a poller that long-polls moto's SQS and runs the handler as"
        " Lambda's SQS event source would; on AWS the poller's batching window and Lambda's"
        " invocation add their own latency."
    )
    return result


def _measure(stack: LocalStack, webhooks: int) -> list[float]:
    close, chartmogul = stack.close_simulator, stack.chartmogul_simulator
    assert close is not None
    assert chartmogul is not None
    assert stack.subscription_id is not None
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now = time.perf_counter()
            for task in chartmogul.live_tasks():
                seen.setdefault(task["task_details"], now)
            stop.wait(0.002)

    watcher = threading.Thread(target=watch, name="bench-latency-watcher", daemon=True)
    watcher.start()
    session = requests.Session()
    due = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    latencies = []
    try:
        for index in range(webhooks):
            text = f"Latency probe {index} {uuid.uuid4().hex[:8]}"
            task = close.create_task(
                lead_id=stack.sandbox_ids["acme"], text=text, assigned_to=stack.sandbox_ids["alice"], date=due
            )
            event = next(e for e in reversed(close.events) if e["object_id"] == task["id"])
            body, headers = close.signed_delivery(event, stack.subscription_id)
            answer = session.post(stack.receiver_url, data=body, headers=headers, timeout=10)
            accepted = time.perf_counter()
            if answer.status_code != 202:
                raise RuntimeError(f"the receiver answered {answer.status_code}: {answer.text[:200]}")
            deadline = accepted + DEADLINE_SECONDS
            while (appeared := next((at for details, at in list(seen.items()) if text in details), None)) is None:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"task {index} did not reach ChartMogul within {DEADLINE_SECONDS:.0f}s")
                time.sleep(0.001)
            latencies.append(max(0.0, appeared - accepted))
    finally:
        stop.set()
        watcher.join()
        session.close()
    return latencies
