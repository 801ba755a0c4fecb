"""pytest fixtures for the Close side: a running Close simulator and a client pointed at it, and helpers
for the tests that read the simulator's answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tasksync.dal.close_api import CloseClient
from tasksync_dev.sandbox.close import BASE_PATH, CloseSimulator


@pytest.fixture
def close_sim() -> Iterator[CloseSimulator]:
    """A started CloseSimulator on 127.0.0.1 (OS-picked port), admin key, no rate limit."""
    simulator = CloseSimulator()
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def close_client(close_sim: CloseSimulator) -> Iterator[CloseClient]:
    """A CloseClient with the simulator's key and short timeouts."""
    client = CloseClient(
        base_url=f"{close_sim.url}{BASE_PATH}", api_key=close_sim.api_key, connect_timeout=2.0, read_timeout=5.0
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def close_demo(close_sim: CloseSimulator) -> dict[str, str]:
    """The simulator seeded with the demo reps and leads; their ids by short name."""
    return close_sim.seed_demo()


# The task events a subscription selects (what `tasksync webhook register` asks for, lead tasks).
TASK_SELECTORS = [
    {"object_type": "task.lead", "action": action} for action in ("created", "updated", "completed", "deleted")
]


def close_client_for(sim: CloseSimulator, api_key: str | None = None) -> CloseClient:
    """A client for ``sim`` (with another key when given); the caller closes it."""
    return CloseClient(base_url=f"{sim.url}{BASE_PATH}", api_key=api_key or sim.api_key, read_timeout=5.0)


def raw_close_get(sim: CloseSimulator, path: str, **params: Any) -> requests.Response:
    """A GET past the client, to see the simulator's own answer."""
    return requests.get(f"{sim.url}{BASE_PATH}{path}", params=params, auth=(sim.api_key, ""), timeout=5)


def logged_events(client: CloseClient, **filters: Any) -> list[dict[str, Any]]:
    """Every entry of the event-log scan, raw; each must have parsed."""
    entries = [entry for page in client.event_pages(**filters) for entry in page.entries]
    assert [entry.problem for entry in entries if entry.event is None] == []
    return [entry.raw for entry in entries]
