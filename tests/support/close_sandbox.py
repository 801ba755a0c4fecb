"""pytest fixtures for the Close side: a running Close simulator and a client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
