"""Every rule of `TaskSync.apply(event)` against in-memory fakes of its ports.

Each test asserts the ChartMogul calls made and the final ChartMogul state. The same rules
over DynamoDB Local and the HTTP simulators: tests/integration/test_sync_engine.py.
"""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from tasksync.errors import Settling
from tasksync.logic.results import Outcome
from tasksync.models._parsing import format_utc
from tasksync.models.close import CloseEvent
from tasksync.models.link import LinkState
from tests.fakes.world import World, make_world


@pytest.fixture
def world() -> World:
    return make_world()


def test_create_posts_once_and_stores_the_link(world: World) -> None:
    task = world.new_task()
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.CREATED
    assert world.chartmogul.writes() == [("POST", "ok")]
    mirrored = world.assert_mirrors(task["id"])
    assert mirrored.customer_uuid == world.customer
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.ACTIVE
    assert link.cm_task_uuid == result.chartmogul_task_uuid
    assert world.links.claimed_by(mirrored.task_uuid) == task["id"]
    assert link.version == format_utc(datetime.fromisoformat(task["date_updated"]))
    assert link.fingerprint
    assert (link.lease_owner, link.lease_until, link.maybe_created, link.intended_fields) == (None, 0.0, False, None)
    assert result.chartmogul_calls >= 1
    assert result.close_calls >= 1  # lead and user looked up once


def test_warm_engine_makes_no_close_calls_for_a_seen_lead_and_user(world: World) -> None:
    world.apply(world.last_event(world.new_task("first")["id"]))
    second = world.new_task("second")
    result = world.apply(world.last_event(second["id"]))
    assert result.outcome is Outcome.CREATED
    assert result.close_calls == 0
    assert result.chartmogul_calls == 1


def test_stale_event_makes_no_call(world: World) -> None:
    task = world.new_task("v1")
    created = world.last_event(task["id"])
    world.close.update_task(task["id"], text="v2")
    updated = world.last_event(task["id"])
    assert world.apply(updated).outcome is Outcome.CREATED
    world.chartmogul.reset_log()
    for late in (created, updated):  # an older version, then a duplicate of the applied one
        result = world.apply(late)
        assert result.outcome is Outcome.SKIPPED_STALE
        assert result.chartmogul_calls == 0
    assert world.chartmogul.log == []
    assert world.assert_mirrors(task["id"]).task_details == "v2"


def test_update_patches_only_the_changed_fields(world: World) -> None:
    task = world.new_task("before")
    world.apply(world.last_event(task["id"]))
    world.chartmogul.reset_log()
    world.close.update_task(task["id"], text="after")
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.UPDATED
    assert [c.body for c in world.chartmogul.calls_to("PATCH")] == [{"task_details": "after"}]
    assert world.chartmogul.writes() == [("PATCH", "ok")]
    world.assert_mirrors(task["id"])


def test_update_with_nothing_to_push_makes_no_call(world: World) -> None:
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.chartmogul.reset_log()
    # A change Close reports but ChartMogul does not mirror (the contact), so the fields are equal.
    latest = world.close.update_task(task["id"], contact_id="cont_other")
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.UNCHANGED
    assert world.chartmogul.log == []
    link = world.links.get(task["id"])
    assert link is not None
    assert link.version == format_utc(datetime.fromisoformat(latest["date_updated"]))


def test_reassignment_patches_the_assignee(world: World) -> None:
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.chartmogul.reset_log()
    world.close.reassign_task(task["id"], world.other_rep_id)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.UPDATED
    assert [c.body for c in world.chartmogul.calls_to("PATCH")] == [{"assignee": world.other_rep}]
    world.assert_mirrors(task["id"], assignee=world.other_rep)


def test_complete_then_reopen(world: World) -> None:
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.close.complete_task(task["id"])
    for event in world.close.events[-3:]:  # updated, completed and the task_completed activity
        world.apply(event)
    assert world.assert_mirrors(task["id"]).completed_at is not None
    world.chartmogul.reset_log()
    world.close.reopen_task(task["id"])
    outcomes = [world.apply(event).outcome for event in world.close.events[-2:]]
    assert Outcome.REOPENED in outcomes
    assert world.assert_mirrors(task["id"]).completed_at is None
    assert [c.body for c in world.chartmogul.calls_to("PATCH")] == [{"completed_at": None}]


def test_reopen_when_chartmogul_ignores_a_null_completed_at_recreates_the_task() -> None:
    world = make_world(reopen_via_null=False)  # UNVERIFIED upstream: whether a null reopens
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.close.complete_task(task["id"])
    world.apply(world.last_event(task["id"]))
    world.close.reopen_task(task["id"])
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.RECREATED
    assert world.assert_mirrors(task["id"]).completed_at is None
    assert len(world.cm_tasks()) == 1


def test_delete_removes_the_task_and_a_late_event_never_brings_it_back(world: World) -> None:
    task = world.new_task()
    created = world.last_event(task["id"])
    uuid = world.apply(created).chartmogul_task_uuid
    world.close.update_task(task["id"], text="edited")
    late_update = world.last_event(task["id"])
    world.close.delete_task(task["id"])
    world.chartmogul.reset_log()
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.DELETED
    assert world.chartmogul.writes() == [("DELETE", "ok")]
    assert world.cm_tasks() == []
    world.chartmogul.reset_log()
    for late in (late_update, created):
        assert world.apply(late).outcome is Outcome.SKIPPED_STALE
    assert world.chartmogul.log == []
    assert world.cm_tasks() == []
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.DELETED
    assert link.cm_task_uuid is None
    assert world.links.claimed_by(str(uuid)) is None  # the claim went with the task


