"""The engine over real parts: the HTTP clients against the simulators, and DynamoDB Local.

Every rule of `apply(event)` is tested against in-memory fakes in tests/unit
(test_engine_*.py). What stays here are the paths where the real store or a real client
matters: the link and its claim written in one transaction, a lease and `maybe_created` that
survive in DynamoDB across a lost answer or a crash, claims that keep two Close tasks off one
ChartMogul task, the tombstone, completion hints, the cached customer, and the clients' reading
of upstream answers (a 422 for an assignee or a customer, a 404 for a task, an ignored reopen).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tasksync.dal.links import LinkState
from tasksync.errors import OutcomeUnknown
from tasksync.logic.results import Outcome
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.integration.engine_harness import DEFAULT_ASSIGNEE, SyncWorld, make_world


@pytest.fixture
def world(close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator, state_tables: Any) -> SyncWorld:
    return make_world(close_sim, chartmogul_sim, state_tables.client, state_tables.state)


def new_task(world: SyncWorld, text: str = "Renewal call", **fields: Any) -> dict[str, Any]:
    fields.setdefault("assigned_to", world.rep_id)
    fields.setdefault("date", "2025-03-01")
    return world.close.create_task(lead_id=fields.pop("lead_id", world.lead), text=text, **fields)


def test_create_posts_once_and_stores_the_link(world: SyncWorld) -> None:
    task = new_task(world)
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.CREATED
    assert world.cm_writes() == [("POST", "/v1/tasks")]
    mirrored = world.assert_mirrors(task["id"])
    assert mirrored["customer_uuid"] == world.customer
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.ACTIVE
    assert link.cm_task_uuid == result.chartmogul_task_uuid
    assert link.version is not None
    assert link.fingerprint
    assert result.chartmogul_calls >= 1
    assert result.close_calls >= 1  # lead and user looked up once


def test_reopen_when_chartmogul_ignores_a_null_completed_at_recreates_the_task(
    close_sim: CloseSimulator, state_tables: Any
) -> None:
    # UNVERIFIED upstream: whether PATCH completed_at=null reopens. This simulator ignores it.
    with ChartMogulSimulator(reopen_via_null=False) as chartmogul:
        world = make_world(close_sim, chartmogul, state_tables.client, state_tables.state)
        task = new_task(world)
        world.apply(world.last_event(task["id"]))
        world.close.complete_task(task["id"])
        world.apply(world.last_event(task["id"]))
        world.close.reopen_task(task["id"])
        result = world.apply(world.last_event(task["id"]))
        assert result.outcome is Outcome.RECREATED
        mirrored = world.assert_mirrors(task["id"])
        assert mirrored["completed_at"] is None
        assert len(world.cm_tasks()) == 1


def test_delete_removes_the_task_and_a_late_event_never_brings_it_back(world: SyncWorld) -> None:
    task = new_task(world)
    created = world.last_event(task["id"])
    world.apply(created)
    world.close.update_task(task["id"], text="edited")
    late_update = world.last_event(task["id"])
    world.close.delete_task(task["id"])
    world.reset_calls()
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.DELETED
    assert [c.method for c in world.chartmogul.calls] == ["DELETE"]
    assert world.cm_tasks() == []
    world.reset_calls()
    for late in (late_update, created):
        assert world.apply(late).outcome is Outcome.SKIPPED_STALE
    assert world.chartmogul.calls == []
    assert world.cm_tasks() == []
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.DELETED


def test_lead_change_deletes_and_creates_under_the_new_customer(world: SyncWorld) -> None:
    task = new_task(world)
    old_uuid = world.apply(world.last_event(task["id"])).chartmogul_task_uuid
    world.reset_calls()
    world.close.move_task(task["id"], world.other_lead)
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.RECREATED
    assert [c.method for c in world.chartmogul.calls if c.method != "GET"] == ["DELETE", "POST"]
    assert world.cm_tasks(world.customer) == []
    moved = world.assert_mirrors(task["id"])
    assert moved["customer_uuid"] == world.other_customer
    assert moved["task_uuid"] != old_uuid


def test_event_without_data_is_resolved_from_close(world: SyncWorld) -> None:
    task = new_task(world)
    event = copy.deepcopy(world.last_event(task["id"]))
    event["data"] = None
    assert world.apply(event).outcome is Outcome.CREATED
    assert world.close.calls_to("GET", r"/task/")
    world.assert_mirrors(task["id"])


def test_event_without_data_for_a_task_close_deleted_is_a_delete(world: SyncWorld) -> None:
    task = new_task(world)
    world.apply(world.last_event(task["id"]))
    world.close.update_task(task["id"], text="edit")
    event = copy.deepcopy(world.last_event(task["id"]))
    event["data"] = None
    world.close.delete_task(task["id"])  # Close now answers 404 for it
    assert world.apply(event).outcome is Outcome.DELETED
    assert world.cm_tasks() == []


def test_lost_post_response_is_adopted_not_duplicated(world: SyncWorld) -> None:
    task = new_task(world)
    world.chartmogul.inject(FaultPlan(lose_response_rate=1.0, methods=frozenset({"POST"})))
    with pytest.raises(OutcomeUnknown):
        world.apply(world.last_event(task["id"]))
    assert len(world.cm_tasks()) == 1  # it was created, we just never heard
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.CREATING
    assert link.maybe_created
    world.chartmogul.clear_faults()
    world.reset_calls()
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.CREATED
    assert world.chartmogul.calls_to("POST") == []  # adopted, not POSTed again
    world.assert_mirrors(task["id"])
    assert len(world.cm_tasks()) == 1


def test_worker_crash_after_post_is_adopted_once_the_lease_expires(world: SyncWorld) -> None:
    task = new_task(world)
    event = world.last_event(task["id"])

    class WorkerKilled(Exception):
        pass

    real_save = world.links.save_with_claim

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise WorkerKilled

    world.links.save_with_claim = killed  # type: ignore[method-assign]
    with pytest.raises(WorkerKilled):
        world.apply(event)
    world.links.save_with_claim = real_save  # type: ignore[method-assign]
    assert len(world.cm_tasks()) == 1
    result = world.apply_until_done(event)  # LeaseHeld until the lease expires, then adoption
    assert result.outcome is Outcome.CREATED
    assert len(world.chartmogul.calls_to("POST")) == 1
    world.assert_mirrors(task["id"])


def test_identical_tasks_are_never_adopted_twice(world: SyncWorld) -> None:
    first = new_task(world, "Same words")
    second = new_task(world, "Same words")
    world.apply(world.last_event(first["id"]))
    world.chartmogul.inject(FaultPlan(lose_response_rate=1.0, methods=frozenset({"POST"})))
    with pytest.raises(OutcomeUnknown):
        world.apply(world.last_event(second["id"]))  # created, but we never heard
    world.chartmogul.clear_faults()
    world.reset_calls()
    result = world.apply(world.last_event(second["id"]))
    assert result.outcome is Outcome.CREATED
    # Two identical candidates: the older one is claimed by the first task, so the second
    # task adopts its own orphan and never POSTs again.
    assert world.chartmogul.calls_to("POST") == []
    assert len(world.cm_tasks()) == 2
    links = {world.links.get(t["id"]).cm_task_uuid for t in (first, second)}  # type: ignore[union-attr]
    assert len(links) == 2


def test_rejected_assignee_falls_back_to_the_default(
    close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator, state_tables: Any
) -> None:
    # Mapped to an email ChartMogul does not know: it answers 422 and we retry with the default.
    world = make_world(
        close_sim,
        chartmogul_sim,
        state_tables.client,
        state_tables.state,
        assignee_map={"alice@sales.example": "nobody@cm.example"},
    )
    task = new_task(world)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    posts = world.chartmogul.calls_to("POST")
    assert [p.status for p in posts] == [422, 201]
    world.assert_mirrors(task["id"], assignee=DEFAULT_ASSIGNEE)


def test_permanent_refusal_parks_the_task(world: SyncWorld) -> None:
    customer = world.chartmogul.add_customer(name="Ghost", email="ghost@x.example")["uuid"]
    lead = world.close.add_lead("Ghost", emails=["ghost@x.example"])["id"]
    world.chartmogul.customers.pop(customer)  # gone after we cached it: ChartMogul answers 422
    world.services.cache.put_customer(lead, customer, 3600)
    task = new_task(world, lead_id=lead)
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.PARKED
    assert "HTTP 422" in (result.reason or "")
    # The client read the 422 as CustomerUnknown: the cached customer is dropped.
    assert world.services.cache.get_customer(lead) is None


def test_completion_activity_time_is_used(world: SyncWorld) -> None:
    task = new_task(world)
    world.apply(world.last_event(task["id"]))
    world.close.complete_task(task["id"])
    activity = next(e for e in reversed(world.close.events) if e["object_type"] == "activity.task_completed")
    assert world.apply(activity).outcome is Outcome.NOTED
    world.apply(world.last_event(task["id"]))
    mirrored = world.assert_mirrors(task["id"])
    expected = activity["data"]["activity_at"][:19]
    assert mirrored["completed_at"].startswith(expected)
