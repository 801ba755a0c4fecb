"""A rotated API key: the first 401 rereads the key's secret and the call goes through once more.

The simulators check Basic auth against their `api_key`; rotating it there plays the operator
putting a new key into Close or ChartMogul and into the secret.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tasksync.dal.api_keys import REFRESH_INTERVAL_SECONDS, ApiKey
from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync.dal.close_api import CloseClient
from tasksync.errors import PermanentApiError
from tasksync.models.chartmogul import TaskFields
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import BASE_PATH, CloseSimulator

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tasksync/close-api-key-AbCdEf"


class Secret:
    """The secret as Secrets Manager holds it, counting the reads that skip every cache."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.fresh_reads = 0

    def read(self, arn: str, fresh: bool) -> str:
        assert arn == ARN
        self.fresh_reads += int(fresh)
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_close_reads_a_rotated_key_on_the_first_401(close_sim: CloseSimulator) -> None:
    user = close_sim.add_user("rep@sales.example")
    secret = Secret(close_sim.api_key)
    key = ApiKey("CLOSE_API_KEY", value=None, secret_arn=ARN, reader=secret.read)
    client = CloseClient(base_url=f"{close_sim.url}{BASE_PATH}", api_key=key.value(), read_timeout=5.0)
    client.key_refresh = key.refresh
    close_sim.api_key = secret.value = "rotated-close-key"
    assert client.get_user(user["id"]).email == "rep@sales.example"
    assert (client.calls, secret.fresh_reads) == (2, 1)
    assert client.get_user(user["id"]).email == "rep@sales.example"  # the new key is kept
    assert client.calls == 3


def test_chartmogul_sends_a_write_again_after_a_401_and_creates_one_task(chartmogul_sim: ChartMogulSimulator) -> None:
    customer = chartmogul_sim.add_customer(name="Initech", email="cto@initech.example")["uuid"]
    chartmogul_sim.add_user("rep@sales.example")
    secret = Secret(chartmogul_sim.api_key)
    key = ApiKey("CHARTMOGUL_API_KEY", value=None, secret_arn=ARN, reader=secret.read)
    client = ChartMogulClient(base_url=f"{chartmogul_sim.url}/v1", api_key=key.value())
    client.key_refresh = key.refresh
    chartmogul_sim.api_key = secret.value = "rotated-chartmogul-key"
    fields = TaskFields(task_details="Renewal call", assignee="rep@sales.example", due_date="2025-04-30")
    client.create_task(customer_uuid=customer, fields=fields)
    assert [t["task_details"] for t in chartmogul_sim.live_tasks(customer)] == ["Renewal call"]


def test_a_wrong_key_fails_and_rereads_its_secret_at_most_once_a_minute(close_sim: CloseSimulator) -> None:
    user = close_sim.add_user("rep@sales.example")
    secret = Secret("a-wrong-key")
    clock = Clock()
    key = ApiKey("CLOSE_API_KEY", value=None, secret_arn=ARN, reader=secret.read, clock=clock)
    client = CloseClient(base_url=f"{close_sim.url}{BASE_PATH}", api_key=key.value(), read_timeout=5.0)
    client.key_refresh = key.refresh
    for _ in range(3):
        with pytest.raises(PermanentApiError) as failure:
            client.get_user(user["id"])
        assert failure.value.status == 401
    assert secret.fresh_reads == 1  # unchanged key: no second attempt, and no reread per record
    clock.now += REFRESH_INTERVAL_SECONDS
    with pytest.raises(PermanentApiError):
        client.get_user(user["id"])
    assert secret.fresh_reads == 2


def test_a_key_from_the_environment_has_nothing_to_reread() -> None:
    secret = Secret("unused")
    key = ApiKey("CLOSE_API_KEY", value=SecretStr("from-env"), secret_arn=ARN, reader=secret.read)
    assert key.value() == "from-env"
    assert key.refresh() is None
    assert secret.fresh_reads == 0
    assert "from-env" not in repr(key)
