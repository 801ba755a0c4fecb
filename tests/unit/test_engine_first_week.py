"""The assignee rule and the first-week defects, against the in-memory fakes (fast tier).

The same situations over the HTTP simulators and DynamoDB Local:
tests/integration/test_assignee_rule.py and tests/integration/test_first_week.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tasksync.errors import AssigneeRejected, NotFound, PermanentApiError
from tasksync.logic.results import Outcome
from tasksync.models.chartmogul import ChartMogulTask, TaskFields
from tests.fakes.world import DEFAULT_ASSIGNEE, World, make_world

STRANGER = "stranger@sales.example"


@pytest.fixture
def world() -> World:
    """A new team's setup: DEFAULT_ASSIGNEE set, no ASSIGNEE_MAP."""
    return make_world(assignee_map={})


def refuse_deletes(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """ChartMogul refuses every DELETE (a 401 during a key rotation) until the returned call."""
    delete = world.chartmogul.delete_task

    def key_rotation(task_uuid: str) -> bool:
        raise PermanentApiError("chartmogul", "DELETE", "/tasks/x", 401, "Unauthorized")

    monkeypatch.setattr(world.chartmogul, "delete_task", key_rotation)
    return lambda: monkeypatch.setattr(world.chartmogul, "delete_task", delete)


def mirror(world: World, **fields: Any) -> dict[str, Any]:
    task = world.new_task(**fields)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    return task


# ---------------------------------------------------------------- the assignee rule
def test_an_unmapped_rep_known_to_chartmogul_keeps_their_own_email(world: World) -> None:
    task = mirror(world)
    world.assert_mirrors(task["id"], assignee=world.rep)


def test_a_refused_rep_costs_two_calls_once_then_one(world: World) -> None:
    stranger = world.close.add_user(STRANGER)
    first = world.new_task("first", assigned_to=stranger)
    world.apply(world.last_event(first["id"]))
    assert world.chartmogul.writes() == [("POST", "refused"), ("POST", "ok")]
    world.assert_mirrors(first["id"], assignee=DEFAULT_ASSIGNEE)
    second = world.new_task("second", assigned_to=stranger)
    result = world.apply(world.last_event(second["id"]))
    assert (result.outcome, result.chartmogul_calls) == (Outcome.CREATED, 1)
    world.assert_mirrors(second["id"], assignee=DEFAULT_ASSIGNEE)


def test_an_assignee_refused_with_a_400_falls_back_too(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    create = world.chartmogul.create_task

    def refuse_with_400(*, customer_uuid: str, fields: TaskFields) -> ChartMogulTask:
        if fields.assignee not in world.chartmogul.users:
            raise AssigneeRejected("chartmogul", "POST", "/tasks", 400, '{"param": "assignee"}')
        return create(customer_uuid=customer_uuid, fields=fields)

    monkeypatch.setattr(world.chartmogul, "create_task", refuse_with_400)
    task = world.new_task(assigned_to=world.close.add_user(STRANGER))
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    world.assert_mirrors(task["id"], assignee=DEFAULT_ASSIGNEE)


def test_a_close_user_404_gets_the_default(world: World) -> None:
    task = world.new_task(assigned_to="user_gone")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    world.assert_mirrors(task["id"], assignee=DEFAULT_ASSIGNEE)


def test_without_a_default_a_new_task_parks_naming_the_email_and_costs_nothing_the_second_time() -> None:
    world = make_world(assignee_map={}, default_assignee=None)
    task = world.new_task(assigned_to=world.close.add_user(STRANGER))
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.PARKED
    assert STRANGER in (result.reason or "")
    [retry] = world.retry_parked()
    assert (retry.outcome, retry.chartmogul_calls) == (Outcome.PARKED, 0)
    assert world.cm_tasks() == []


def test_without_a_default_a_mirrored_task_keeps_its_assignee_and_syncs() -> None:
    world = make_world(assignee_map={}, default_assignee=None)
    task = mirror(world)
    world.close.update_task(task["id"], assigned_to=world.close.add_user(STRANGER), text="handed over")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.UPDATED
    world.close.update_task(task["id"], assigned_to=None, is_complete=True)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.COMPLETED
    [shown] = world.cm_tasks()
    assert (shown.task_details, shown.assignee, shown.completed_at is not None) == ("handed over", world.rep, True)


# ---------------------------------------------------------------- the first-week defects
def test_a_task_moved_to_an_unmatched_lead_leaves_the_old_customer(world: World) -> None:
    task = mirror(world)
    unmatched = world.close.add_lead("Initech", emails=["cto@initech.example"])
    world.close.move_task(task["id"], unmatched)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    assert [r.outcome for r in world.retry_parked()] == [Outcome.PARKED]
    assert world.cm_tasks() == []
    initech = world.chartmogul.add_customer(name="Initech", email="cto@initech.example")
    assert [r.outcome for r in world.retry_parked()] == [Outcome.CREATED]
    assert world.assert_mirrors(task["id"]).customer_uuid == initech


def test_a_refused_reopen_recreates_the_task_open(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    update = world.chartmogul.update_task

    def refuse_null(task_uuid: str, changes: dict[str, Any]) -> ChartMogulTask | None:
        if "completed_at" in changes and changes["completed_at"] is None:
            raise PermanentApiError("chartmogul", "PATCH", "/tasks/x", 422, '{"param": "completed_at"}')
        return update(task_uuid, changes)

    monkeypatch.setattr(world.chartmogul, "update_task", refuse_null)
    task = mirror(world)
    world.close.complete_task(task["id"])
    world.apply(world.last_event(task["id"]))
    world.close.update_task(task["id"], is_complete=False, text="again")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.RECREATED
    assert world.assert_mirrors(task["id"]).completed_at is None


def test_a_late_activity_of_a_withdrawn_completion_changes_nothing(world: World) -> None:
    task = mirror(world)
    world.close.complete_task(task["id"])
    world.close._moment += timedelta(minutes=10)
    world.close.reopen_task(task["id"])
    world.close._moment += timedelta(minutes=10)
    world.close.complete_task(task["id"])
    activities = [e for e in world.close.events if e["object_type"] == "activity.task_completed"]
    first, latest = activities[0], activities[-1]
    for event in world.close.events:
        if event["id"] != first["id"]:
            world.apply(event)
    world.chartmogul.reset_log()
    assert world.apply(first).outcome is Outcome.NOTED
    assert world.chartmogul.writes() == []
    shown = world.assert_mirrors(task["id"])
    assert shown.completed_at is not None
    assert shown.completed_at.startswith(latest["data"]["activity_at"][:19])


def test_a_parked_delete_survives_a_late_event(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    task = mirror(world)
    world.close.update_task(task["id"], text="edited")
    edited = world.last_event(task["id"])
    world.apply(edited)
    world.close.delete_task(task["id"])
    restore = refuse_deletes(world, monkeypatch)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    assert world.apply(copy.deepcopy(edited)).outcome is Outcome.PARKED
    restore()
    assert [r.outcome for r in world.retry_parked()] == [Outcome.DELETED]
    assert world.cm_tasks() == []


def test_an_ignored_retry_releases_the_park(world: World) -> None:
    lead = world.close.add_lead("Initech", emails=["cto@initech.example"])
    task = world.new_task(lead_id=lead)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    world.engine.settings = world.engine.settings.model_copy(update={"task_types": frozenset({"opportunity"})})
    assert [r.outcome for r in world.retry_parked()] == [Outcome.IGNORED]
    assert world.retry_parked() == []


def test_a_404_for_the_post_forgets_the_cached_customer(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = world.close.add_lead("Ghost", emails=["ghost@x.example"])
    ghost = world.chartmogul.add_customer(name="Ghost", email="ghost@x.example")
    world.cache.put_customer(lead, ghost, 86400)
    del world.chartmogul.customers[ghost]
    create = world.chartmogul.create_task

    def merged_away(*, customer_uuid: str, fields: TaskFields) -> ChartMogulTask:
        if customer_uuid not in world.chartmogul.customers:
            raise NotFound("chartmogul", "POST", "/tasks", 404, '{"message": "Customer not found"}')
        return create(customer_uuid=customer_uuid, fields=fields)

    monkeypatch.setattr(world.chartmogul, "create_task", merged_away)
    task = world.new_task(lead_id=lead)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    survivor = world.chartmogul.add_customer(name="Ghost Inc", email="ghost@x.example")
    assert [r.outcome for r in world.retry_parked()] == [Outcome.CREATED]
    assert world.assert_mirrors(task["id"]).customer_uuid == survivor


def test_a_404_on_the_completion_time_correction_recreates(world: World) -> None:
    task = mirror(world)
    world.close.complete_task(task["id"])
    activity = next(e for e in reversed(world.close.events) if e["object_type"] == "activity.task_completed")
    world.apply(world.last_event(task["id"]))
    link = world.links.get(task["id"])
    assert link is not None
    assert link.cm_task_uuid is not None
    del world.chartmogul.tasks[link.cm_task_uuid]
    late = copy.deepcopy(activity)
    late["data"]["activity_at"] = "2025-01-01T09:00:00+00:00"
    assert world.apply(late).outcome is Outcome.RECREATED
    shown = world.assert_mirrors(task["id"])
    assert shown.completed_at is not None
    assert shown.completed_at.startswith("2025-01-01T09:00:00")


def test_a_mirrored_task_whose_lead_turns_ambiguous_stays_where_it_is(world: World) -> None:
    # Re-checking the match must not park a live task: only another lead moves it.
    task = mirror(world)
    world.chartmogul.add_customer(name="Acme (duplicate)", email="ops@acme.example")
    world.clock.advance(world.engine.settings.customer_cache_ttl_seconds + 1)
    world.close.update_task(task["id"], text="edited")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.UPDATED
    assert world.assert_mirrors(task["id"]).customer_uuid == world.customer


def test_a_pending_delete_completes_after_task_types_are_narrowed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = mirror(world)
    world.close.delete_task(task["id"])
    restore = refuse_deletes(world, monkeypatch)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    restore()
    world.engine.settings = world.engine.settings.model_copy(update={"task_types": frozenset({"opportunity"})})
    assert [r.outcome for r in world.retry_parked()] == [Outcome.DELETED]
    assert world.cm_tasks() == []
