"""ChartMogulClient against the ChartMogul simulator: how refusals, wrong keys, server errors and lost
answers are classified.
"""

from __future__ import annotations

from typing import Any

import pytest

from tasksync.dal.chartmogul_api import ChartMogulClient, assignee_rejected, external_id_taken
from tasksync.errors import AssigneeRejected, OutcomeUnknown, PermanentApiError, RetryableApiError
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tests.support.chartmogul_sandbox import ALICE, task_fields


# ----------------------------------------------------------------------------- errors
def test_unknown_assignee_is_a_permanent_422_that_assignee_rejected_recognises(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    with pytest.raises(PermanentApiError) as caught:
        chartmogul_client.create_task(customer_uuid=acme, fields=task_fields(assignee="stranger@elsewhere.example"))
    error = caught.value
    assert error.status == 422
    assert error.body == '{"code": 422, "message": "Assignee is not a valid user", "param": "assignee"}'
    assert assignee_rejected(error)
    assert isinstance(error, AssigneeRejected)  # what the engine acts on
    assert not external_id_taken(error)
    assert chartmogul_sim.live_tasks() == []
    # The engine's fallback: the same task with the default assignee goes through.
    task = chartmogul_client.create_task(customer_uuid=acme, fields=task_fields().with_assignee("success@example.com"))
    assert task.assignee == "success@example.com"


def test_unknown_customer_and_bad_dates_are_permanent_but_not_assignee_errors(
    chartmogul_client: ChartMogulClient, chartmogul_demo: dict[str, Any]
) -> None:
    with pytest.raises(PermanentApiError) as caught:
        chartmogul_client.create_task(customer_uuid="cus_00000000-0000-0000-0000-000000000000", fields=task_fields())
    assert caught.value.status == 422
    assert '"param": "customer_uuid"' in caught.value.body
    assert not assignee_rejected(caught.value)

    with pytest.raises(PermanentApiError) as caught:
        chartmogul_client.create_task(
            customer_uuid=chartmogul_demo["customers"]["ops@acme.example"]["uuid"],
            fields=task_fields(due_date="30/04/2025"),
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


def test_injected_server_errors_are_retryable(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, acme: str
) -> None:
    task = chartmogul_client.create_task(customer_uuid=acme, fields=task_fields())
    chartmogul_sim.inject(FaultPlan(error_rate=1.0, seed=7))
    seen: set[int] = set()
    for _ in range(8):
        with pytest.raises(RetryableApiError) as caught:
            chartmogul_client.get_task(task.task_uuid)
        assert caught.value.status in (500, 502, 503, 504)
        seen.add(caught.value.status or 0)
        with pytest.raises(RetryableApiError) as caught:
            chartmogul_client.create_task(customer_uuid=acme, fields=task_fields("during the outage"))
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
        chartmogul_client.create_task(customer_uuid=acme, fields=task_fields("maybe created"))
    assert caught.value.status is None
    chartmogul_sim.clear_faults()
    [created] = chartmogul_sim.live_tasks(acme)
    assert created["task_details"] == "maybe created"
    assert chartmogul_sim.calls_to("POST", r"^/v1/tasks$")[-1].fault == "lost_response"
    # The caller's recovery path: look the task up before writing again.
    found = [t.task_uuid for t in chartmogul_client.iter_tasks(customer_uuid=acme, assignee=ALICE)]
    assert found == [created["task_uuid"]]
