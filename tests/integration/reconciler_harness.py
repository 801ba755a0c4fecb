"""A reconciler over real parts: the Close simulator over HTTP (with one-off faults), DynamoDB
Local, moto's SQS queues, and the engine as the worker that drains the queue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from tasksync.catch_up import Budget
from tasksync.dal.checkpoints import CheckpointStore, RunRecord
from tasksync.dal.close_api import CloseClient
from tasksync.dal.dead_letters import DeadLetterQueue
from tasksync.dal.queue import EventQueue
from tasksync.errors import ConcurrentUpdate, LeaseHeld, RetryableApiError
from tasksync.models.queue import QueuedEvent
from tasksync.reconciler import Reconciler, ReconcileReport, subscribed_pairs
from tasksync_dev.sandbox.close import BASE_PATH
from tests.integration.engine_harness import SyncWorld


@dataclass
class Fault:
    """Answer (or edit) the event-log requests of one pair: page 1, or the pages after it."""

    object_type: str
    action: str
    later_pages: bool = False  # False: the first page of a scan; True: a page reached by cursor
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    edit: Callable[[dict[str, Any]], None] | None = None
    times: int = 1

    def matches(self, method: str, url: str, params: dict[str, Any] | None) -> bool:
        query = params or {}
        return (
            self.times > 0
            and method == "GET"
            and re.search(r"/event/$", url) is not None
            and query.get("object_type") == self.object_type
            and query.get("action") == self.action
            and ("_cursor" in query) == self.later_pages
        )


class FaultySession(requests.Session):
    """Real HTTP to the simulator, except for the requests a `Fault` matches."""

    def __init__(self) -> None:
        super().__init__()
        self.faults: list[Fault] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        params = kwargs.get("params")
        for fault in self.faults:
            if fault.matches(str(method), str(url), params):
                fault.times -= 1
                if fault.status is not None:
                    return _answer(fault.status, {"error": "injected"}, fault.headers)
                response = super().request(method, url, *args, **kwargs)
                body = response.json()
                assert fault.edit is not None
                fault.edit(body)
                response._content = json.dumps(body).encode()
                return response
        return super().request(method, url, *args, **kwargs)


def _answer(status: int, body: Any, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **headers})
    return response


class Ticking:
    """A monotonic clock that moves ``step`` seconds every time it is read: budgets end after a
    fixed number of checks, whatever the machine's speed."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Subscriptions:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.asked = 0

    def subscription_ids(self) -> list[str]:
        self.asked += 1
        return self.ids


@dataclass
class ReconcilerWorld:
    world: SyncWorld
    sqs: Any
    queue_url: str
    dlq_url: str
    checkpoints: CheckpointStore
    session: FaultySession
    reconciler: Reconciler
    subscriptions: Subscriptions
    sleeps: list[float]

    def close_now(self) -> datetime:
        # The simulator's clock may have been moved forward (a backlog of days).
        return self.world.close._now()  # the simulator's own "now"

    def run(self, budget: Budget | None = None) -> ReconcileReport:
        return self.reconciler.run(budget=budget or Budget(60))

    def messages(self, url: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url or self.queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=30,
            ).get("Messages", [])
            if not batch:
                return found
            found += batch

    def drain(self) -> int:
        """Be the worker: apply every queued event (retrying what is retryable); how many."""
        applied = 0
        while messages := self.messages():
            for message in messages:
                event = QueuedEvent.from_message_body(message["Body"]).event
                for _ in range(20):
                    try:
                        self.world.engine.apply(event)
                        break
                    except LeaseHeld as held:
                        self.world.clock.advance(held.seconds_left + 1)
                    except (RetryableApiError, ConcurrentUpdate):
                        continue
                applied += 1
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return applied

    def deliver(self, event: dict[str, Any]) -> None:
        """A webhook that arrived: the worker applied it."""
        self.world.apply_until_done(event)

    def record(self) -> dict[str, Any] | None:
        return RunRecord(self.checkpoints.client, self.checkpoints.table_name).read()

    def checkpoint_all(self, moment: datetime) -> None:
        for object_type, action in subscribed_pairs(self.world.services.settings.task_types):
            self.checkpoints.advance(object_type, action, moment)


def make_reconciler_world(world: SyncWorld, queues: Any, dynamodb: Any, state_table: str) -> ReconcilerWorld:
    session = FaultySession()
    close = CloseClient(
        base_url=f"{world.close.url}{BASE_PATH}",
        api_key=world.close.api_key,
        connect_timeout=2.0,
        read_timeout=5.0,
        session=session,
    )
    checkpoints = CheckpointStore(dynamodb, state_table)
    subscription = world.close.create_subscription(
        "https://example.invalid/webhooks/close", [{"object_type": "task.lead", "action": "created"}]
    )
    subscriptions = Subscriptions([subscription["id"]])
    sleeps: list[float] = []
    holder: list[ReconcilerWorld] = []
    reconciler = Reconciler(
        settings=world.services.settings,
        close=close,
        links=world.links,
        checkpoints=checkpoints,
        queue=EventQueue(queues.client, queues.events_url),
        poison=DeadLetterQueue(queues.client, queues.dlq_url),
        subscriptions=subscriptions,
        clock=lambda: holder[0].close_now().timestamp(),
        sleep=sleeps.append,
    )
    made = ReconcilerWorld(
        world=world,
        sqs=queues.client,
        queue_url=queues.events_url,
        dlq_url=queues.dlq_url,
        checkpoints=checkpoints,
        session=session,
        reconciler=reconciler,
        subscriptions=subscriptions,
        sleeps=sleeps,
    )
    holder.append(made)
    return made


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
