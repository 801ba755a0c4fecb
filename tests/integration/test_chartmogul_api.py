"""ChartMogulClient against the ChartMogul simulator, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from tasksync.config import SyncSettings
from tasksync.dal.chartmogul_api import ChartMogulClient, assignee_rejected, external_id_taken
from tasksync.dal.pacing import RequestPacer
from tasksync.errors import (
    AssigneeRejected,
    CustomerUnknown,
    NotFound,
    OutcomeUnknown,
    PermanentApiError,
    RateLimited,
    RetryableApiError,
)
from tasksync.models.chartmogul import TaskFields
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tests.support.chartmogul_sandbox import ChartMogulClientFactory, ChartMogulSimFactory, chartmogul_client_for

ALICE = "alice@sales.example"
BOB = "bob@sales.example"


def fields(details: str = "Call about renewal", **overrides: Any) -> TaskFields:
    values: dict[str, Any] = {"task_details": details, "assignee": ALICE, "due_date": "2025-04-30"}
    values.update(overrides)
    return TaskFields(**values)


@pytest.fixture
def demo(chartmogul_sim: ChartMogulSimulator) -> dict[str, Any]:
    return chartmogul_sim.seed_demo()


@pytest.fixture
def acme(demo: dict[str, Any]) -> str:
    return str(demo["customers"]["ops@acme.example"]["uuid"])


# ----------------------------------------------------------------------------- create / get
def test_create_answers_201_and_echoes_the_due_date_as_a_timestamp(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    task = chartmogul_client.create_task(customer_uuid=acme, fields=fields())
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
        customer_uuid=customer, fields=fields(due_date="2025-04-21", completed_at="2025-04-20T09:30:00Z")
    )
    assert task.due_date == "2025-04-21"
    assert task.completed_at == "2025-04-20T09:30:00Z"


def test_create_with_completed_at_echoes_it_as_a_timestamp(chartmogul_client: ChartMogulClient, acme: str) -> None:
    task = chartmogul_client.create_task(
        customer_uuid=acme, fields=fields(due_date="2025-04-30T15:45:00Z", completed_at="2025-04-20T00:00:00Z")
    )
    assert task.due_date == "2025-04-30T15:45:00.000Z"
    assert task.completed_at == "2025-04-20T00:00:00.000Z"


def test_get_returns_the_task_and_404_is_not_found(chartmogul_client: ChartMogulClient, acme: str) -> None:
    created = chartmogul_client.create_task(customer_uuid=acme, fields=fields())
    assert chartmogul_client.get_task(created.task_uuid) == created
    with pytest.raises(NotFound) as caught:
        chartmogul_client.get_task("00000000-0000-0000-0000-000000000000")
    assert caught.value.status == 404
    assert '"code": 404' in caught.value.body


# ----------------------------------------------------------------------------- list / paging
def test_list_filters_by_customer_assignee_due_dates_and_completion(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, demo: dict[str, Any]
) -> None:
    acme = demo["customers"]["ops@acme.example"]["uuid"]
    globex = demo["customers"]["finance@globex.example"]["uuid"]
    client = chartmogul_client
    early = client.create_task(customer_uuid=acme, fields=fields("early", due_date="2025-04-01"))
    late_in_day = client.create_task(customer_uuid=acme, fields=fields("late", due_date="2025-04-30T15:00:00Z"))
    done = client.create_task(
        customer_uuid=acme, fields=fields("done", assignee=BOB, due_date="2025-05-10", completed_at="2025-05-01")
    )
    other = client.create_task(customer_uuid=globex, fields=fields("other", due_date="2025-04-30"))

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
    created = [chartmogul_client.create_task(customer_uuid=acme, fields=fields(f"task {n}")) for n in range(5)]
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
        client.create_task(customer_uuid=customer, fields=fields(f"bulk {n}"))
    page = client.list_tasks(per_page=500)
    assert len(page.entries) == 200
    assert page.has_more
    assert len({t.task_uuid for t in client.iter_tasks(per_page=500)}) == 201


# ----------------------------------------------------------------------------- update
def test_patch_answers_200_with_the_task_then_304_when_nothing_changes(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    task = chartmogul_client.create_task(customer_uuid=acme, fields=fields())
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
    task = chartmogul_client.create_task(customer_uuid=acme, fields=fields())
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
    task = client.create_task(customer_uuid=customer, fields=fields())
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
    task = client.create_task(customer_uuid=customer, fields=fields())
    assert client.delete_task(task.task_uuid) is True
    assert sim.calls_to("DELETE")[-1].status == 200
    assert task.task_uuid in sim.deleted_task_uuids
    assert sim.live_tasks(customer) == []
    with pytest.raises(NotFound):
        client.get_task(task.task_uuid)
    assert client.delete_task(task.task_uuid) is second_delete_result
    assert sim.calls_to("DELETE")[-1].status == missing_status


# ----------------------------------------------------------------------------- customers
def test_search_by_email_finds_customers_and_a_404_means_none(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, demo: dict[str, Any]
) -> None:
    found = chartmogul_client.search_customers_by_email("OPS@acme.example")
    assert [c.uuid for c in found] == [demo["customers"]["ops@acme.example"]["uuid"]]
    assert found[0].data_source_uuid == demo["data_source_uuid"]
    assert chartmogul_client.search_customers_by_email("nobody@nowhere.example") == []
    miss = chartmogul_sim.calls_to("GET", r"^/v1/customers/search$")[-1]
    assert miss.status == 404


def test_search_returns_every_customer_sharing_an_email(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient
) -> None:
    first = chartmogul_sim.add_customer(name="Hooli EU", email="gavin@hooli.example", external_id="eu")
    second = chartmogul_sim.add_customer(name="Hooli US", email="gavin@hooli.example", external_id="us")
    found = chartmogul_client.search_customers_by_email("gavin@hooli.example")
    assert {c.uuid for c in found} == {first["uuid"], second["uuid"]}


def test_list_customers_by_external_id_stays_within_the_data_source(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient
) -> None:
    stripe = chartmogul_sim.add_data_source()
    sheets = chartmogul_sim.add_data_source()
    in_stripe = chartmogul_sim.add_customer(name="Acme", external_id="lead_123", data_source_uuid=stripe)
    in_sheets = chartmogul_sim.add_customer(name="Acme (sheet)", external_id="lead_123", data_source_uuid=sheets)

    found = chartmogul_client.list_customers(external_id="lead_123", data_source_uuid=stripe)
    assert [c.uuid for c in found] == [in_stripe["uuid"]]
    assert found[0].external_id == "lead_123"
    found = chartmogul_client.list_customers(external_id="lead_123", data_source_uuid=sheets)
    assert [c.uuid for c in found] == [in_sheets["uuid"]]
    assert chartmogul_client.list_customers(external_id="lead_999", data_source_uuid=stripe) == []
    assert chartmogul_sim.calls_to("GET", r"^/v1/customers$")[-1].status == 200  # empty list, not 404


def test_create_customer_then_a_duplicate_external_id_is_a_422(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient
) -> None:
    source = chartmogul_sim.add_data_source()
    customer = chartmogul_client.create_customer(
        data_source_uuid=source, external_id="lead_abc", name="Initech", email="cto@initech.example"
    )
    assert customer.uuid.startswith("cus_")
    assert (customer.external_id, customer.data_source_uuid, customer.email) == (
        "lead_abc",
        source,
        "cto@initech.example",
    )
    assert chartmogul_sim.calls_to("POST", r"^/v1/customers$")[-1].status == 201
    assert chartmogul_client.search_customers_by_email("cto@initech.example")[0].uuid == customer.uuid

    with pytest.raises(PermanentApiError) as caught:
        chartmogul_client.create_customer(data_source_uuid=source, external_id="lead_abc", name="Initech", email=None)
    error = caught.value
    assert not isinstance(error, NotFound)
    assert error.status == 422
    assert "The external ID for this customer already exists in our system." in error.body
    assert external_id_taken(error)
    assert not assignee_rejected(error)
    assert not isinstance(error, AssigneeRejected | CustomerUnknown)


# ----------------------------------------------------------------------------- errors
def test_unknown_assignee_is_a_permanent_422_that_assignee_rejected_recognises(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    with pytest.raises(PermanentApiError) as caught:
        chartmogul_client.create_task(customer_uuid=acme, fields=fields(assignee="stranger@elsewhere.example"))
    error = caught.value
    assert error.status == 422
    assert error.body == '{"code": 422, "message": "Assignee is not a valid user", "param": "assignee"}'
    assert assignee_rejected(error)
    assert isinstance(error, AssigneeRejected)  # what the engine acts on
    assert not external_id_taken(error)
    assert chartmogul_sim.live_tasks() == []
    # The engine's fallback: the same task with the default assignee goes through.
    task = chartmogul_client.create_task(customer_uuid=acme, fields=fields().with_assignee("success@example.com"))
    assert task.assignee == "success@example.com"


def test_unknown_customer_and_bad_dates_are_permanent_but_not_assignee_errors(
    chartmogul_client: ChartMogulClient, demo: dict[str, Any]
) -> None:
    with pytest.raises(PermanentApiError) as caught:
        chartmogul_client.create_task(customer_uuid="cus_00000000-0000-0000-0000-000000000000", fields=fields())
    assert caught.value.status == 422
    assert '"param": "customer_uuid"' in caught.value.body
    assert not assignee_rejected(caught.value)

    with pytest.raises(PermanentApiError) as caught:
        chartmogul_client.create_task(
            customer_uuid=demo["customers"]["ops@acme.example"]["uuid"], fields=fields(due_date="30/04/2025")
        )
    assert caught.value.status == 422
    assert '"param": "due_date"' in caught.value.body
    assert not assignee_rejected(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (422, '{"code":422,"message":"Assignee is not a valid user","param":"assignee"}', True),
        (422, '{"errors":{"assignee":"must be a ChartMogul user"}}', True),
        (422, '{"error_details":[{"param":"assignee","code":"invalid","message":"is invalid"}]}', True),
        (422, '{"assignee":["Assignee does not have a CRM seat"]}', True),
        (422, '{"code":422,"message":"The assignee has no access","param":null}', True),
        (400, '{"error":"Unknown assignee"}', True),
        (422, "Assignee not found", True),
        (422, '{"code":422,"message":"Customer not found","param":"customer_uuid"}', False),
        (422, '{"errors":{"due_date":"is invalid"}}', False),
        (403, '{"code":403,"message":"assignee lacks permission","param":"assignee"}', False),
    ],
)
def test_assignee_rejected_understands_every_error_shape(status: int, body: str, expected: bool) -> None:
    error = PermanentApiError("chartmogul", "POST", "/tasks", status, body)
    assert assignee_rejected(error) is expected


def test_a_wrong_api_key_is_a_permanent_401_that_never_shows_the_key(
    chartmogul_sim: ChartMogulSimulator, request: pytest.FixtureRequest
) -> None:
    secret = "cm-wrong-key-0123456789"
    client = ChartMogulClient(base_url=f"{chartmogul_sim.url}/v1", api_key=secret)
    request.addfinalizer(client.close)
    with pytest.raises(PermanentApiError) as caught:
        client.get_task("00000000-0000-0000-0000-000000000000")
    error = caught.value
    assert error.status == 401
    assert "No valid API key provided" in error.body
    assert secret not in str(error)
    assert secret not in error.body
    assert secret not in repr(error.args)


def test_the_server_rate_window_gives_rate_limited_with_retry_after(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim(rate_limit_per_second=2)
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    client = make_chartmogul_client(sim)  # no pacer: nothing holds the client back
    created = 0

    def create_until_refused() -> None:
        # The third request inside one second is refused; a few more attempts cover a slow machine.
        nonlocal created
        for n in range(10):
            client.create_task(customer_uuid=customer, fields=fields(f"task {n}"))
            created += 1

    with pytest.raises(RateLimited) as caught:
        create_until_refused()
    error = caught.value
    assert created >= 2
    assert error.status == 429
    assert error.retry_after == 1.0
    assert "Your request rate has exceeded our rate limit." in error.body
    assert [c.fault for c in sim.calls_to("POST", r"^/v1/tasks$")][-1] == "rate_limit"
    assert len(sim.live_tasks()) == created  # the refused write was not applied, nor retried


def test_a_rate_limited_get_is_retried_once_after_the_short_advised_wait(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim()
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    client = make_chartmogul_client(sim)
    task = client.create_task(customer_uuid=customer, fields=fields())
    # Seed 1 draws 0.13 then 0.85: the first GET gets a 429 (Retry-After: 1), the retry does not.
    sim.inject(FaultPlan(rate_limit_rate=0.5, methods=frozenset({"GET"}), seed=1))
    assert client.get_task(task.task_uuid).task_uuid == task.task_uuid
    assert [c.status for c in sim.calls_to("GET")] == [429, 200]
    assert client.calls == 3


def test_a_429_without_retry_after_still_classifies_as_rate_limited(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim(retry_after_header=False)
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    client = make_chartmogul_client(sim)
    sim.inject(FaultPlan(rate_limit_rate=1.0, methods=frozenset({"PATCH"})))
    task = client.create_task(customer_uuid=customer, fields=fields())
    with pytest.raises(RateLimited) as caught:
        client.update_task(task.task_uuid, {"task_details": "changed"})
    assert caught.value.retry_after is None
    assert sim.calls_to("PATCH")[-1].fault == "injected_429"


def test_injected_server_errors_are_retryable(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    task = chartmogul_client.create_task(customer_uuid=acme, fields=fields())
    chartmogul_sim.inject(FaultPlan(error_rate=1.0, seed=7))
    seen: set[int] = set()
    for _ in range(8):
        with pytest.raises(RetryableApiError) as caught:
            chartmogul_client.get_task(task.task_uuid)
        assert caught.value.status in (500, 502, 503, 504)
        seen.add(caught.value.status or 0)
        with pytest.raises(RetryableApiError) as caught:
            chartmogul_client.create_task(customer_uuid=acme, fields=fields("during the outage"))
        status = caught.value.status
        assert status in (500, 502, 503, 504)
        # 500/502/504 on a write may follow the write: outcome unknown. 503 means refused.
        assert isinstance(caught.value, OutcomeUnknown) is (status != 503)
    assert len(seen) > 1
    chartmogul_sim.clear_faults()
    assert [t["task_uuid"] for t in chartmogul_sim.live_tasks()] == [task.task_uuid]


def test_a_lost_response_to_a_post_is_outcome_unknown_and_the_task_exists(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    chartmogul_sim.inject(FaultPlan(lose_response_rate=1.0, methods=frozenset({"POST"})))
    with pytest.raises(OutcomeUnknown) as caught:
        chartmogul_client.create_task(customer_uuid=acme, fields=fields("maybe created"))
    assert caught.value.status is None
    chartmogul_sim.clear_faults()
    [created] = chartmogul_sim.live_tasks(acme)
    assert created["task_details"] == "maybe created"
    assert chartmogul_sim.calls_to("POST", r"^/v1/tasks$")[-1].fault == "lost_response"
    # The caller's recovery path: look the task up before writing again.
    found = [t.task_uuid for t in chartmogul_client.iter_tasks(customer_uuid=acme, assignee=ALICE)]
    assert found == [created["task_uuid"]]


def test_more_parallel_requests_than_allowed_get_503(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim(max_parallel=2)
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    setup_client = make_chartmogul_client(sim)
    task = setup_client.create_task(customer_uuid=customer, fields=fields())
    # Slow answers keep the first requests in flight while the others arrive.
    sim.inject(FaultPlan(latency=(0.4, 0.4), methods=frozenset({"GET"})))
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(5)

    def fetch() -> None:
        client = chartmogul_client_for(sim)  # one connection per caller, as separate workers would
        start.wait()
        try:
            client.get_task(task.task_uuid)
            outcome = "ok"
        except RetryableApiError as exc:
            outcome = f"{type(exc).__name__}:{exc.status}"
        finally:
            client.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=fetch) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "ok" in outcomes
    assert "RetryableApiError:503" in outcomes
    assert set(outcomes) <= {"ok", "RetryableApiError:503"}
    assert any(c.fault == "parallel" for c in sim.calls_to("GET"))


# ----------------------------------------------------------------------------- pacing / settings
def test_client_side_pacing_refuses_before_the_request_leaves(
    chartmogul_sim: ChartMogulSimulator, acme: str, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    client = make_chartmogul_client(chartmogul_sim, pacer=RequestPacer(0.1, burst=1, max_wait=2.0))
    client.create_task(customer_uuid=acme, fields=fields())
    with pytest.raises(RateLimited) as caught:
        client.list_tasks()
    assert "client-side pacing" in str(caught.value)
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 2.0
    assert chartmogul_sim.calls_to("GET") == []


def test_from_settings_uses_the_configured_url_timeouts_and_pacing(
    chartmogul_sim: ChartMogulSimulator, request: pytest.FixtureRequest
) -> None:
    settings = SyncSettings.from_env(
        {
            "CHARTMOGUL_API_URL": f"{chartmogul_sim.url}/v1/",
            "HTTP_CONNECT_TIMEOUT": "1.5",
            "HTTP_READ_TIMEOUT": "4",
            "CHARTMOGUL_REQUESTS_PER_SECOND": "20",
        }
    )
    client = ChartMogulClient.from_settings(settings, chartmogul_sim.api_key)
    request.addfinalizer(client.close)
    assert client.timeout == (1.5, 4.0)
    assert client.pacer is not None
    assert client.pacer.rate == 20.0
    assert client.list_tasks().entries == []
    assert client.calls == 1


def test_ping_answers_pong(chartmogul_sim: ChartMogulSimulator) -> None:
    response = requests.get(f"{chartmogul_sim.url}/v1/ping", auth=(chartmogul_sim.api_key, ""), timeout=5)
    assert (response.status_code, response.json()) == (200, {"data": "pong!"})
