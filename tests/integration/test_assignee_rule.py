"""The assignee rule (README, "Matching"), against the simulators and DynamoDB Local.

1. ASSIGNEE_MAP[close email] (case-insensitive); 2. otherwise the Close user's own email;
3. DEFAULT_ASSIGNEE only when there is no assignee, the Close user cannot be read, or ChartMogul
refuses the assignee; 4. a refusal is remembered, so the user's next task costs one call;
5. with no DEFAULT_ASSIGNEE a new task parks naming the email, a mirrored task keeps syncing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tasksync.dal.links import LinkState
from tasksync.logic.results import Outcome
from tasksync.models.close import CloseEvent
from tasksync.wiring import ApiKeys, build_services
from tasksync_dev.sandbox._server import Request, Response
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.integration.answers import answer_first
from tests.integration.engine_harness import DEFAULT_ASSIGNEE, SyncWorld, make_world

STRANGER = "stranger@sales.example"  # a Close user ChartMogul does not know


@pytest.fixture
def world(close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator, state_tables: Any) -> SyncWorld:
    """A new team's setup: DEFAULT_ASSIGNEE set, no ASSIGNEE_MAP."""
    return make_world(close_sim, chartmogul_sim, state_tables.client, state_tables.state, assignee_map={})


@pytest.fixture
def no_default(close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator, state_tables: Any) -> SyncWorld:
    return make_world(
        close_sim, chartmogul_sim, state_tables.client, state_tables.state, assignee_map={}, default_assignee=None
    )


def test_a_rep_known_to_chartmogul_gets_the_task_with_no_map(world: SyncWorld) -> None:
    task = world.new_task()
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    assert [p.status for p in world.chartmogul.calls_to("POST")] == [201]
    world.assert_mirrors(task["id"], assignee=world.rep)


def test_the_map_wins_and_ignores_case(
    close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator, state_tables: Any
) -> None:
    world = make_world(
        close_sim,
        chartmogul_sim,
        state_tables.client,
        state_tables.state,
        assignee_map={"ALICE@Sales.Example": "bob@sales.example"},
    )
    task = world.new_task()
    world.apply(world.last_event(task["id"]))
    world.assert_mirrors(task["id"], assignee="bob@sales.example")


def test_an_unknown_rep_falls_back_after_one_refusal_and_the_next_task_costs_one_call(world: SyncWorld) -> None:
    stranger = world.close.add_user(STRANGER)["id"]
    first = world.new_task("first", assigned_to=stranger)
    assert world.apply(world.last_event(first["id"])).outcome is Outcome.CREATED
    assert [p.status for p in world.chartmogul.calls_to("POST")] == [422, 201]
    world.assert_mirrors(first["id"], assignee=DEFAULT_ASSIGNEE)
    world.reset_calls()
    second = world.new_task("second", assigned_to=stranger)
    result = world.apply(world.last_event(second["id"]))
    assert result.outcome is Outcome.CREATED
    assert result.chartmogul_calls == 1
    world.assert_mirrors(second["id"], assignee=DEFAULT_ASSIGNEE)


def test_a_refusal_is_remembered_for_other_workers(world: SyncWorld, state_tables: Any) -> None:
    stranger = world.close.add_user(STRANGER)["id"]
    first = world.new_task("first", assigned_to=stranger)
    world.apply(world.last_event(first["id"]))
    # Another worker (a cold start): nothing in its memory, only what DynamoDB holds.
    other = build_services(
        world.services.settings,
        dynamodb=state_tables.client,
        keys=ApiKeys(close=world.close.api_key, chartmogul=world.chartmogul.api_key),
        clock=world.clock,
    )
    world.reset_calls()
    second = world.new_task("second", assigned_to=stranger)
    result = other.engine.apply(CloseEvent.model_validate(world.last_event(second["id"])))
    assert result.outcome is Outcome.CREATED
    assert [p.status for p in world.chartmogul.calls_to("POST")] == [201]
    world.assert_mirrors(second["id"], assignee=DEFAULT_ASSIGNEE)


def test_a_400_assignee_refusal_falls_back_too(world: SyncWorld) -> None:
    # UNVERIFIED upstream: the status of an assignee refusal. The client accepts 400 and 422.
    def refuse_with_400(request: Request) -> Response | None:
        body = request.body if isinstance(request.body, dict) else {}
        if str(body.get("assignee", "")).lower() not in world.chartmogul.users:
            return Response(400, {"code": 400, "message": "Assignee is not a valid user", "param": "assignee"})
        return None

    answer_first(world.chartmogul, "POST", r"/v1/tasks", refuse_with_400)
    stranger = world.close.add_user(STRANGER)["id"]
    task = world.new_task(assigned_to=stranger)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    assert [p.status for p in world.chartmogul.calls_to("POST")] == [400, 201]
    world.assert_mirrors(task["id"], assignee=DEFAULT_ASSIGNEE)


def test_a_close_user_that_cannot_be_read_gets_the_default(world: SyncWorld) -> None:
    gone = world.close.add_user("left@sales.example")["id"]

    def left_the_organization(request: Request) -> Response | None:
        return world.close.not_found() if request.match["id"] == gone else None

    answer_first(world.close, "GET", "/api/v1/user/(?P<id>[^/]+)/", left_the_organization)
    task = world.new_task(assigned_to=gone)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    world.assert_mirrors(task["id"], assignee=DEFAULT_ASSIGNEE)


def test_an_unassigned_task_gets_the_default(world: SyncWorld) -> None:
    task = world.new_task(assigned_to=None)
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    world.assert_mirrors(task["id"], assignee=DEFAULT_ASSIGNEE)


def test_without_a_default_a_new_task_of_an_unknown_rep_parks_naming_the_email(no_default: SyncWorld) -> None:
    world = no_default
    stranger = world.close.add_user(STRANGER)["id"]
    task = world.new_task(assigned_to=stranger)
    result = world.apply(world.last_event(task["id"]))
    assert result.outcome is Outcome.PARKED
    assert STRANGER in (result.reason or "")
    assert world.cm_tasks() == []


def test_without_a_default_a_mirrored_task_keeps_its_assignee_and_keeps_syncing(no_default: SyncWorld) -> None:
    world = no_default
    stranger = world.close.add_user(STRANGER)["id"]
    task = world.new_task()
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.CREATED
    world.close.update_task(task["id"], assigned_to=stranger, text="Renewal call, handed over")
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.UPDATED
    shown = world.cm_tasks()
    assert [(t["task_details"], t["assignee"]) for t in shown] == [("Renewal call, handed over", world.rep)]
    world.close.update_task(task["id"], assigned_to=None, is_complete=True)
    for event in world.close.events[-3:]:
        world.apply(event)
    shown = world.cm_tasks()
    assert [t["assignee"] for t in shown] == [world.rep]
    assert shown[0]["completed_at"] is not None
    link = world.links.get(task["id"])
    assert link is not None
    assert link.state is LinkState.ACTIVE
    world.close.delete_task(task["id"])
    assert world.apply(world.last_event(task["id"])).outcome is Outcome.DELETED
    assert world.cm_tasks() == []
