"""Parking (permanent problems wait for the reconciler) and completion times, against fakes."""

from __future__ import annotations

import copy

import pytest

from tasksync.logic.results import Outcome
from tasksync.models.link import LinkState
from tests.fakes.world import World, make_world


@pytest.fixture
def world() -> World:
    return make_world()


def test_unknown_customer_parks_and_a_retry_syncs_once_it_exists(world: World) -> None:
    lead = world.close.add_lead("Initech", emails=["cto@initech.example"])
    task = world.new_task(lead_id=lead)
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.PARKED
    assert "no ChartMogul customer" in (result.reason or "")
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.PARKED
    assert link.retry_at == world.clock.now + world.engine.settings.park_retry_base_seconds
    assert link.attempts == 1
    assert world.chartmogul.writes() == []
    world.chartmogul.add_customer(name="Initech", email="cto@initech.example")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    link = world.links.get(task["id"])
    assert link is not None
    assert (link.parked_reason, link.retry_at, link.attempts) == (None, None, 0)
    world.assert_mirrors(task["id"])


def test_parking_again_backs_off_exponentially_up_to_the_cap(world: World) -> None:
    settings = world.engine.settings
    lead = world.close.add_lead("Initech", emails=["cto@initech.example"])
    event = world.last_event(world.new_task(lead_id=lead)["id"])
    waits = []
    for _ in range(25):
        world.apply(event)
        link = world.links.get(event["object_id"])
        assert link is not None
        assert link.retry_at is not None
        waits.append(link.retry_at - world.clock.now)
    assert waits[:3] == [settings.park_retry_base_seconds * factor for factor in (1, 2, 4)]
    assert waits[-1] == settings.park_retry_max_seconds


def test_ambiguous_customer_parks_with_the_reason(world: World) -> None:
    world.chartmogul.add_customer(name="Acme again", email="ops@acme.example")
    task = world.new_task()
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.PARKED
    assert "2 ChartMogul customers" in (result.reason or "")


def test_a_task_without_an_assignee_or_default_parks() -> None:
    world = make_world(default_assignee=None)
    task = world.new_task(assigned_to=None)
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.PARKED
    assert "no assignee" in (result.reason or "")


def test_unmapped_assignee_gets_the_default(world: World) -> None:
    stranger = world.close.add_user("stranger@sales.example")
    task = world.new_task(assigned_to=stranger)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    world.assert_mirrors(task["id"], assignee="success@example.com")


def test_a_customer_deleted_in_chartmogul_parks_and_is_looked_up_again(world: World) -> None:
    customer = world.chartmogul.add_customer(name="Ghost", email="ghost@x.example")
    lead = world.close.add_lead("Ghost", emails=["ghost@x.example"])
    world.chartmogul.customers.pop(customer)  # gone after we cached it: ChartMogul answers 422
    world.cache.put_customer(lead, customer, 3600)
    task = world.new_task(lead_id=lead)
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.PARKED
    assert "HTTP 422" in (result.reason or "")
    assert world.cache.get_customer(lead) is None  # forgotten: the next try resolves again
    link = world.links.get(task["id"])
    assert link is not None
    assert link.lease_owner is None
    assert not link.maybe_created


def test_invalid_task_data_parks_the_task(world: World) -> None:
    task = world.new_task()
    event = copy.deepcopy(world.last_event(task["id"]))
    event["data"]["date_updated"] = "last tuesday"
    result = world.apply(event)
    assert result.outcome is Outcome.PARKED
    assert "invalid Close task data" in (result.reason or "")
    link = world.links.get(task["id"])
    assert link is not None
    assert link.task_type == "lead"


def test_a_permanent_close_failure_parks_the_task(world: World) -> None:
    task = world.new_task()
    world.close.leads.pop(world.lead)  # Close answers 404 for the lead
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.PARKED
    assert "permanent failure" in (result.reason or "")


def test_a_park_keeps_the_version_it_waits_for_and_older_events_stay_stale(world: World) -> None:
    lead = world.close.add_lead("Initech", emails=["cto@initech.example"])
    task = world.new_task(lead_id=lead)
    created = world.last_event(task["id"])
    world.close.update_task(task["id"], text="newer")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.PARKED
    assert world.apply(created).outcome is Outcome.SKIPPED_STALE


def test_completion_activity_time_is_used(world: World) -> None:
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.close.complete_task(task["id"])
    activity = next(e for e in reversed(world.close.events) if e["object_type"] == "activity.task_completed")
    assert world.apply(activity).outcome is Outcome.NOTED
    world.apply(world.last_event(task["id"]))
    mirrored = world.assert_mirrors(task["id"])
    assert mirrored.completed_at is not None
    assert mirrored.completed_at.startswith(activity["data"]["activity_at"][:19])


def test_a_late_completion_activity_corrects_the_pushed_time(world: World) -> None:
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.close.complete_task(task["id"])
    world.apply(world.last_event(task["id"]))  # pushed with the event's time
    activity = copy.deepcopy(
        next(e for e in reversed(world.close.events) if e["object_type"] == "activity.task_completed")
    )
    activity["data"]["activity_at"] = "2025-01-15T10:00:00+00:00"  # completed well before
    world.chartmogul.reset_log()
    result = world.apply(activity)
    assert result.outcome is Outcome.UPDATED
    assert world.chartmogul.writes() == [("PATCH", "ok")]
    link = world.links.get(task["id"])
    assert link is not None
    assert link.fields is not None
    assert link.fields.completed_at is not None
    assert link.fields.completed_at.startswith("2025-01-15T10:00:00")
    assert world.chartmogul.tasks[str(link.cm_task_uuid)].completed_at == link.fields.completed_at


def test_a_withdrawn_completion_forgets_the_hint(world: World) -> None:
    task = world.new_task()
    world.close.complete_task(task["id"])
    world.close.reopen_task(task["id"])
    activities = [e for e in world.close.events if e["object_type"] == "activity.task_completed"]
    assert [world.apply(e).outcome for e in activities] == [Outcome.NOTED, Outcome.NOTED]
    assert world.links.completion_hint(task["id"]) is None
