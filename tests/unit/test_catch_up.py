"""The catch-up's pure decisions: which log events the worker has already applied, and budgets."""

from __future__ import annotations

from typing import Any

import pytest

from tasksync.catch_up import Budget, OutOfTime, already_applied, refetch_stub
from tasksync.models.close import CloseEvent
from tasksync.models.link import AppliedMarks, LinkState, TaskLink
from tasksync.models.queue import QueuedEvent

V1 = "2026-01-01T10:00:00.000000Z"
V2 = "2026-01-01T11:00:00.000000Z"
T1 = "2026-01-01T10:00:00+00:00"
T2 = "2026-01-01T11:00:00+00:00"


def task_event(action: str = "updated", version: str | None = T2) -> CloseEvent:
    data: dict[str, Any] | None = None
    if version is not None:
        data = {"id": "task_1", "_type": "lead", "date_created": T1, "date_updated": version, "lead_id": "lead_1"}
    return CloseEvent.model_validate(
        {
            "id": "ev_1",
            "object_type": "task.lead",
            "action": action,
            "object_id": "task_1",
            "date_created": "2026-01-01T11:00:00",
            "date_updated": "2026-01-01T11:00:00",
            "data": data,
        }
    )


def completion_event(action: str, activity_date: str = T2) -> CloseEvent:
    activity = {"id": "acti_1", "task_id": "task_1", "date_created": activity_date}
    return CloseEvent.model_validate(
        {
            "id": "ev_2",
            "object_type": "activity.task_completed",
            "action": action,
            "object_id": "acti_1",
            "date_created": "2026-01-01T11:00:00",
            "date_updated": "2026-01-01T11:00:00",
            "data": activity if action == "created" else None,
            "previous_data": activity if action == "deleted" else {},
        }
    )


def marks(link: TaskLink | None = None, hint: str | None = None) -> AppliedMarks:
    return AppliedMarks(
        links={"task_1": link} if link else {}, completions={"task_1": hint} if hint else {}, read_units=0.0
    )


def link(state: LinkState, version: str | None = V1, pending: str | None = None) -> TaskLink:
    return TaskLink(close_task_id="task_1", state=state, version=version, pending_version=pending)


@pytest.mark.parametrize(
    ("event", "known", "applied"),
    [
        (task_event(), marks(), False),  # never seen: the worker must have it
        (task_event(), marks(link(LinkState.ACTIVE, V1)), False),  # newer than applied
        (task_event(), marks(link(LinkState.ACTIVE, V2)), True),  # the same version
        (task_event(version=T1), marks(link(LinkState.ACTIVE, V2)), True),  # older
        (task_event(version=None), marks(link(LinkState.ACTIVE, V2)), False),  # no data: unknown version
        (task_event("deleted", None), marks(link(LinkState.ACTIVE, V2)), False),  # delete not applied yet
        (task_event("deleted", None), marks(link(LinkState.DELETED, V2)), True),
        (task_event(), marks(link(LinkState.DELETED, V1)), True),  # tombstone: a late update is dropped
        (task_event(), marks(link(LinkState.PARKED, V1, pending=V2)), True),  # the parked retry covers it
        (task_event(), marks(link(LinkState.PARKED, None, pending=V1)), False),  # newer than the parked one
        (task_event(), marks(link(LinkState.CREATING, None, pending=V2)), False),  # its create may have crashed
        (task_event(version=T1), marks(link(LinkState.CREATING, None, pending=V2)), True),
        (completion_event("created"), marks(hint=V2), True),
        (completion_event("created"), marks(hint=V1), False),
        (completion_event("created"), marks(), False),
        (completion_event("deleted"), marks(), True),  # nothing to withdraw
        (completion_event("deleted"), marks(hint=V2), False),  # this very completion is still noted
        (completion_event("deleted", T1), marks(hint=V2), True),  # a newer completion replaced it
        (completion_event("created"), marks(link(LinkState.DELETED)), True),
    ],
)
def test_already_applied(event: CloseEvent, known: AppliedMarks, applied: bool) -> None:
    assert already_applied(event, known) is applied


def test_a_refetch_stub_keeps_the_identity_and_drops_the_payload() -> None:
    event = task_event()
    stub = QueuedEvent.from_raw(refetch_stub(event, "MessageTooLong: too big")).event
    assert (stub.id, stub.date_updated, stub.close_task_id, stub.action) == (
        event.id,
        event.date_updated,
        "task_1",
        "updated",
    )
    assert stub.data is None
    assert stub.task() is None  # the worker fetches the task from Close


def test_a_budget_ends_after_its_seconds() -> None:
    now = [100.0]
    budget = Budget(5, clock=lambda: now[0])
    budget.check()
    now[0] = 104.9
    budget.check()
    now[0] = 105.0
    with pytest.raises(OutOfTime):
        budget.check()


@pytest.mark.parametrize(
    ("remaining_ms", "cap", "seconds"),
    [
        (300_000, None, 270.0),  # Lambda's 300 s: stop 30 s early
        (30_000, None, 24.0),  # a short timeout: keep a fifth back
        (300_000, 3.0, 3.0),  # RECONCILE_BUDGET_SECONDS
        (0, None, 0.0),
    ],
)
def test_a_lambda_budget_keeps_a_margin(remaining_ms: int, cap: float | None, seconds: float) -> None:
    budget = Budget.for_lambda(remaining_ms, cap=cap)
    assert budget.remaining() == pytest.approx(seconds, abs=0.5)
