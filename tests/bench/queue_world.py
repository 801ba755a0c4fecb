"""The world of the queue benchmarks: the event queue on moto, worker OS processes polling it.

The simulators and DynamoDB Local are shared with the engine benchmarks (`world.backends`);
this adds moto's SQS (a child process, as in `make run`), the template's queues, and worker
processes (`tests.bench.worker_process`), each an execution environment of its own running
functions/worker/app.py, as Lambda runs them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from tasksync.config import WorkerSettings
from tasksync.dal.queue import MAX_BATCH_ENTRIES, EventQueue
from tasksync.models.queue import QueuedEvent
from tasksync_dev.local.sqs_source import queue_counts
from tasksync_dev.local.template import create_queues
from tests.bench.moto_fifo import FifoGroupingMotoServer
from tests.bench.world import Backends
from tests.integration.engine_harness import SyncWorld
from tests.support.template import REPO_ROOT

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"
# The account-wide budget the workers share (the template's default).
REQUESTS_PER_SECOND = 38
# What the workers run with: the defaults a deployment gets.
PARALLEL_TASKS = WorkerSettings.model_fields["parallel_tasks"].default
SETTLE_SECONDS = WorkerSettings.model_fields["settle_seconds"].default


@contextlib.contextmanager
def moto_sqs() -> Iterator[str]:
    """moto's server in a child process for the whole run (FIFO batches grouped as SQS does)."""
    server = FifoGroupingMotoServer(Path(tempfile.mkdtemp(prefix="tasksync-bench-")) / "moto.log")
    endpoint = server.start()
    try:
        yield endpoint
    finally:
        server.stop()


@dataclass
class WorkerFleet:
    """Worker processes polling one queue; `stop()` returns what each one's pacer did."""

    processes: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def stop(self) -> list[dict[str, Any]]:
        for process, _ in self.processes:
            process.send_signal(signal.SIGTERM)
        stats = []
        for process, path in self.processes:
            process.wait(timeout=60)
            stats.append(json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"errors": ["no stats"]})
        return stats


@dataclass
class QueueWorld:
    sqs: SQSClient
    queue_url: str
    environment: dict[str, str]
    logs: Path

    def enqueue(self, events: Iterable[dict[str, Any]], *, senders: int = 1) -> int:
        """Queue the events, in order, or with ``senders`` > 1 as that many receivers at once
        (batches of 10 each): Close delivers webhooks concurrently, and each receiver
        invocation sends its own. Order then holds only between calls, not within one."""
        queued = [QueuedEvent.from_raw(e) for e in events]
        step = MAX_BATCH_ENTRIES if senders > 1 else max(1, len(queued))
        chunks = [queued[n : n + step] for n in range(0, len(queued), step)]
        with ThreadPoolExecutor(max_workers=max(1, senders), thread_name_prefix="receiver") as pool:
            reports = list(pool.map(EventQueue(self.sqs, self.queue_url).enqueue_many, chunks))
        failures = [failure for report in reports for failure in report.failures]
        if failures:
            raise RuntimeError(f"enqueue failed: {failures[:3]}")
        return sum(len(report.sent) for report in reports)

    def start_workers(self, count: int) -> WorkerFleet:
        fleet = WorkerFleet()
        for index in range(count):
            stats = self.logs / f"worker-{index}-{uuid.uuid4().hex[:6]}.json"
            log = (self.logs / f"worker-{index}.log").open("ab")
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.bench.worker_process", str(stats)],
                env=self.environment,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            fleet.processes.append((process, stats))
        # Each process signals once its worker is built (the cold start), before its first
        # receive: the figures then measure running workers, not five interpreters starting on
        # two cores at once.
        wait_until(
            lambda: all(p.poll() is not None or s.with_suffix(".ready").exists() for p, s in fleet.processes),
            timeout=120,
        )
        return fleet

    def depth(self) -> int:
        return sum(queue_counts(self.sqs, self.queue_url))


@contextlib.contextmanager
def queue_world(sqs_endpoint: str, dynamodb_endpoint: str, parts: Backends, world: SyncWorld) -> Iterator[QueueWorld]:
    """Fresh queues from template.yaml, and the worker function's environment for this world."""
    sqs = boto3.client(
        "sqs", endpoint_url=sqs_endpoint, region_name=REGION, aws_access_key_id="bench", aws_secret_access_key="bench"
    )
    urls = create_queues(sqs, f"b{uuid.uuid4().hex[:10]}")
    settings = world.services.settings
    layers = REPO_ROOT / "layers" / "tasksync"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))},
        "PYTHONPATH": os.pathsep.join([str(layers), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "STATE_TABLE": parts.state_table,
        "IDEMPOTENCY_TABLE": parts.idempotency_table,
        "QUEUE_URL": urls["EventQueue"],
        "DLQ_URL": urls["EventDLQ"],
        "CLOSE_API_URL": settings.close_api_url,
        "CHARTMOGUL_API_URL": settings.chartmogul_api_url,
        "CLOSE_API_KEY": parts.close.api_key,
        "CHARTMOGUL_API_KEY": parts.chartmogul.api_key,
        "DEFAULT_ASSIGNEE": settings.default_assignee or "",
        "ASSIGNEE_MAP": json.dumps(settings.assignee_map),
        "CHARTMOGUL_REQUESTS_PER_SECOND": str(REQUESTS_PER_SECOND),
        "PARALLEL_TASKS": str(PARALLEL_TASKS),
        "SETTLE_SECONDS": str(SETTLE_SECONDS),
        "POWERTOOLS_SERVICE_NAME": "worker",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "TaskSyncBench",
    }
    logs = Path(tempfile.mkdtemp(prefix="tasksync-bench-workers-"))
    # The simulators stand in for remote services but run in this process, whose heap (every
    # task and call they recorded) grows with the run: a full collection then stalled their
    # clocks by up to 80 ms, which bunched the requests the ChartMogul simulator counts (its
    # own 429s) and is no part of what is measured. The cyclic collector waits for the end.
    gc.disable()
    try:
        yield QueueWorld(sqs, urls["EventQueue"], environment, logs)
    finally:
        gc.enable()
        for url in urls.values():
            with contextlib.suppress(Exception):
                sqs.delete_queue(QueueUrl=url)


def wait_until(condition: Any, *, timeout: float, poll: float = 0.02) -> float:
    """Poll ``condition()`` until true; return the moment (perf_counter) it became true."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return time.perf_counter()
        time.sleep(poll)
    raise TimeoutError(f"not done within {timeout:.0f} s")
