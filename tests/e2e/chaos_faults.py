"""What goes wrong in the chaos run, and how often it did: the worker killed mid-batch, Close's webhooks
duplicated, reordered, dropped or refused, and ChartMogul's injected faults.
"""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import requests

from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync_dev.local.sample import signed_delivery
from tasksync_dev.local.sqs_source import Invoke
from tasksync_dev.local.stack import LocalStack
from tasksync_dev.sandbox._server import FaultPlan
from tests.e2e.sandbox_stack import sims

DUPLICATE_RATE, REORDER_RATE, DROP_RATE = 0.20, 0.10, 0.05
CHARTMOGUL_FAULTS = FaultPlan(error_rate=0.10, rate_limit_rate=0.05, lose_response_rate=0.02, seed=20261)
CLOSE_ATTEMPTS = 5


class WorkerKilled(Exception):
    """The worker's process died mid-batch (Lambda timeout, out of memory, a crash)."""


TraceFunction = Callable[[FrameType, str, Any], Any]


class WorkerDied(BaseException):
    """Raised inside the worker at the instant it dies. A BaseException, so that no `except
    Exception` in the worker or in Powertools handles it: a killed process handles nothing (its
    idempotency record stays in progress, its create lease stays taken)."""


def die_after_chartmogul_creates(frame: FrameType, event: str, _arg: Any) -> TraceFunction | None:
    """sys.settrace hook: the worker dies as ChartMogul's answer to a create comes back, before
    the link is saved: the one moment a crash could leave a ChartMogul task nobody knows of."""
    if event != "call" or frame.f_code is not ChartMogulClient.create_task.__code__:
        return None

    def on_return(_frame: FrameType, event: str, _arg: Any) -> TraceFunction | None:
        if event == "return":
            raise WorkerDied("killed with ChartMogul's create answer in hand")
        return on_return

    return on_return


@dataclass
class ChaosCounts:
    events: int = 0
    deliveries: int = 0
    redeliveries: int = 0  # Close's own retries of a delivery answered with a 5xx
    duplicates: int = 0
    reordered: int = 0
    dropped: int = 0
    undelivered: int = 0  # still 5xx after CLOSE_ATTEMPTS tries
    answers: Counter[int] = field(default_factory=Counter)
    worker_batches: int = 0
    worker_kills: int = 0
    mid_record_kills: int = 0
    redelivered_records: int = 0
    cs_completions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class BatchKiller:
    """Wraps the worker: every so often it dies in the middle of a batch.

    Kills alternate between two instants: between records (the first half of the batch applied,
    then the invocation dies), and inside a record, right after ChartMogul created a task and
    before the link is saved (armed until a batch makes a create).
    """

    def __init__(self, counts: ChaosCounts, kills: int, every: int = 7) -> None:
        self.counts = counts
        self.kills_left = kills
        self.every = every
        self.mid_record_armed = False

    def __call__(self, invoke: Invoke) -> Invoke:
        def invocation(event: dict[str, Any]) -> Any:
            records = event["Records"]
            with self.counts.lock:
                self.counts.worker_batches += 1
                self.counts.redelivered_records += sum(
                    int(r["attributes"].get("ApproximateReceiveCount", "1")) > 1 for r in records
                )
                due = self.kills_left > 0 and self.counts.worker_batches % self.every == 0
                if due and not self.mid_record_armed and self.counts.worker_kills % 2 == 1:
                    self.mid_record_armed = True
                    self.kills_left -= 1
                between_records = due and not self.mid_record_armed and len(records) >= 2
                if between_records:
                    self.kills_left -= 1
                    self.counts.worker_kills += 1
                mid_record = self.mid_record_armed
            if mid_record:
                return self._die_mid_record(invoke, event)
            if not between_records:
                return invoke(event)
            invoke({**event, "Records": records[: len(records) // 2]})
            raise WorkerKilled(f"killed after {len(records) // 2} of {len(records)} records")

        return invocation

    def _die_mid_record(self, invoke: Invoke, event: dict[str, Any]) -> Any:
        # This thread, and the threads the worker starts for the tasks of the batch (PARALLEL_TASKS).
        sys.settrace(die_after_chartmogul_creates)
        threading.settrace(die_after_chartmogul_creates)
        try:
            return invoke(event)
        except WorkerDied as died:
            with self.counts.lock:
                self.mid_record_armed = False
                self.counts.worker_kills += 1
                self.counts.mid_record_kills += 1
            raise WorkerKilled(str(died)) from None
        finally:
            sys.settrace(None)
            threading.settrace(None)  # type: ignore[arg-type]


class FlakyWebhooks:
    """Close's webhook delivery, duplicating, reordering and dropping as it goes."""

    def __init__(self, stack: LocalStack, counts: ChaosCounts, rng: random.Random) -> None:
        state = stack.state()
        self.url = stack.receiver_url
        self.subscription_id = str(state["webhook"]["subscription_id"])
        self.signature_key = str(state["webhook"]["signature_key"])
        self.counts = counts
        self.rng = rng
        self.close = sims(stack)[0]
        self.seen: set[str] = set()
        self.later: list[dict[str, Any]] = []  # duplicates and held-back events for the next round
        self.session = requests.Session()

    def new_events(self) -> list[dict[str, Any]]:
        fresh = [e for e in self.close.events_matching(self.subscription_id) if e["id"] not in self.seen]
        self.seen.update(e["id"] for e in fresh)
        self.counts.events += len(fresh)
        return fresh

    def deliver_round(self) -> None:
        schedule, self.later = self.later, []
        for event in self.new_events():
            if self.rng.random() < DROP_RATE:
                self.counts.dropped += 1
                continue
            if self.rng.random() < REORDER_RATE:
                self.counts.reordered += 1
                self.later.append(event)  # arrives after events that happened after it
            else:
                schedule.append(event)
            if self.rng.random() < DUPLICATE_RATE:
                self.counts.duplicates += 1
                (self.later if self.rng.random() < 0.5 else schedule).append(event)
        for event in schedule:
            self.post(event)

    def flush(self) -> None:
        while self.later:
            self.deliver_round()

    def post(self, event: dict[str, Any]) -> None:
        """Deliver once; like Close, try again (signed afresh) while the answer is a 5xx."""
        self.counts.deliveries += 1
        for attempt in range(CLOSE_ATTEMPTS):
            body, headers = signed_delivery(event, self.subscription_id, self.signature_key)
            status = self.session.post(self.url, data=body, headers=headers, timeout=30).status_code
            self.counts.answers[status] += 1
            self.counts.redeliveries += attempt > 0
            if status < 500:
                return
        self.counts.undelivered += 1
