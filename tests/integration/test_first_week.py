"""Situations every team meets in its first week: tasks that follow their lead, and no task left
on a wrong state. Each test drives the engine against the simulators and DynamoDB Local and
asserts what ChartMogul ends up holding.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tasksync.dal.links import LinkState
from tasksync.logic.results import Outcome
from tasksync_dev.sandbox._server import Request, Response
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.integration.answers import answer_first, retry_parked
from tests.integration.engine_harness import SyncWorld, make_world

TASK = r"/v1/tasks/(?P<task_uuid>[^/]+)"


@pytest.fixture
def world(close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator, state_tables: Any) -> SyncWorld:
    return make_world(close_sim, chartmogul_sim, state_tables.client, state_tables.state)


def mirrored(world: SyncWorld, task: dict[str, Any]) -> str:
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.CREATED
    assert result.chartmogul_task_uuid is not None
    return result.chartmogul_task_uuid


# ---------------------------------------------------------------- the task follows its lead
def test_a_task_moved_to_an_unmatched_lead_leaves_the_old_customer_and_follows_later(world: SyncWorld) -> None:
    task = world.new_task()
    mirrored(world, task)
    unmatched = world.close.add_lead("Initech", emails=["cto@initech.example"])["id"]
    world.close.move_task(task["id"], unmatched)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    world.close.update_task(task["id"], text="Renewal call, moved")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    assert [r.outcome for r in retry_parked(world)] == [Outcome.PARKED]
    assert world.cm_tasks(world.customer) == [], "a copy stayed on the old lead's customer"
    # The customer appears; the parked retry alone brings the task there (no Close change).
    initech = world.chartmogul.add_customer(name="Initech", email="cto@initech.example")["uuid"]
    assert [r.outcome for r in retry_parked(world)] in ([Outcome.CREATED], [Outcome.RECREATED])
    assert world.assert_mirrors(task["id"])["customer_uuid"] == initech
    assert len(world.cm_tasks()) == 1


def test_tasks_follow_a_changed_customer_match_once_the_cached_match_is_old(world: SyncWorld) -> None:
    task = world.new_task()
    mirrored(world, task)
    # A merge in ChartMogul: the lead's contact email now belongs to another customer.
    world.chartmogul.customers[world.customer]["email"] = "merged-away@acme.example"
    merged = world.chartmogul.add_customer(name="Acme (merged)", email="ops@acme.example")["uuid"]
    world.clock.advance(world.services.settings.customer_cache_ttl_seconds + 1)
    world.close.update_task(task["id"], text="Renewal call, after the merge")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.RECREATED
    assert world.assert_mirrors(task["id"])["customer_uuid"] == merged
    assert world.cm_tasks(world.customer) == []


def test_a_404_for_the_cached_customer_on_create_forgets_it(world: SyncWorld) -> None:
    ghost = world.chartmogul.add_customer(name="Ghost", email="ghost@x.example")["uuid"]
    lead = world.close.add_lead("Ghost", emails=["ghost@x.example"])["id"]
    world.services.cache.put_customer(lead, ghost, world.services.settings.customer_cache_ttl_seconds)
    world.chartmogul.customers.pop(ghost)  # merged away after we cached it

    def unknown_customer(request: Request) -> Response | None:
        if isinstance(request.body, dict) and request.body.get("customer_uuid") not in world.chartmogul.customers:
            return Response(404, {"code": 404, "message": "Customer not found", "param": None})
        return None

    answer_first(world.chartmogul, "POST", r"/v1/tasks", unknown_customer)
    task = world.new_task(lead_id=lead)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    survivor = world.chartmogul.add_customer(name="Ghost Inc", email="ghost@x.example")["uuid"]
    assert [r.outcome for r in retry_parked(world)] == [Outcome.CREATED]
    assert world.assert_mirrors(task["id"])["customer_uuid"] == survivor


# ---------------------------------------------------------------- no task stuck on a wrong state
def test_a_refused_reopen_recreates_the_task_open(world: SyncWorld) -> None:
    # UNVERIFIED upstream: ChartMogul may refuse PATCH completed_at=null with a 4xx.
    def refuse_null(request: Request) -> Response | None:
        if isinstance(request.body, dict) and "completed_at" in request.body and request.body["completed_at"] is None:
            return Response(422, {"code": 422, "message": "Completed at is invalid", "param": "completed_at"})
        return None

    answer_first(world.chartmogul, "PATCH", TASK, refuse_null)
    task = world.new_task()
    mirrored(world, task)
    world.close.complete_task(task["id"])
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.COMPLETED
    world.close.update_task(task["id"], is_complete=False, text="Renewal call, again")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.RECREATED
    assert world.assert_mirrors(task["id"])["completed_at"] is None
    world.close.update_task(task["id"], text="Renewal call, later edit")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.UPDATED
    world.assert_mirrors(task["id"])


def test_a_late_completion_activity_of_a_withdrawn_completion_changes_nothing(world: SyncWorld) -> None:
    task = world.new_task()
    mirrored(world, task)
    world.close.complete_task(task["id"])
    world.close.advance_clock(600)
    world.close.reopen_task(task["id"])
    world.close.advance_clock(600)
    world.close.complete_task(task["id"])
    activities = [e for e in world.close.events if e["object_type"] == "activity.task_completed"]
    first, latest = activities[0], activities[-1]
    assert first["action"] == latest["action"] == "created"
    for event in world.close.events:
        if event["id"] != first["id"]:
            world.apply(event)
    world.reset_calls()
    world.apply(first)  # the withdrawn completion's activity, last of all
    assert world.chartmogul.calls_to("PATCH") == []
    shown = world.assert_mirrors(task["id"])
    assert shown["completed_at"].startswith(latest["data"]["activity_at"][:19])


def test_a_parked_delete_is_never_undone_by_a_late_event(world: SyncWorld) -> None:
    task = world.new_task()
    mirrored(world, task)
    world.close.update_task(task["id"], text="edited")
    edited = world.last_event(task["id"])
    assert world.apply(edited).outcome is Outcome.UPDATED
    world.close.delete_task(task["id"])
    refusing = {"on": True}

    def key_rotation(request: Request) -> Response | None:
        return Response(401, {"code": 401, "message": "Unauthorized"}) if refusing["on"] else None

    answer_first(world.chartmogul, "DELETE", TASK, key_rotation)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    late = world.apply(copy.deepcopy(edited))  # Close retries the webhook of the same version
    assert late.outcome is not Outcome.UNCHANGED
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.PARKED, "the pending delete was forgotten"
    refusing["on"] = False
    assert [r.outcome for r in retry_parked(world)] == [Outcome.DELETED]
    assert world.cm_tasks() == []


def test_an_ignored_retry_releases_the_park(world: SyncWorld) -> None:
    lead = world.close.add_lead("Initech", emails=["cto@initech.example"])["id"]
    task = world.new_task(lead_id=lead)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    # The operator narrows TASK_TYPES: this task is no longer synced at all.
    world.engine.settings = world.engine.settings.model_copy(update={"task_types": frozenset({"opportunity"})})
    assert [r.outcome for r in retry_parked(world)] == [Outcome.IGNORED]
    assert retry_parked(world) == [], "an ignored task is re-driven on every reconciler run"


def test_a_404_on_the_completion_time_correction_recreates_the_task(world: SyncWorld) -> None:
    task = world.new_task()
    mirrored(world, task)
    world.close.complete_task(task["id"])
    activity = next(e for e in reversed(world.close.events) if e["object_type"] == "activity.task_completed")
    world.apply(world.last_event(task["id"]))
    gone = world.links.get(task["id"])
    assert gone is not None
    assert gone.cm_task_uuid is not None
    world.chartmogul.tasks.pop(gone.cm_task_uuid)  # somebody deleted it in ChartMogul
    # The activity says the rep completed it long before the event we applied.
    late = copy.deepcopy(activity)
    late["data"]["activity_at"] = "2025-01-01T09:00:00.000000+00:00"
    result = world.apply(late)
    assert result.outcome is Outcome.RECREATED
    assert world.assert_mirrors(task["id"])["completed_at"].startswith("2025-01-01T09:00:00")
