"""The ChartMogul client reads a refusal's body so that the engine only sees typed errors."""

from __future__ import annotations

import pytest
import requests

from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync.errors import AssigneeRejected, CustomerUnknown, NotFound, PermanentApiError


def answer(status: int, body: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    return response


@pytest.mark.parametrize(
    ("status", "body", "assignee", "customer"),
    [
        (422, '{"code": 422, "message": "Assignee is not a valid user", "param": "assignee"}', True, False),
        (400, '{"errors": {"assignee": ["is invalid"]}}', True, False),
        (422, '{"error": "Customer not found"}', False, True),
        (422, '{"errors": {"assignee": "unknown", "customer_uuid": "unknown customer"}}', True, True),
        (422, '{"message": "The external ID for this customer already exists in our system."}', False, False),
        (400, '{"error": "Customer not found"}', False, False),  # only a 422 says the customer is gone
        (422, '{"errors": {"due_date": "is invalid"}}', False, False),
    ],
)
def test_refusals_are_typed_by_what_they_name(status: int, body: str, assignee: bool, customer: bool) -> None:
    client = ChartMogulClient(base_url="http://127.0.0.1:9", api_key="k")
    error = client.classify("POST", "/tasks", answer(status, body))
    assert isinstance(error, PermanentApiError)
    assert isinstance(error, AssigneeRejected) is assignee
    assert isinstance(error, CustomerUnknown) is customer
    assert (error.status, error.body) == (status, body)


def test_a_404_stays_not_found() -> None:
    client = ChartMogulClient(base_url="http://127.0.0.1:9", api_key="k")
    error = client.classify("PATCH", "/tasks/x", answer(404, '{"error": "customer task not found"}'))
    assert type(error) is NotFound
