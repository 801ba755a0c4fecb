"""ChartMogulClient against the ChartMogul simulator: customers (search by email, list by external id,
create).
"""

from __future__ import annotations

from typing import Any

import pytest

from tasksync.dal.chartmogul_api import ChartMogulClient, assignee_rejected, external_id_taken
from tasksync.errors import AssigneeRejected, CustomerUnknown, NotFound, PermanentApiError
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator


# ----------------------------------------------------------------------------- customers
def test_search_by_email_finds_customers_and_a_404_means_none(
    chartmogul_sim: ChartMogulSimulator, chartmogul_client: ChartMogulClient, chartmogul_demo: dict[str, Any]
) -> None:
    found = chartmogul_client.search_customers_by_email("OPS@acme.example")
    assert [c.uuid for c in found] == [chartmogul_demo["customers"]["ops@acme.example"]["uuid"]]
    assert found[0].data_source_uuid == chartmogul_demo["data_source_uuid"]
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
