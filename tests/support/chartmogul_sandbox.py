"""pytest fixtures: a ChartMogul simulator on 127.0.0.1 and a client pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync.dal.pacing import SharedPacer
from tasksync.dal.schedule import MemorySchedule
from tasksync.models.chartmogul import TaskFields
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator

ChartMogulSimFactory = Callable[..., ChartMogulSimulator]


@pytest.fixture
def make_chartmogul_sim() -> Iterator[ChartMogulSimFactory]:
    """Start simulators with non-default options (e.g. the UNVERIFIED-behaviour switches)."""
    started: list[ChartMogulSimulator] = []

    def make(**options: Any) -> ChartMogulSimulator:
        simulator = ChartMogulSimulator(**options)
        simulator.start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture
def chartmogul_sim(make_chartmogul_sim: ChartMogulSimFactory) -> ChartMogulSimulator:
    """A running simulator with default (real-API-like) behaviour and nothing seeded."""
    return make_chartmogul_sim()


ChartMogulClientFactory = Callable[..., ChartMogulClient]


def chartmogul_client_for(simulator: ChartMogulSimulator, **options: Any) -> ChartMogulClient:
    """A client for ``simulator``'s /v1 API; ``options`` go to ChartMogulClient. Caller closes it."""
    options.setdefault("read_timeout", 5.0)
    return ChartMogulClient(base_url=f"{simulator.url}/v1", api_key=simulator.api_key, **options)


@pytest.fixture
def make_chartmogul_client() -> Iterator[ChartMogulClientFactory]:
    """``make(simulator, **options)``: clients that are closed after the test."""
    made: list[ChartMogulClient] = []

    def make(simulator: ChartMogulSimulator, **options: Any) -> ChartMogulClient:
        client = chartmogul_client_for(simulator, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def chartmogul_client(
    chartmogul_sim: ChartMogulSimulator, make_chartmogul_client: ChartMogulClientFactory
) -> ChartMogulClient:
    """A client paced like production (36 requests/s), so bursts queue instead of hitting 429."""
    return make_chartmogul_client(chartmogul_sim, pacer=SharedPacer(MemorySchedule(), 36.0))


# The demo data's ChartMogul users (seed_demo), and task fields that pass the API's checks.
ALICE = "alice@sales.example"
BOB = "bob@sales.example"


def task_fields(details: str = "Call about renewal", **overrides: Any) -> TaskFields:
    values: dict[str, Any] = {"task_details": details, "assignee": ALICE, "due_date": "2025-04-30"}
    values.update(overrides)
    return TaskFields(**values)


@pytest.fixture
def chartmogul_demo(chartmogul_sim: ChartMogulSimulator) -> dict[str, Any]:
    """The simulator seeded with the demo users, data source and customers."""
    return chartmogul_sim.seed_demo()


@pytest.fixture
def acme(chartmogul_demo: dict[str, Any]) -> str:
    """The uuid of the demo customer Acme Corp (ops@acme.example)."""
    return str(chartmogul_demo["customers"]["ops@acme.example"]["uuid"])
