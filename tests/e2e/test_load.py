"""Load on the local receiver: signed webhooks from 50 concurrent senders, none lost.

Every delivery is a distinct Close task's `created` event, posted over HTTP to the receiver and
signed as Close signs it. A sender answered with anything but 2xx retries, as Close would. The
reconciler runs once at start-up only, so every task that reaches ChartMogul came through the
webhook path. The acceptance rate and latencies are printed, never asserted on.

Size: TASKSYNC_CHAOS=full (`make chaos`) sends 1,000; the default (`make test`) 200.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tasksync_dev.local.sample import signed_delivery
from tasksync_dev.local.stack import LocalStack
from tests.e2e.sandbox_stack import sandbox_environment, sims
from tests.support.local_runner import poll

FULL = os.environ.get("TASKSYNC_CHAOS", "").strip().lower() == "full"
WEBHOOKS = 1000 if FULL else 200
SENDERS = 50
ATTEMPTS = 6  # Close retries a failed delivery, backing off; six tries are plenty locally
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)


class Sender:
    """One of the concurrent senders: its own HTTP connection, Close's retry on non-2xx."""

    _local = threading.local()

    def __init__(self, url: str, subscription_id: str, signature_key: str) -> None:
        self.url = url
        self.subscription_id = subscription_id
        self.signature_key = signature_key
        self.lock = threading.Lock()
        self.first_answers: Counter[int | str] = Counter()
        self.latencies: list[float] = []
        self.retries = 0

    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def send(self, event: dict[str, Any]) -> bool:
        for attempt in range(ATTEMPTS):
            body, headers = signed_delivery(event, self.subscription_id, self.signature_key)
            started = time.perf_counter()
            try:
                status: int | str = self.session().post(self.url, data=body, headers=headers, timeout=30).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            elapsed = time.perf_counter() - started
            with self.lock:
                self.latencies.append(elapsed)
                if attempt == 0:
                    self.first_answers[status] += 1
                else:
                    self.retries += 1
            if isinstance(status, int) and 200 <= status < 300:
                return True
            if attempt < len(RETRY_DELAYS):
                time.sleep(RETRY_DELAYS[attempt])  # Close's retry schedule, shortened
        return False


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_concurrent_signed_webhooks_all_reach_chartmogul(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LocalStack(sandbox_environment(tmp_path, RECONCILE_INTERVAL_SECONDS="3600")) as stack:
        close, chartmogul = sims(stack)
        poll(lambda: stack.reconcile_runs >= 1, what="the start-up reconcile run")
        due = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
        tasks = [
            close.create_task(
                lead_id=stack.sandbox_ids[("acme", "globex", "initech")[n % 3]],
                text=f"Load #{n:04d} renewal call",
                assigned_to=stack.sandbox_ids[("alice", "bob")[n % 2]],
                date=due,
            )
            for n in range(WEBHOOKS)
        ]
        created = {e["object_id"]: e for e in close.events if e["action"] == "created"}
        events = [created[task["id"]] for task in tasks]
        state = stack.state()
        sender = Sender(stack.receiver_url, str(state["webhook"]["subscription_id"]), state["webhook"]["signature_key"])

        def mirrored() -> int:
            return len([t for t in chartmogul.live_tasks() if t["task_details"].startswith("Load #")])

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="close-sender") as senders:
            delivered = list(senders.map(sender.send, events))
        sending = time.perf_counter() - started

        poll(lambda: mirrored() >= WEBHOOKS, what=f"{WEBHOOKS} ChartMogul tasks", timeout=120 + WEBHOOKS * 0.2)
        synced = time.perf_counter() - started
        stack.wait_until_idle(timeout=60)
        details = [t["task_details"] for t in chartmogul.live_tasks() if t["task_details"].startswith("Load #")]

    accepted = sender.first_answers.get(202, 0)
    latencies = sender.latencies
    summary = (
        f"load: {WEBHOOKS} signed webhooks from {SENDERS} senders at once, sent in {sending:.1f}s "
        f"({WEBHOOKS / sending:.0f}/s); accepted at first try {accepted}/{WEBHOOKS} "
        f"({100 * accepted / WEBHOOKS:.1f}%), answers {dict(sender.first_answers)}, retries {sender.retries}; "
        f"latency p50 {1000 * statistics.median(latencies):.0f} ms, p95 {1000 * percentile(latencies, 0.95):.0f} ms, "
        f"p99 {1000 * percentile(latencies, 0.99):.0f} ms, max {1000 * max(latencies):.0f} ms; "
        f"all in ChartMogul after {synced:.1f}s"
    )
    with capsys.disabled():
        print("\n" + summary)
    assert all(delivered), "a delivery was refused five times"
    assert len(details) == WEBHOOKS
    assert len(set(details)) == WEBHOOKS, "a duplicate ChartMogul task"
    assert set(details) == {t["text"] for t in tasks}
