"""The local stack with a 3-second reconcile interval: passes enqueue what webhooks lost, no more.

200 task events are delivered by webhook (100 tasks created, each then updated). Once the queue
is quiet, the next five passes enqueue nothing and the worker applies nothing. Then 100 more
tasks are created and one webhook in ten is lost: the passes enqueue exactly those ten.

The counts come from the reconciler's run record (`tasksync status` reads the same item) and
from a wrapper around the worker's invocations. While events are being made and delivered, the
test holds the reconciler's run lock, so that a pass never races a webhook still in flight:
the passes it skips meanwhile are not counted, exactly as in AWS.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasksync.dal.aws import aws_client
from tasksync.dal.checkpoints import RunLock, RunRecord
from tasksync_dev.local.stack import LocalStack
from tests.e2e.sandbox_stack import deliver, mirrored, sandbox_environment, sims
from tests.support.local_runner import START_DEADLINE_SECONDS, poll

INTERVAL_SECONDS = 3
QUIET_PASSES = 5
SETTLE_SECONDS = 180.0


class Counted:
    """Records the worker's invocations pass through (SQS records handed to the handler)."""

    def __init__(self) -> None:
        self.records = 0
        self.lock = threading.Lock()

    def wrap(self, invoke: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        def counted(event: dict[str, Any]) -> Any:
            with self.lock:
                self.records += len(event.get("Records", []))
            return invoke(event)

        return counted


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(
        sandbox_environment(tmp_path_factory.mktemp("reconcile"), RECONCILE_INTERVAL_SECONDS=str(INTERVAL_SECONDS))
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _record(stack: LocalStack) -> dict[str, Any]:
    found = RunRecord(aws_client("dynamodb"), stack.environment["STATE_TABLE"]).read()
    return found or {"runs": 0, "totals": {}, "last": {}}


def _with_passes_held(stack: LocalStack, work: Callable[[], None]) -> None:
    """Run ``work`` while no reconcile pass can run (the passes skip themselves)."""
    lock = RunLock(aws_client("dynamodb"), stack.environment["STATE_TABLE"], "reconcile")
    owner = f"test-{uuid.uuid4().hex}"
    poll(lambda: lock.acquire(owner, 600), what="the run lock (a pass was running)", timeout=60)
    try:
        work()
        stack.wait_until_idle(timeout=SETTLE_SECONDS)
    finally:
        lock.release(owner)


def _passes(stack: LocalStack, count: int) -> tuple[int, int, int]:
    """Wait for ``count`` more complete passes; (passes, events seen, events enqueued) in them."""
    before = _record(stack)
    poll(
        lambda: _record(stack)["runs"] >= before["runs"] + count,
        what=f"{count} reconcile passes",
        timeout=SETTLE_SECONDS,
    )
    after = _record(stack)

    def delta(name: str) -> int:
        return int(after["totals"].get(name, 0)) - int(before["totals"].get(name, 0))

    return after["runs"] - before["runs"], delta("events_seen"), delta("events_enqueued")


def test_passes_enqueue_nothing_when_nothing_was_missed_and_exactly_what_was_lost(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    close, _ = sims(stack)
    counted = Counted()
    stack.wrap_worker(counted.wrap)
    due = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    poll(lambda: _record(stack)["runs"] >= 1, what="the first pass", timeout=START_DEADLINE_SECONDS)

    def make_tasks(prefix: str, count: int) -> list[dict[str, Any]]:
        return [
            close.create_task(
                lead_id=stack.sandbox_ids["acme"],
                text=f"{prefix} {n}",
                assigned_to=stack.sandbox_ids["alice"],
                date=due,
            )
            for n in range(count)
        ]

    def delivered(events: list[dict[str, Any]]) -> None:
        for event in events:
            answer = deliver(stack, event)
            assert answer.status_code == 202, answer.text

    # 200 events, every webhook delivered.
    first = f"quiet {uuid.uuid4().hex[:6]}"

    def all_delivered() -> None:
        tasks = make_tasks(first, 100)
        for task in tasks:
            close.update_task(task["id"], text=f"{task['text']} (changed)")
        start = len(close.events) - 200
        events = close.events[start:]
        assert len(events) == 200
        delivered(events)

    _with_passes_held(stack, all_delivered)
    assert len(mirrored(stack, first)) == 100
    records_before = counted.records
    passes, seen, enqueued = _passes(stack, QUIET_PASSES)
    quiet_records = counted.records - records_before
    assert enqueued == 0
    assert quiet_records == 0  # nor any parked retry: nothing is parked here
    assert seen >= 200 * passes  # every pass re-read the whole window (5-minute overlap)

    # 100 more events, one webhook in ten lost.
    second = f"lossy {uuid.uuid4().hex[:6]}"
    lost: list[str] = []

    def some_lost() -> None:
        tasks = make_tasks(second, 100)
        events = close.events[-100:]
        lost.extend(event["object_id"] for event in events[::10])
        delivered([event for event in events if event["object_id"] not in lost])
        assert len(tasks) == 100

    _with_passes_held(stack, some_lost)
    records_before = counted.records
    before = _record(stack)
    poll(lambda: len(mirrored(stack, second)) == 100, what="the lost tasks in ChartMogul", timeout=SETTLE_SECONDS)
    stack.wait_until_idle(timeout=SETTLE_SECONDS)
    passes_after, _, enqueued_after = _passes(stack, 3)  # and a few quiet passes more
    after = _record(stack)
    enqueued_lossy = int(after["totals"]["events_enqueued"]) - int(before["totals"].get("events_enqueued", 0))
    lossy_records = counted.records - records_before
    assert len(lost) == 10
    assert enqueued_lossy == 10
    assert enqueued_after == 0
    assert lossy_records == 10
    with capsys.disabled():
        print(
            f"\nreconcile: {passes} quiet passes over 200 delivered events: {enqueued} enqueued, "
            f"{quiet_records} worker records, {seen} log events read; "
            f"10 of 100 webhooks lost: {enqueued_lossy} enqueued, {lossy_records} worker records, "
            f"then {passes_after} passes enqueued {enqueued_after}"
        )


def test_the_run_record_reaches_status(stack: LocalStack) -> None:
    record = _record(stack)
    assert record["runs"] >= 1
    assert {"events_seen", "events_already_applied", "events_enqueued"} <= set(record["last"])
