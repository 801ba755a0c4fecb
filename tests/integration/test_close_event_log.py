"""CloseClient against the Close simulator over real HTTP on 127.0.0.1: the event log (cursors,
filters, what Close refuses) and the events the simulator's rep actions log.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasksync.dal.close_api import CloseClient
from tasksync.models.close import CloseEvent
from tasksync_dev.sandbox.close import CloseSimulator
from tests.support.close_sandbox import close_client_for, logged_events, raw_close_get


@pytest.fixture
def non_admin_sim() -> Iterator[CloseSimulator]:
    """A simulator whose API key belongs to a non-admin user."""
    simulator = CloseSimulator(admin=False)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


# ===================================================================== event log
def test_event_pages_follow_cursors_newest_first(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    created = [close_sim.create_task(lead_id=close_demo["initech"], text=f"T{n}")["id"] for n in range(61)]

    events = logged_events(close_client, object_type="task.lead", action="created", date_updated_gte=since)

    assert [e["object_id"] for e in events] == list(reversed(created))
    stamps = [e["date_updated"] for e in events]
    assert stamps == sorted(stamps, reverse=True)
    calls = close_sim.calls_to("GET", "/event/")
    assert len(calls) == 2
    assert all(int(c.query["_limit"]) <= 50 for c in calls)
    assert "_cursor" not in calls[0].query
    assert calls[1].query["_cursor"]
    # The other filters travel with the cursor.
    assert calls[1].query["object_type"] == "task.lead"
    assert calls[1].query["action"] == "created"


def test_event_pages_respect_date_updated_gte(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    close_sim.create_task(lead_id=close_demo["acme"], text="Before")
    close_sim.advance_clock(3600)
    since = datetime.now(UTC) + timedelta(minutes=30)
    after = close_sim.create_task(lead_id=close_demo["acme"], text="After")["id"]

    events = logged_events(close_client, object_type="task.lead", action="created", date_updated_gte=since)

    assert [e["object_id"] for e in events] == [after]


@pytest.mark.parametrize(
    "params",
    [
        {"object_type": "task.lead"},  # UNVERIFIED combination: the simulator refuses it
        {"action": "created"},
        {"object_type": "task.lead", "action": "created", "request_id": "req_x"},
        {"object_type": "task.lead", "action": "created", "_limit": 51},
        {"object_type": "task.lead", "action": "created", "_cursor": "not-a-cursor"},
    ],
)
def test_event_log_refuses_what_close_refuses(close_sim: CloseSimulator, params: dict[str, Any]) -> None:
    answer = raw_close_get(close_sim, "/event/", **params)

    assert answer.status_code == 400
    assert answer.json()["error"]


def test_completing_reopening_and_deleting_log_closes_cascade(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    task = close_sim.create_task(lead_id=close_demo["acme"], text="Follow up", assigned_to=close_demo["alice"])
    close_sim.complete_task(task["id"])
    close_sim.reopen_task(task["id"])
    close_sim.delete_task(task["id"])

    log = [(e["object_type"], e["action"]) for e in close_sim.events if e["lead_id"] == close_demo["acme"]]
    assert log == [
        ("lead", "created"),
        ("task.lead", "created"),
        ("task.lead", "updated"),
        ("task.lead", "completed"),
        ("activity.task_completed", "created"),
        ("task.lead", "updated"),
        ("activity.task_completed", "deleted"),
        ("task.lead", "deleted"),
    ]
    events = [CloseEvent.model_validate(e) for e in close_sim.events if e["lead_id"] == close_demo["acme"]][1:]
    assert all(e.close_task_id == task["id"] for e in events)
    created, completing, completed, activity, reopening, unactivity, deleted = events
    assert created.changed_fields == []
    assert created.previous_data == {}
    assert "is_complete" in completing.changed_fields
    assert completing.previous_data is not None
    assert completing.previous_data["is_complete"] is False
    assert completing.data is not None
    assert completing.data["is_complete"] is True
    completed_task = completed.task()
    assert completed_task is not None
    assert completed_task.is_complete
    completion = activity.completion()
    assert completion is not None
    assert completion.task_id == task["id"]
    assert reopening.previous_data == {
        "is_complete": True,
        "date_updated": completing.data["date_updated"],
    }
    assert unactivity.data is None
    assert unactivity.previous_data is not None
    assert unactivity.previous_data["id"] == activity.object_id
    assert deleted.data is None
    assert deleted.previous_data is not None
    assert deleted.previous_data["text"] == "Follow up"
    # Event timestamps are naive UTC, like Close's; they parse as UTC.
    assert "+" not in close_sim.events[-1]["date_created"]
    assert deleted.date_created.tzinfo is not None

    over_http = logged_events(
        close_client, object_type="activity.task_completed", action="created", date_updated_gte=since
    )
    assert [e["data"]["task_id"] for e in over_http] == [task["id"]]
    assert close_sim.deleted_task_ids == {task["id"]}


def test_reassign_move_and_delete_lead(close_sim: CloseSimulator, close_demo: dict[str, str]) -> None:
    task = close_sim.create_task(lead_id=close_demo["acme"], text="Hand over", assigned_to=close_demo["alice"])
    close_sim.reassign_task(task["id"], close_demo["bob"])
    close_sim.move_task(task["id"], close_demo["globex"])
    close_sim.delete_lead(close_demo["globex"])

    reassigned, moved, deleted = [e for e in close_sim.events if e["object_id"] == task["id"]][1:]
    assert {"assigned_to", "assigned_to_name"} <= set(reassigned["changed_fields"])
    assert reassigned["previous_data"]["assigned_to"] == close_demo["alice"]
    assert reassigned["data"]["assigned_to_name"] == "Bob Baker"
    assert {"lead_id", "lead_name"} <= set(moved["changed_fields"])
    assert moved["previous_data"]["lead_id"] == close_demo["acme"]
    assert moved["lead_id"] == close_demo["globex"]
    assert (deleted["action"], deleted["data"]) == ("deleted", None)
    assert close_sim.events[-1]["object_type"] == "lead"
    assert close_sim.events[-1]["action"] == "deleted"
    assert task["id"] not in close_sim.tasks


def test_date_updated_strictly_increases_per_task(close_sim: CloseSimulator, close_demo: dict[str, str]) -> None:
    task = close_sim.create_task(lead_id=close_demo["acme"], text="v0")
    versions = [task["date_updated"]]
    for n in range(1, 200):
        versions.append(close_sim.update_task(task["id"], text=f"v{n}")["date_updated"])

    parsed = [datetime.fromisoformat(v) for v in versions]
    assert all(later > earlier for earlier, later in itertools.pairwise(parsed))


def test_non_admin_key_sees_no_data_on_events_older_than_an_hour(non_admin_sim: CloseSimulator) -> None:
    sim = non_admin_sim
    lead = sim.add_lead("Old Co")["id"]
    old = sim.create_task(lead_id=lead, text="Old")["id"]
    sim.advance_clock(3601)
    new = sim.create_task(lead_id=lead, text="New")["id"]
    client = close_client_for(sim)

    events = logged_events(
        client, object_type="task.lead", action="created", date_updated_gte=datetime.now(UTC) - timedelta(days=1)
    )

    assert [(e["object_id"], e["data"] is not None) for e in events] == [(new, True), (old, False)]
    # An admin key sees the data of the same old event.
    sim.admin = True
    events = logged_events(
        client, object_type="task.lead", action="created", date_updated_gte=datetime.now(UTC) - timedelta(days=1)
    )
    assert all(e["data"] is not None for e in events)