def test_a_second_delete_is_stale(world: World) -> None:
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.close.delete_task(task["id"])
    deleted = world.last_event(task["id"])
    assert world.apply(deleted).outcome is Outcome.DELETED
    world.chartmogul.reset_log()
    assert world.apply(deleted).outcome is Outcome.SKIPPED_STALE
    assert world.chartmogul.log == []


def test_delete_of_a_task_already_gone_from_chartmogul(world: World) -> None:
    task = world.new_task()
    uuid = world.apply(world.last_event(task["id"])).chartmogul_task_uuid
    world.chartmogul.tasks.pop(str(uuid))  # somebody deleted it in ChartMogul
    world.close.delete_task(task["id"])
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.DELETED
    assert world.cm_tasks() == []


def test_delete_before_create_leaves_a_tombstone(world: World) -> None:
    task = world.new_task()
    created = world.last_event(task["id"])
    world.close.delete_task(task["id"])
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.TOMBSTONED
    assert world.apply(created).outcome is Outcome.SKIPPED_STALE
    assert world.chartmogul.log == []


def test_lead_change_deletes_and_creates_under_the_new_customer(world: World) -> None:
    task = world.new_task()
    old_uuid = world.apply(world.last_event(task["id"])).chartmogul_task_uuid
    world.chartmogul.reset_log()
    world.close.move_task(task["id"], world.other_lead)
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.RECREATED
    assert world.chartmogul.writes() == [("DELETE", "ok"), ("POST", "ok")]
    assert world.cm_tasks(world.customer) == []
    moved = world.assert_mirrors(task["id"])
    assert moved.customer_uuid == world.other_customer
    assert moved.task_uuid != old_uuid
    assert world.links.claimed_by(str(old_uuid)) is None
    assert world.links.claimed_by(moved.task_uuid) == task["id"]


def test_event_without_data_is_resolved_from_close(world: World) -> None:
    task = world.new_task()
    event = copy.deepcopy(world.last_event(task["id"]))
    event["data"] = None
    assert world.apply(event).outcome is Outcome.CREATED
    assert world.close.fetched == [task["id"]]
    world.assert_mirrors(task["id"])


def test_event_without_data_for_a_task_close_deleted_is_a_delete(world: World) -> None:
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.close.update_task(task["id"], text="edit")
    event = copy.deepcopy(world.last_event(task["id"]))
    event["data"] = None
    world.close.delete_task(task["id"])  # Close now answers 404 for it
    assert world.apply(event).outcome is Outcome.DELETED
    assert world.cm_tasks() == []


def test_task_types_outside_task_types_are_ignored(world: World) -> None:
    call = world.close.create_task(
        lead_id=world.lead, text="", task_type="missed_call", assigned_to=world.rep_id, date=None
    )
    result = world.apply(world.last_event(call["id"]))
    assert result.outcome is Outcome.IGNORED
    assert "missed_call" in (result.reason or "")
    assert world.chartmogul.log == []


def test_events_about_other_objects_are_ignored(world: World) -> None:
    event = copy.deepcopy(world.last_event(world.new_task()["id"]))
    event["object_type"] = "lead"
    assert world.apply(event).outcome is Outcome.IGNORED
    assert world.chartmogul.log == []


def test_result_counts_calls_per_api(world: World) -> None:
    task = world.new_task()
    chartmogul_before, close_before = world.chartmogul.calls, world.close.calls
    result = world.apply(world.last_event(task["id"]))
    assert result.chartmogul_calls == world.chartmogul.calls - chartmogul_before > 0
    assert result.close_calls == world.close.calls - close_before > 0


def test_a_change_soon_after_a_write_settles_first_when_asked(world: World) -> None:
    task = world.new_task("v1")
    world.apply(world.last_event(task["id"]))
    world.close.update_task(task["id"], text="v2")
    world.chartmogul.reset_log()
    window = world.engine.settings.settle_seconds
    assert window > 0
    world.clock.advance(window / 2)
    event = CloseEvent.model_validate(world.last_event(task["id"]))
    with pytest.raises(Settling) as settling:
        world.engine.apply(event, settle=True)
    assert settling.value.seconds_left == pytest.approx(window / 2)
    assert world.chartmogul.writes() == []
    world.close.update_task(task["id"], text="v3")  # the rep's next edit, queued behind it
    world.clock.advance(window / 2)
    newest = CloseEvent.model_validate(world.last_event(task["id"]))
    assert world.engine.apply(newest, settle=True).outcome is Outcome.UPDATED
    assert world.chartmogul.writes() == [("PATCH", "ok")]
    assert world.assert_mirrors(task["id"]).task_details == "v3"


def test_a_change_is_written_at_once_when_not_asked_to_settle_or_when_nothing_changes(world: World) -> None:
    task = world.new_task("v1")
    world.apply(world.last_event(task["id"]))
    world.close.update_task(task["id"], text="v1")  # a re-save: nothing to write, nothing to wait for
    resaved = CloseEvent.model_validate(world.last_event(task["id"]))
    assert world.engine.apply(resaved, settle=True).outcome is Outcome.UNCHANGED
    world.close.update_task(task["id"], text="v2")
    edited = CloseEvent.model_validate(world.last_event(task["id"]))
    assert world.engine.apply(edited).outcome is Outcome.UPDATED  # a redelivery (settle=False)
