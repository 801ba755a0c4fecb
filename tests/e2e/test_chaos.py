"""Chaos convergence through the whole local stack: Close → signed webhook over HTTP → receiver →
SQS FIFO → worker → ChartMogul, with the reconciler on its schedule.

Reps create, edit, reassign, redate, move, complete, reopen and delete Close tasks while:
- Close's webhooks are delivered twice (20%), out of order (10%) or never (5%: they exist only
  in Close's event log, so only the reconciler can find them);
- ChartMogul answers 5xx (10%), 429 (5%) or applies a write and loses the answer (2%), on top of
  its own 40 requests/s window;
- the worker is killed in the middle of a batch several times: part of the batch is applied,
  then the invocation dies, so no record is deleted or reported and the whole batch comes back
  after the visibility timeout;
- with SYNC_COMPLETION_BACK on, customer-success people complete 10% of the tasks in ChartMogul,
  which the reconciler writes back to Close (or undoes, when a rep changed the task later).

Once the stack is quiet (queue empty, nothing in flight) and a reconcile pass has run after the
last change, every live Close task has exactly one ChartMogul task with the right fields, a
deleted one has none, and the DLQ is empty. The run's log output never holds a key.

Size: TASKSYNC_CHAOS=full (`make chaos`) runs ≥ 2,000 events over ≥ 500 tasks; the default is
the `make test` size.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import pytest
import requests

from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync_dev.local.options import FAKE_AWS_CREDENTIALS
from tasksync_dev.local.sample import signed_delivery
from tasksync_dev.local.sqs_source import Invoke
from tasksync_dev.local.stack import LocalStack
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.e2e.sandbox_stack import sandbox_environment, sims
from tests.support.local_runner import poll
from tests.support.log_capture import LogTap, leaked


@dataclass(frozen=True)
class ChaosSize:
    tasks: int
    events: int
    worker_kills: int
    reconcile_seconds: int
    settle_seconds: float


SIZES = {
    "small": ChaosSize(tasks=80, events=300, worker_kills=4, reconcile_seconds=5, settle_seconds=150.0),
    # Each reconcile pass replays the last five minutes of the log, hundreds of events at this
    # size. In AWS, SQS drops those re-sends (5-minute dedup window); moto only dedups against
    # messages still queued, so here the worker gets them all again (the idempotency record
    # answers): every pass is a burst of redeliveries, on top of the chaos.
    "full": ChaosSize(tasks=520, events=2000, worker_kills=10, reconcile_seconds=30, settle_seconds=900.0),
}
SIZE = SIZES["full" if os.environ.get("TASKSYNC_CHAOS", "").strip().lower() == "full" else "small"]

DUPLICATE_RATE, REORDER_RATE, DROP_RATE = 0.20, 0.10, 0.05
CHARTMOGUL_FAULTS = FaultPlan(error_rate=0.10, rate_limit_rate=0.05, lose_response_rate=0.02, seed=20261)
VISIBILITY_SECONDS = 3  # a killed batch is back within seconds
CREATE_LEASE_SECONDS = 35
LEADS = {"acme": "ops@acme.example", "globex": "finance@globex.example", "initech": "cto@initech.example"}
REPS = ("alice", "bob", None)  # None: an unassigned task, which goes to DEFAULT_ASSIGNEE
UNASSIGNED_GOES_TO = "success@example.com"
OPERATIONS = ("edit", "reassign", "redate", "move", "complete", "reopen", "complete", "edit")
DELETE_SHARE = 0.12
CLOSE_ATTEMPTS = 5
MAX_BACKLOG = 200  # queued events the load lets pile up before it waits for the worker
CS_SHARE = 0.10  # of the tasks, completed by a CS person in ChartMogul during the load


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
        sys.settrace(die_after_chartmogul_creates)  # this thread only: the worker's
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


class CloseReps:
    """Reps working in the sandbox Close: the load."""

    def __init__(self, close: CloseSimulator, ids: dict[str, str], rng: random.Random) -> None:
        self.close = close
        self.ids = ids
        self.rng = rng
        self.numbers: dict[str, int] = {}
        self.edits = 0

    def text(self, number: int) -> str:
        self.edits += 1
        return f"Chaos #{number:04d} call about the renewal, take {self.edits}"

    def rep(self) -> str | None:
        choice = self.rng.choice(REPS)
        return None if choice is None else self.ids[choice]

    def date(self) -> str:
        return f"2026-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"

    def create(self) -> None:
        number = len(self.numbers) + 1
        task = self.close.create_task(
            lead_id=self.ids[self.rng.choice(list(LEADS))],
            text=self.text(number),
            assigned_to=self.rep(),
            date=self.date(),
        )
        self.numbers[task["id"]] = number

    def change(self, task_id: str) -> None:
        task = self.close.tasks.get(task_id)
        if task is None:
            return
        match self.rng.choice(OPERATIONS):
            case "edit":
                self.close.update_task(task_id, text=self.text(self.numbers[task_id]))
            case "reassign":
                self.close.reassign_task(task_id, self.rep())
            case "redate":
                self.close.update_task(task_id, date=self.date())
            case "move":
                self.close.move_task(task_id, self.ids[self.rng.choice(list(LEADS))])
            case "complete" if not task["is_complete"]:
                self.close.complete_task(task_id)
            case "reopen" if task["is_complete"]:
                self.close.reopen_task(task_id)
            case _:
                self.close.update_task(task_id, text=self.text(self.numbers[task_id]))

    def delete(self, task_id: str) -> None:
        if task_id in self.close.tasks:
            self.close.delete_task(task_id)


class CsPeople:
    """Customer-success people ticking tasks off in ChartMogul (the sync-back's load)."""

    def __init__(self, chartmogul: ChartMogulSimulator, counts: ChaosCounts, rng: random.Random) -> None:
        self.chartmogul = chartmogul
        self.counts = counts
        self.targets = {f"{n:04d}" for n in rng.sample(range(1, SIZE.tasks + 1), k=int(SIZE.tasks * CS_SHARE))}

    def act(self) -> None:
        """Complete every target task mirrored by now and still open in ChartMogul, once."""
        for number, mirrors in _group_by_number(self.chartmogul).items():
            if number in self.targets and len(mirrors) == 1 and mirrors[0]["completed_at"] is None:
                self.targets.discard(number)
                self.chartmogul.person_completes(mirrors[0]["task_uuid"])
                self.counts.cs_completions += 1


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


@pytest.fixture
def chaos_stack(tmp_path: Path) -> Iterator[LocalStack]:
    environment = sandbox_environment(
        tmp_path,
        RECONCILE_INTERVAL_SECONDS=str(SIZE.reconcile_seconds),
        LOCAL_QUEUE_VISIBILITY_SECONDS=str(VISIBILITY_SECONDS),
        # A worker killed after a create holds its lease this long (the default is 120 s), so
        # the run waits that out for each such kill.
        CREATE_LEASE_SECONDS=str(CREATE_LEASE_SECONDS),
        SYNC_COMPLETION_BACK="true",
    )
    stack = LocalStack(environment)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def queue_depth(stack: LocalStack, queue_url: str) -> int:
    """Messages in the queue, visible or in flight."""
    sqs = boto3.client(
        "sqs",
        endpoint_url=stack.endpoints["sqs"],
        region_name=stack.options.region,
        aws_access_key_id=FAKE_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_AWS_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def dead_letters(stack: LocalStack) -> int:
    return queue_depth(stack, stack.dead_letter_queue_url)


def settle(stack: LocalStack, timeout: float) -> None:
    """Quiet, then one whole reconcile pass started after the quiet, then quiet again."""
    stack.wait_until_idle(timeout=timeout)
    runs = stack.reconcile_runs
    poll(lambda: stack.reconcile_runs >= runs + 2, what="a full reconcile pass after the load", timeout=timeout)
    stack.wait_until_idle(timeout=timeout)


def mismatches(close: CloseSimulator, chartmogul: ChartMogulSimulator, reps: CloseReps) -> tuple[list[str], int]:
    """What differs between Close and ChartMogul, and how many ChartMogul tasks are duplicates."""
    customers = {c["email"]: c["uuid"] for c in chartmogul.customers.values()}
    lead_customer = {lead_id: customers[LEADS[short]] for short, lead_id in reps.ids.items() if short in LEADS}
    users = {user_id: user["email"] for user_id, user in close.users.items()}
    mirrors: dict[str, list[dict[str, Any]]] = {}
    for mirror in chartmogul.live_tasks():
        number = mirror["task_details"].split("#", 1)[-1][:4]
        mirrors.setdefault(number, []).append(mirror)
    problems: list[str] = []
    live = close.tasks
    for task_id, number in reps.numbers.items():
        found = mirrors.pop(f"{number:04d}", [])
        task = live.get(task_id)
        if task is None:
            if found:
                problems.append(f"deleted {task_id} still has {len(found)} ChartMogul task(s)")
            continue
        if len(found) != 1:
            problems.append(f"{task_id} has {len(found)} ChartMogul tasks")
            continue
        [mirror] = found
        expected = {
            "task_details": task["text"],
            "assignee": users[task["assigned_to"]] if task["assigned_to"] else UNASSIGNED_GOES_TO,
            "due_date": task["date"],
            "completed": bool(task["is_complete"]),
            "customer_uuid": lead_customer[task["lead_id"]],
        }
        actual = {
            "task_details": mirror["task_details"],
            "assignee": mirror["assignee"],
            "due_date": str(mirror["due_date"])[:10],
            "completed": mirror["completed_at"] is not None,
            "customer_uuid": mirror["customer_uuid"],
        }
        wrong = {name: (actual[name], value) for name, value in expected.items() if actual[name] != value}
        if wrong:
            problems.append(f"{task_id}: {wrong} (actual, expected)")
    problems += [f"ChartMogul task(s) for no Close task: {key}" for key in mirrors]
    duplicates = sum(len(found) - 1 for found in _group_by_number(chartmogul).values() if len(found) > 1)
    return problems, duplicates


def _group_by_number(chartmogul: ChartMogulSimulator) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for mirror in chartmogul.live_tasks():
        groups.setdefault(mirror["task_details"].split("#", 1)[-1][:4], []).append(mirror)
    return groups


def run_load(stack: LocalStack, counts: ChaosCounts, rng: random.Random) -> CloseReps:
    close, _ = sims(stack)
    reps = CloseReps(close, stack.sandbox_ids, rng)
    webhooks = FlakyWebhooks(stack, counts, rng)
    cs_people = CsPeople(sims(stack)[1], counts, rng)
    rounds = 0
    while len(reps.numbers) < SIZE.tasks or counts.events < SIZE.events:
        rounds += 1
        for _ in range(min(10, max(0, SIZE.tasks - len(reps.numbers)))):
            reps.create()
        candidates = list(close.tasks)
        for task_id in rng.sample(candidates, k=min(len(candidates), 25)):
            reps.change(task_id)
        for task_id in candidates:
            # Spread over the run's rounds (SIZE.tasks / 10 of them), about DELETE_SHARE of the tasks go.
            if rng.random() < DELETE_SHARE * 10 / SIZE.tasks:
                reps.delete(task_id)
        webhooks.deliver_round()
        cs_people.act()
        # Close's pace must not outrun the one-process local stack for long: moto's SQS gets
        # slower with every message waiting (each receive looks at all of them).
        poll(
            lambda: queue_depth(stack, stack.event_queue_url) <= MAX_BACKLOG,
            what="the worker catching up",
            timeout=SIZE.settle_seconds,
        )
    webhooks.flush()
    return reps


def test_the_stack_converges_under_chaos(chaos_stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack = chaos_stack
    close, chartmogul = sims(stack)
    secrets = [close.api_key, chartmogul.api_key, str(stack.state()["webhook"]["signature_key"])]
    tap = LogTap().attach()
    counts = ChaosCounts()
    rng = random.Random(5)
    try:
        stack.wrap_worker(BatchKiller(counts, SIZE.worker_kills))
        chartmogul.inject(CHARTMOGUL_FAULTS)
        started = time.monotonic()
        reps = run_load(stack, counts, rng)
        loaded = time.monotonic()
        stack.wait_until_idle(timeout=SIZE.settle_seconds)
        chartmogul.clear_faults()
        settle(stack, SIZE.settle_seconds)
        settled = time.monotonic()
    finally:
        tap.detach()
    problems, duplicates = mismatches(close, chartmogul, reps)
    faults = Counter(call.fault for call in chartmogul.calls if call.fault)
    summary = (
        f"chaos ({'full' if SIZE is SIZES['full'] else 'small'}): {counts.events} events over {len(reps.numbers)} "
        f"tasks; {counts.deliveries} deliveries ({counts.duplicates} duplicated, {counts.reordered} reordered, "
        f"{counts.dropped} dropped, {counts.redeliveries} retried after a 5xx), answers {dict(counts.answers)}; "
        f"ChartMogul faults {dict(faults)}; "
        f"worker batches {counts.worker_batches}, killed {counts.worker_kills} ({counts.mid_record_kills} right "
        f"after a ChartMogul create), redelivered records "
        f"{counts.redelivered_records}; {counts.cs_completions} completed by CS in ChartMogul; "
        f"reconcile runs {stack.reconcile_runs}; final: {len(close.tasks)} live "
        f"Close tasks, {len(chartmogul.live_tasks())} ChartMogul tasks, {duplicates} duplicates, "
        f"{len(problems)} mismatches, {dead_letters(stack)} dead letters; "
        f"load {loaded - started:.0f}s, then quiet after {settled - loaded:.0f}s"
    )
    output = capsys.readouterr()
    with capsys.disabled():
        print("\n" + summary)
    assert counts.events >= SIZE.events
    assert len(reps.numbers) >= SIZE.tasks
    assert counts.worker_kills == SIZE.worker_kills, "the worker was not killed as often as planned"
    assert counts.mid_record_kills == SIZE.worker_kills // 2, "the worker was not killed after creates as planned"
    assert counts.dropped > 0
    assert counts.cs_completions > 0
    # 503: the queue write timed out under load; Close retries those, and so did we.
    assert set(counts.answers) <= {200, 202, 503}, counts.answers
    assert counts.undelivered == 0
    assert {"injected_429", "lost_response"} <= set(faults)
    assert any(fault.startswith("injected_5") for fault in faults)
    assert problems == [], "\n".join(problems[:20])
    assert duplicates == 0
    assert dead_letters(stack) == 0
    # The child processes' own logs (moto's, DynamoDB Local's) count too: the keys went through them.
    child_log_files = sorted(stack.options.local_dir.glob("*.log"))
    assert {log.name for log in child_log_files} >= {"moto-server.log", "dynamodb-local.log"}
    child_logs = "".join(log.read_text(errors="replace") for log in child_log_files)
    logged = tap.text + output.out + output.err + child_logs
    assert "the worker invocation failed" in logged  # the scan below saw the stack's output
    assert "event applied" in logged
    assert leaked(logged, secrets) == []
