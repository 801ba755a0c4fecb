"""`ChartMogulApi` in memory, with fault injection.

Refusals are raised as the HTTP client raises them (AssigneeRejected for an unknown
assignee, CustomerUnknown for an unknown customer, NotFound for a missing task), so the
engine meets the same typed errors. Faults follow the HTTP client's classification:

- ``error_rate``: a 5xx *before* the request is applied; the engine sees OutcomeUnknown on a
  write (it cannot tell) and RetryableApiError on a read;
- ``lose_response_rate``: the request is applied, then the answer is lost (OutcomeUnknown on
  a write, RetryableApiError on a read), like a read timeout.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Unpack

from tasksync.errors import (
    AssigneeRejected,
    CustomerUnknown,
    NotFound,
    OutcomeUnknown,
    RetryableApiError,
)
from tasksync.models.chartmogul import ChartMogulCustomer, ChartMogulTask, TaskFields, TaskFilters, TaskPage

WRITES = frozenset({"POST", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Faults:
    error_rate: float = 0.0
    lose_response_rate: float = 0.0
    methods: frozenset[str] = frozenset({"GET", "POST", "PATCH", "DELETE"})
    seed: int | None = None


@dataclass(frozen=True)
class Call:
    method: str
    target: str  # "tasks" or a task uuid
    body: dict[str, Any] | None
    outcome: str  # "ok", "refused", "error", "lost", "missing"


@dataclass
class _Task:
    task_uuid: str
    customer_uuid: str
    task_details: str
    assignee: str
    due_date: str
    completed_at: str | None
    created_at: str
    updated_at: str = ""

    def model(self) -> ChartMogulTask:
        return ChartMogulTask.model_validate(self.__dict__)


def _echo_due_date(value: str) -> str:
    # ChartMogul echoes a date-only due date as a midnight timestamp.
    return f"{value}T00:00:00.000Z" if len(value) == 10 else value


@dataclass
class FakeChartMogul:
    """Tasks, customers and the users tasks can be assigned to."""

    reopen_via_null: bool = True  # whether PATCH completed_at=null reopens (UNVERIFIED upstream)
    # A ChartMogul that ignores the null may still stamp `updated_at` for the PATCH it accepted.
    ignored_null_stamps: bool = False
    calls: int = 0
    log: list[Call] = field(default_factory=list)
    tasks: dict[str, _Task] = field(default_factory=dict)
    customers: dict[str, ChartMogulCustomer] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)
    faults: Faults = field(default_factory=Faults)
    _rng: random.Random = field(default_factory=random.Random)
    _serial: int = 0
    # The time ChartMogul stamps `updated_at` with; make_world shares FakeClose's timeline, so
    # that a test can tell which side changed last.
    clock: Callable[[], str] | None = None

    # ------------------------------------------------------------------ control
    def add_user(self, email: str) -> None:
        self.users.add(email)

    def add_customer(self, *, name: str, email: str | None = None, external_id: str | None = None) -> str:
        uuid = f"cus_{self._next()}"
        self.customers[uuid] = ChartMogulCustomer(uuid=uuid, name=name, email=email, external_id=external_id)
        return uuid

    def inject(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)

    def clear_faults(self) -> None:
        self.faults = Faults()

    def live_tasks(self, customer_uuid: str | None = None) -> list[ChartMogulTask]:
        return [t.model() for t in self.tasks.values() if customer_uuid in (None, t.customer_uuid)]

    def writes(self) -> list[tuple[str, str]]:
        """(method, outcome) of every write attempted, in order."""
        return [(c.method, c.outcome) for c in self.log if c.method in WRITES]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.log if c.method == method]

    def reset_log(self) -> None:
        self.log.clear()

    def _now(self) -> str:
        if self.clock is not None:
            return self.clock()
        return (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=self._next())).isoformat()

    # ------------------------------------------------------------------ a person in ChartMogul
    def person_completes(self, task_uuid: str) -> None:
        """A CS person ticks the task off in ChartMogul's UI (no API call of ours)."""
        task = self.tasks[task_uuid]
        task.updated_at = self._now()
        task.completed_at = task.updated_at

    def person_reopens(self, task_uuid: str) -> None:
        task = self.tasks[task_uuid]
        task.completed_at = None
        task.updated_at = self._now()

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    # ------------------------------------------------------------------ faults
    def _before(self, method: str, target: str, body: dict[str, Any] | None) -> None:
        self.calls += 1
        if method in self.faults.methods and self._draw(self.faults.error_rate):
            self.log.append(Call(method, target, body, "error"))
            status = self._rng.choice([500, 502, 503, 504])
            # As the HTTP client classifies: a 503 or a read is safe to retry as such.
            kind = OutcomeUnknown if method in WRITES and status != 503 else RetryableApiError
            raise kind("chartmogul", method, target, status, "injected")

    def _after(self, method: str, target: str, body: dict[str, Any] | None) -> None:
        if method in self.faults.methods and self._draw(self.faults.lose_response_rate):
            self.log.append(Call(method, target, body, "lost"))
            kind = OutcomeUnknown if method in WRITES else RetryableApiError
            raise kind("chartmogul", method, target, None, message="response lost")
        self.log.append(Call(method, target, body, "ok"))

    def _draw(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def _refuse(self, method: str, target: str, body: dict[str, Any] | None, error: Exception) -> Exception:
        self.log.append(Call(method, target, body, "refused"))
        return error

    # ------------------------------------------------------------------ tasks
    def create_task(self, *, customer_uuid: str, fields: TaskFields) -> ChartMogulTask:
        body = {"customer_uuid": customer_uuid, **fields.as_payload()}
        self._before("POST", "tasks", body)
        if customer_uuid not in self.customers:
            body_text = '{"errors": {"customer_uuid": "customer not found"}}'
            raise self._refuse("POST", "tasks", body, CustomerUnknown("chartmogul", "POST", "/tasks", 422, body_text))
        if fields.assignee not in self.users:
            body_text = '{"errors": {"assignee": "is not a user of this account"}}'
            raise self._refuse("POST", "tasks", body, AssigneeRejected("chartmogul", "POST", "/tasks", 422, body_text))
        number = self._next()
        task = _Task(
            task_uuid=f"tsk_{number}",
            customer_uuid=customer_uuid,
            task_details=fields.task_details,
            assignee=fields.assignee,
            due_date=_echo_due_date(fields.due_date),
            completed_at=fields.completed_at,
            created_at=(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=number)).isoformat(),
        )
        task.updated_at = self._now()
        self.tasks[task.task_uuid] = task
        self._after("POST", "tasks", body)
        return task.model()

    def get_task(self, task_uuid: str) -> ChartMogulTask:
        self._before("GET", task_uuid, None)
        task = self.tasks.get(task_uuid)
        if task is None:
            raise self._refuse("GET", task_uuid, None, NotFound("chartmogul", "GET", "/tasks/x", 404))
        self._after("GET", task_uuid, None)
        return task.model()

    def list_tasks(self, *, cursor: str | None = None, **filters: Unpack[TaskFilters]) -> TaskPage:
        self._before("GET", "tasks", None)
        after, before = filters.get("due_date_on_or_after"), filters.get("due_date_on_or_before")
        completed = filters.get("completed")
        entries = [
            task.model()
            for task in self.tasks.values()
            if filters.get("customer_uuid") in (None, task.customer_uuid)
            and filters.get("assignee") in (None, task.assignee)
            and (after is None or task.due_date[:10] >= after)
            and (before is None or task.due_date[:10] <= before)
            and (completed is None or completed == (task.completed_at is not None))
        ]
        self._after("GET", "tasks", None)
        return TaskPage(entries=entries, cursor=None, has_more=False)

    def iter_tasks(self, **filters: Unpack[TaskFilters]) -> Iterator[ChartMogulTask]:
        yield from self.list_tasks(**filters).entries

    def update_task(self, task_uuid: str, changes: dict[str, Any]) -> ChartMogulTask | None:
        if not changes:
            return None  # as the HTTP client: no call
        self._before("PATCH", task_uuid, changes)
        task = self.tasks.get(task_uuid)
        if task is None:
            raise self._refuse("PATCH", task_uuid, changes, NotFound("chartmogul", "PATCH", "/tasks/x", 404))
        if "assignee" in changes and changes["assignee"] not in self.users:
            body_text = '{"errors": {"assignee": "is not a user of this account"}}'
            error = AssigneeRejected("chartmogul", "PATCH", "/tasks/x", 422, body_text)
            raise self._refuse("PATCH", task_uuid, changes, error)
        before = dict(task.__dict__)
        for name, value in changes.items():
            if name == "completed_at" and value is None and not self.reopen_via_null:
                continue  # this ChartMogul ignores a null
            setattr(task, name, _echo_due_date(value) if name == "due_date" else value)
        if task.__dict__ != before or (self.ignored_null_stamps and "completed_at" in changes):
            task.updated_at = self._now()
        self._after("PATCH", task_uuid, changes)
        return None if task.__dict__ == before else task.model()

    def delete_task(self, task_uuid: str) -> bool:
        self._before("DELETE", task_uuid, None)
        existed = self.tasks.pop(task_uuid, None) is not None
        self._after("DELETE", task_uuid, None)
        return existed

    # ------------------------------------------------------------------ customers
    def search_customers_by_email(self, email: str) -> list[ChartMogulCustomer]:
        self._before("GET", "customers", None)
        found = [c for c in self.customers.values() if c.email and c.email.lower() == email.lower()]
        self._after("GET", "customers", None)
        return found

    def list_customers(self, *, external_id: str, data_source_uuid: str) -> list[ChartMogulCustomer]:
        self._before("GET", "customers", None)
        found = [c for c in self.customers.values() if c.external_id == external_id]
        self._after("GET", "customers", None)
        return found

    def create_customer(
        self, *, data_source_uuid: str, external_id: str, name: str, email: str | None
    ) -> ChartMogulCustomer:
        self._before("POST", "customers", None)
        uuid = self.add_customer(name=name, email=email, external_id=external_id)
        self._after("POST", "customers", None)
        return self.customers[uuid]
