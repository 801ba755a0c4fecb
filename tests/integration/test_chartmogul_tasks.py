"""ChartMogulClient against the ChartMogul simulator, over real HTTP on 127.0.0.1: tasks (create, get,
list and page, update, delete).
"""

from __future__ import annotations

from typing import Any

import pytest

from tasksync.dal.chartmogul_api import ChartMogulClient, assignee_rejected
from tasksync.errors import NotFound, PermanentApiError
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tests.support.chartmogul_sandbox import ALICE, BOB, ChartMogulClientFactory, ChartMogulSimFactory, task_fields


# ----------------------------------------------------------------------------- create / get
def test_create_answers_201_and_echoes_the_due_date_as_a_timestamp(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    task = chartmogul_client.create_task(customer_uuid=acme, fields=task_fields())
    assert chartmogul_sim.calls_to("POST", r"^/v1/tasks$")[-1].status == 201
    assert task.customer_uuid == acme
    assert task.task_details == "Call about renewal"
    assert task.assignee == ALICE
    assert task.due_date == "2025-04-30T00:00:00.000Z"
    assert task.completed_at is None
    assert "-" in task.task_uuid
    assert not task.task_uuid.startswith(("tsk_", "cus_"))
    assert task.created_at is not None
    assert task.created_at.endswith("Z")
    assert len(task.created_at) == len("2025-04-25T02:15:06.474Z")
    assert chartmogul_sim.tasks[task.task_uuid]["due_date"] == "2025-04-30T00:00:00.000Z"
    # Sent exactly as given; an open task does not send completed_at at all.
    assert chartmogul_sim.calls_to("POST", r"^/v1/tasks$")[-1].body == {
        "customer_uuid": acme,
        "task_details": "Call about renewal",
        "assignee": ALICE,
        "due_date": "2025-04-30",
    }


def test_create_in_docs_mode_echoes_dates_as_given(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim(echo_due_date_as_timestamp=False)
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    client = make_chartmogul_client(sim)
    task = client.create_task(
        customer_uuid=customer, fields=task_fields(due_date="2025-04-21", completed_at="2025-04-20T09:30:00Z")
    )
    assert task.due_date == "2025-04-21"
    assert task.completed_at == "2025-04-20T09:30:00Z"


def test_create_with_completed_at_echoes_it_as_a_timestamp(chartmogul_client: ChartMogulClient, acme: str) -> None:
    task = chartmogul_client.create_task(
        customer_uuid=acme, fields=task_fields(due_date="2025-04-30T15:45:00Z", completed_at="2025-04-20T00:00:00Z")
    )
    assert task.due_date == "2025-04-30T15:45:00.000Z"
    assert task.completed_at == "2025-04-20T00:00:00.000Z"


def test_get_returns_the_task_and_404_is_not_found(chartmogul_client: ChartMogulClient, acme: str) -> None:
    created = chartmogul_client.create_task(customer_uuid=acme, fields=task_fields())
    assert chartmogul_client.get_task(created.task_uuid) == created
    with pytest.raises(NotFound) as caught:
        chartmogul_client.get_task("00000000-0000-0000-0000-000000000000")
    assert caught.value.status == 404
    assert '"code": 404' in caught.value.body


# ----------------------------------------------------------------------------- list / paging
def test_list_filters_by_customer_assignee_due_dates_and_completion(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, chartmogul_demo: dict[str, Any]
) -> None:
    acme = chartmogul_demo["customers"]["ops@acme.example"]["uuid"]
    globex = chartmogul_demo["customers"]["finance@globex.example"]["uuid"]
    client = chartmogul_client
    early = client.create_task(customer_uuid=acme, fields=task_fields("early", due_date="2025-04-01"))
    late_in_day = client.create_task(customer_uuid=acme, fields=task_fields("late", due_date="2025-04-30T15:00:00Z"))
    done = client.create_task(
        customer_uuid=acme, fields=task_fields("done", assignee=BOB, due_date="2025-05-10", completed_at="2025-05-01")
    )
    other = client.create_task(customer_uuid=globex, fields=task_fields("other", due_date="2025-04-30"))

    def uuids(**filters: Any) -> set[str]:
        return {task.task_uuid for task in client.list_tasks(**filters).entries}

    assert uuids(customer_uuid=acme) == {early.task_uuid, late_in_day.task_uuid, done.task_uuid}
    assert uuids(assignee=BOB) == {done.task_uuid}
    assert uuids(assignee=ALICE.upper()) == {early.task_uuid, late_in_day.task_uuid, other.task_uuid}
    # Inclusive bounds; a date-only bound covers the whole day.
    assert uuids(due_date_on_or_before="2025-04-30") == {early.task_uuid, late_in_day.task_uuid, other.task_uuid}
    assert uuids(due_date_on_or_after="2025-04-30") == {late_in_day.task_uuid, done.task_uuid, other.task_uuid}
    assert uuids(due_date_on_or_after="2025-04-30T12:00:00Z") == {late_in_day.task_uuid, done.task_uuid}
    assert uuids(due_date_on_or_after="2025-04-02", due_date_on_or_before="2025-05-09") == {
        late_in_day.task_uuid,
        other.task_uuid,
    }
    assert uuids(completed=True) == {done.task_uuid}
    assert uuids(completed=False, customer_uuid=acme) == {early.task_uuid, late_in_day.task_uuid}
    sent = chartmogul_sim.calls_to("GET", r"^/v1/tasks$")[-1].query
    assert sent == {"completed": "false", "customer_uuid": acme, "per_page": "200"}


def test_cursor_paging_two_per_page_over_five_tasks(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    created = [chartmogul_client.create_task(customer_uuid=acme, fields=task_fields(f"task {n}")) for n in range(5)]
    newest_first = [task.task_uuid for task in reversed(created)]

    first = chartmogul_client.list_tasks(customer_uuid=acme, per_page=2)
    assert [t.task_uuid for t in first.entries] == newest_first[:2]
    assert first.has_more
    assert first.cursor is not None
    second = chartmogul_client.list_tasks(customer_uuid=acme, per_page=2, cursor=first.cursor)
    assert [t.task_uuid for t in second.entries] == newest_first[2:4]
    assert second.has_more
    third = chartmogul_client.list_tasks(customer_uuid=acme, per_page=2, cursor=second.cursor)
    assert [t.task_uuid for t in third.entries] == newest_first[4:]
    assert not third.has_more
    assert third.cursor is None

    before = len(chartmogul_sim.calls_to("GET", r"^/v1/tasks$"))
    assert [t.task_uuid for t in chartmogul_client.iter_tasks(customer_uuid=acme, per_page=2)] == newest_first
    assert len(chartmogul_sim.calls_to("GET", r"^/v1/tasks$")) - before == 3


def test_per_page_above_200_is_clamped_and_iter_tasks_follows_the_cursor(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim(rate_limit_per_second=None)
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    client = make_chartmogul_client(sim)
    for n in range(201):
        client.create_task(customer_uuid=customer, fields=task_fields(f"bulk {n}"))
    page = client.list_tasks(per_page=500)
    assert len(page.entries) == 200
    assert page.has_more
    assert len({t.task_uuid for t in client.iter_tasks(per_page=500)}) == 201


# ----------------------------------------------------------------------------- update
def test_patch_answers_200_with_the_task_then_304_when_nothing_changes(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    task = chartmogul_client.create_task(customer_uuid=acme, fields=task_fields())
    updated = chartmogul_client.update_task(task.task_uuid, {"task_details": "Call about upsell", "assignee": BOB})
    assert updated is not None
    assert (updated.task_details, updated.assignee) == ("Call about upsell", BOB)
    assert updated.due_date == task.due_date
    assert chartmogul_sim.tasks[task.task_uuid]["task_details"] == "Call about upsell"

    # Same values again, and a date that is the same instant as the stored echo: 304.
    assert chartmogul_client.update_task(task.task_uuid, {"task_details": "Call about upsell"}) is None
    assert chartmogul_client.update_task(task.task_uuid, {"due_date": "2025-04-30T00:00:00Z"}) is None
    # No updatable field at all: 304 as well.
    assert chartmogul_client.update_task(task.task_uuid, {"customer_uuid": "cus_elsewhere"}) is None
    assert [c.status for c in chartmogul_sim.calls_to("PATCH")] == [200, 304, 304, 304]
    assert chartmogul_sim.tasks[task.task_uuid]["customer_uuid"] == acme

    calls = chartmogul_client.calls
    assert chartmogul_client.update_task(task.task_uuid, {}) is None
    assert chartmogul_client.calls == calls  # nothing to send, no request made

    with pytest.raises(NotFound):
        chartmogul_client.update_task("00000000-0000-0000-0000-000000000000", {"task_details": "x"})


def test_patch_rejects_invalid_fields_with_a_rails_style_422(chartmogul_client: ChartMogulClient, acme: str) -> None:
    task = chartmogul_client.create_task(customer_uuid=acme, fields=task_fields())
    with pytest.raises(PermanentApiError) as caught:
        chartmogul_client.update_task(task.task_uuid, {"task_details": "x" * 256, "due_date": "tomorrow"})
    error = caught.value
    assert error.status == 422
    assert '"error_details"' in error.body
    assert "task_details" in error.body
    assert "due_date" in error.body
    assert not assignee_rejected(error)


@pytest.mark.parametrize("reopen_via_null", [True, False])
def test_reopening_with_a_null_completed_at_in_both_simulator_modes(
    make_chartmogul_sim: ChartMogulSimFactory, reopen_via_null: bool, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim(reopen_via_null=reopen_via_null)
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    client = make_chartmogul_client(sim)
    task = client.create_task(customer_uuid=customer, fields=task_fields())
    completed = client.update_task(task.task_uuid, {"completed_at": "2025-04-29"})
    assert completed is not None
    assert completed.completed_at == "2025-04-29T00:00:00.000Z"

    reopened = client.update_task(task.task_uuid, {"completed_at": None})
    assert sim.calls_to("PATCH")[-1].body == {"completed_at": None}  # a real JSON null went out
    if reopen_via_null:
        assert reopened is not None
        assert reopened.completed_at is None
        assert client.get_task(task.task_uuid).completed_at is None
    else:
        assert reopened is None  # ignored: the API reports nothing changed
        assert client.get_task(task.task_uuid).completed_at == "2025-04-29T00:00:00.000Z"


# ----------------------------------------------------------------------------- delete
@pytest.mark.parametrize(("missing_status", "second_delete_result"), [(404, False), (200, True)])
def test_delete_answers_200_then_missing_in_both_simulator_modes(
    make_chartmogul_sim: ChartMogulSimFactory,
    missing_status: int,
    second_delete_result: bool,
    make_chartmogul_client: ChartMogulClientFactory,
) -> None:
    sim = make_chartmogul_sim(delete_missing_status=missing_status)
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    client = make_chartmogul_client(sim)
    task = client.create_task(customer_uuid=customer, fields=task_fields())
    assert client.delete_task(task.task_uuid) is True
    assert sim.calls_to("DELETE")[-1].status == 200
    assert task.task_uuid in sim.deleted_task_uuids
    assert sim.live_tasks(customer) == []
    with pytest.raises(NotFound):
        client.get_task(task.task_uuid)
    assert client.delete_task(task.task_uuid) is second_delete_result
    assert sim.calls_to("DELETE")[-1].status == missing_status
