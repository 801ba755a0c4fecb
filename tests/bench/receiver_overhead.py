"""Receiver warm overhead: one request's time in-process without the SQS call, and the SQS send alone.

In-process, the real `Receiver` and the real `EventQueue` (message body, group and
dedup ids) run against an in-memory stand-in for the SQS client that only records the call,
so the time is ours, not the network's. The whole Lambda handler (Powertools logger and
metrics, whose JSON goes to a discarded stdout) is timed the same way. The SQS send is then
timed separately against a moto server on 127.0.0.1 (a process of its own), through a real boto3 client.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from tasksync.dal.queue import EventQueue
from tasksync.dal.signature_keys import SingleSignatureKey
from tasksync.logic.signature import sign
from tasksync.models.close import CloseEvent
from tasksync.receiver import Receiver
from tasksync_dev.local.moto_server import MotoServer
from tests.bench.report import BenchResult, Measurement, markdown_table, ms, percentile
from tests.support.handlers import FakeLambdaContext, load_event, load_handler
from tests.support.template import create_queues

SIGNATURE_KEY = "5f" * 32
GOAL_SECONDS = 0.001


class RecordingSqsClient:
    """Answers send_message like SQS does, from memory (what the queue protocol needs)."""

    def __init__(self) -> None:
        self.sent = 0

    def send_message(self, **request: Any) -> dict[str, Any]:
        self.sent += 1
        return {"MessageId": str(uuid.uuid4()), "MD5OfMessageBody": "", "SequenceNumber": str(self.sent)}


def signed_requests(count: int, now: int) -> list[dict[str, Any]]:
    """``count`` distinct task.created deliveries (the sample event with fresh ids), signed."""
    template = load_event("webhook-task-created.json")
    envelope = json.loads(template["body"])
    deliveries = []
    for index in range(count):
        envelope["event"]["id"] = f"ev_bench{index:06d}"
        body = json.dumps(envelope).encode()
        request = json.loads(json.dumps(template))
        request["body"] = body.decode()
        request["headers"]["content-length"] = str(len(body))
        request["headers"]["close-sig-timestamp"] = str(now)
        request["headers"]["close-sig-hash"] = sign(SIGNATURE_KEY, str(now), body)
        deliveries.append(request)
    return deliveries


def _time_each(calls: Iterator[Any]) -> list[float]:
    durations: list[float] = []
    while True:
        start = time.perf_counter()
        try:
            next(calls)
        except StopIteration:
            return durations
        durations.append(time.perf_counter() - start)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _in_process(requests: list[dict[str, Any]], now: int) -> tuple[list[float], list[float]]:
    sqs = RecordingSqsClient()
    queue = EventQueue(sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/bench.fifo")  # type: ignore[arg-type]
    receiver = Receiver(keys=SingleSignatureKey(SIGNATURE_KEY), queue=queue, clock=lambda: float(now))
    warm = len(requests) // 10
    handle_times = _time_each(receiver.handle(request) for request in requests)
    assert all(receiver.handle(r).status == 202 for r in requests[:3])

    with _environment({"POWERTOOLS_SERVICE_NAME": "tasksync-bench", "POWERTOOLS_METRICS_NAMESPACE": "Bench"}):
        # Powertools binds its log stream to sys.stdout when the Logger is made: load it inside.
        with contextlib.redirect_stdout(io.StringIO()) as discarded:
            handler = load_handler("receiver")
            vars(handler)["_receiver"] = receiver  # the handler's per-process cache, pre-filled
            context = FakeLambdaContext()
            handler_times = []
            for request in requests:
                start = time.perf_counter()
                answer = handler.lambda_handler(request, context)
                handler_times.append(time.perf_counter() - start)
                discarded.seek(0)
                discarded.truncate()
        assert answer["statusCode"] == 202, answer
    return handle_times[warm:], handler_times[warm:]


def _sqs_send(requests: list[dict[str, Any]]) -> list[float]:
    server = MotoServer(Path(tempfile.mkdtemp(prefix="bench-moto-")) / "moto-server.log")
    endpoint = server.start()
    try:
        client = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        url = create_queues(client, f"bench{uuid.uuid4().hex[:6]}")["EventQueue"]
        queue = EventQueue(client, url)
        events = []
        for request in requests:
            raw = json.loads(request["body"])["event"]
            events.append((CloseEvent.model_validate(raw), raw))
        times = _time_each(queue.enqueue(event, raw, subscription_id="whsub_bench") for event, raw in events)
        return times[len(times) // 10 :]
    finally:
        server.stop()


def run(*, requests: int) -> BenchResult:
    now = int(time.time())
    deliveries = signed_requests(requests, now)
    handle, handler = _in_process(deliveries, now)
    sends = _sqs_send(deliveries[: max(50, requests // 10)])
    result = BenchResult()
    p50 = percentile(handle, 0.5)
    result.rows += [
        Measurement(
            "receiver warm",
            "verify + validate + build message, p50",
            ms(p50),
            goal=f"≤ {ms(GOAL_SECONDS)}",
            met=p50 <= GOAL_SECONDS,
        ),
        Measurement("receiver warm", "same, p99", ms(percentile(handle, 0.99))),
        Measurement("receiver warm", "whole handler (+ logger, metrics), p50", ms(percentile(handler, 0.5))),
        Measurement("receiver warm", "SQS SendMessage to moto on 127.0.0.1, p50", ms(percentile(sends, 0.5))),
    ]
    result.figures["receiver_handler_p50"] = percentile(handler, 0.5)
    result.figures["sqs_send_p50"] = percentile(sends, 0.5)
    rows = [
        [label, str(len(values)), ms(percentile(values, 0.5)), ms(percentile(values, 0.99)), ms(max(values))]
        for label, values in (
            ("`Receiver.handle` (SQS client in memory)", handle),
            ("`lambda_handler` (+ Powertools logger and metrics)", handler),
            ("`EventQueue.enqueue` to moto server", sends),
        )
    ]
    result.details = (
        f"{requests} distinct signed `task.created` deliveries (the sample event, {len(deliveries[0]['body'])}"
        " bytes); the first tenth of each series is left out as warm-up.\n\n"
        + markdown_table(["what", "samples", "p50", "p99", "max"], rows)
        + "\n\nmoto's SQS is a Python server on the same two cores: its send time says what the call costs"
        " here, not what it costs against SQS in AWS."
    )
    return result
