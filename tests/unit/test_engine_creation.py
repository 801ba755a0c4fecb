"""The exactly-once create protocol (lease, adopt, POST, store) against in-memory fakes.

ChartMogul tasks have no idempotency key, so these rules are what keeps a lost answer, a
retry or a crashed worker from making a duplicate.
"""

from __future__ import annotations

from typing import Any

import pytest

from tasksync.errors import ConcurrentUpdate, LeaseHeld, OutcomeUnknown, RetryableApiError
from tasksync.logic.results import Outcome
from tasksync.models.link import LinkState, TaskLink
from tests.fakes.chartmogul import Faults
from tests.fakes.world import World, make_world


@pytest.fixture
def world() -> World:
    return make_world()


def test_lost_post_response_is_adopted_not_duplicated(world: World) -> None:
    task = world.new_task()
    world.chartmogul.inject(Faults(lose_response_rate=1.0, methods=frozenset({"POST"})))
    with pytest.raises(OutcomeUnknown):
        world.apply(world.last_event(task["id"]))
    assert len(world.cm_tasks()) == 1  # it was created, we just never heard
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.CREATING
    assert link.maybe_created
    assert link.lease_owner is None  # released: the SQS retry need not wait for the lease
    world.chartmogul.clear_faults()
    world.chartmogul.reset_log()
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.CREATED
    assert world.chartmogul.calls_to("POST") == []  # adopted, not POSTed again
    world.assert_mirrors(task["id"])
    assert len(world.cm_tasks()) == 1


def test_a_5xx_before_the_post_is_retried_without_a_duplicate(world: World) -> None:
    task = world.new_task()
    world.chartmogul.inject(Faults(error_rate=1.0, methods=frozenset({"POST"})))
    with pytest.raises(RetryableApiError):
        world.apply(world.last_event(task["id"]))
    assert world.cm_tasks() == []
    world.chartmogul.clear_faults()
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    world.assert_mirrors(task["id"])


def test_a_lost_post_that_never_arrived_is_posted_again(world: World) -> None:
    task = world.new_task()
    world.chartmogul.inject(Faults(lose_response_rate=1.0, methods=frozenset({"POST"})))
    with pytest.raises(OutcomeUnknown):
        world.apply(world.last_event(task["id"]))
    world.chartmogul.tasks.clear()  # as if the POST had never reached ChartMogul
    world.chartmogul.clear_faults()
    world.chartmogul.reset_log()
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    assert len(world.chartmogul.calls_to("POST")) == 1  # searched, found nothing, POSTed
    world.assert_mirrors(task["id"])


def test_worker_crash_after_post_is_adopted_once_the_lease_expires(world: World) -> None:
    task = world.new_task()
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
    with pytest.raises(LeaseHeld):
        world.apply(event)  # the dead worker's lease still runs
    result = world.apply_until_done(event)  # then adoption
    assert result.outcome is Outcome.CREATED
    assert len(world.chartmogul.calls_to("POST")) == 1
    world.assert_mirrors(task["id"])


def test_a_delete_during_a_crashed_create_removes_the_orphan(world: World) -> None:
    task = world.new_task()
    world.chartmogul.inject(Faults(lose_response_rate=1.0, methods=frozenset({"POST"})))
    with pytest.raises(OutcomeUnknown):
        world.apply(world.last_event(task["id"]))
    world.chartmogul.clear_faults()
    world.close.delete_task(task["id"])
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.DELETED
    assert world.cm_tasks() == []


def test_identical_tasks_are_never_adopted_twice(world: World) -> None:
    first = world.new_task("Same words")
    second = world.new_task("Same words")
    world.apply(world.last_event(first["id"]))
    world.chartmogul.inject(Faults(lose_response_rate=1.0, methods=frozenset({"POST"})))
    with pytest.raises(OutcomeUnknown):
        world.apply(world.last_event(second["id"]))  # created, but we never heard
    world.chartmogul.clear_faults()
    world.chartmogul.reset_log()
    result = world.apply(world.last_event(second["id"]))
    assert result.outcome is Outcome.CREATED
    # Two identical candidates: the older one is claimed by the first task, so the second
    # task adopts its own orphan and never POSTs again.
    assert world.chartmogul.calls_to("POST") == []
    assert len(world.cm_tasks()) == 2
    uuids = {world.links.get(t["id"]).cm_task_uuid for t in (first, second)}  # type: ignore[union-attr]
    assert len(uuids) == 2


def test_an_adopted_task_is_brought_up_to_date(world: World) -> None:
    task = world.new_task("first words")
    world.chartmogul.inject(Faults(lose_response_rate=1.0, methods=frozenset({"POST"})))
    with pytest.raises(OutcomeUnknown):
        world.apply(world.last_event(task["id"]))
    world.chartmogul.clear_faults()
    world.close.update_task(task["id"], text="second words")
    world.chartmogul.reset_log()
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    assert world.chartmogul.writes() == [("PATCH", "ok")]
    world.assert_mirrors(task["id"])


def test_another_workers_live_lease_is_respected(world: World) -> None:
    task = world.new_task()
    world.links.save(
        None, TaskLink(close_task_id=task["id"], state=LinkState.CREATING, lease_owner="other", lease_until=2e9)
    )
    with pytest.raises(LeaseHeld):
        world.apply(world.last_event(task["id"]))
    assert world.chartmogul.log == []


def test_a_lost_race_on_the_link_is_a_concurrent_update(world: World) -> None:
    task = world.new_task()
    real_get = world.links.get
    # Another worker writes the link between our read and our lease.
    world.links.get = lambda task_id: None  # type: ignore[method-assign, assignment]
    world.links.save(None, TaskLink.unseen(task["id"]))
    with pytest.raises(ConcurrentUpdate):
        world.apply(world.last_event(task["id"]))
    world.links.get = real_get  # type: ignore[method-assign]
    assert world.chartmogul.writes() == []  # lost before any POST


def test_rejected_assignee_falls_back_to_the_default() -> None:
    # Mapped to an email ChartMogul does not know: it answers 422 and we retry with the default.
    world = make_world(assignee_map={"alice@sales.example": "nobody@cm.example"})
    task = world.new_task()
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    assert world.chartmogul.writes() == [("POST", "refused"), ("POST", "ok")]
    world.assert_mirrors(task["id"], assignee="success@example.com")


def test_rejected_assignee_on_update_falls_back_to_the_default(world: World) -> None:
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.chartmogul.users.discard(world.other_rep)  # Bob left the ChartMogul account
    world.close.reassign_task(task["id"], world.other_rep_id)
    world.chartmogul.reset_log()
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.UPDATED
    assert world.chartmogul.writes() == [("PATCH", "refused"), ("PATCH", "ok")]
    world.assert_mirrors(task["id"], assignee="success@example.com")


def test_an_update_of_a_task_deleted_in_chartmogul_recreates_it(world: World) -> None:
    task = world.new_task()
    uuid = world.apply(world.last_event(task["id"])).chartmogul_task_uuid
    world.chartmogul.tasks.pop(str(uuid))
    world.close.update_task(task["id"], text="edited")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.RECREATED
    world.assert_mirrors(task["id"])
    assert world.links.claimed_by(str(uuid)) is None
