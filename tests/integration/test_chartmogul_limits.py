"""ChartMogulClient against the ChartMogul simulator: the API's rate and parallel limits, client-side
pacing, and the client's settings.
"""

from __future__ import annotations

import threading

import pytest
import requests

from tasksync.config import SyncSettings
from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync.dal.pacing import SharedPacer
from tasksync.dal.schedule import MemorySchedule
from tasksync.errors import RateLimited, RetryableApiError
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tests.support.chartmogul_sandbox import (
    ChartMogulClientFactory,
    ChartMogulSimFactory,
    chartmogul_client_for,
    task_fields,
)


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
            client.create_task(customer_uuid=customer, fields=task_fields(f"task {n}"))
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
    task = client.create_task(customer_uuid=customer, fields=task_fields())
    # Seed 1 draws 0.13 then 0.85: the first GET gets a 429 (Retry-After: 1), the retry does not.
    sim.inject(FaultPlan(rate_limit_rate=0.5, methods=frozenset({"GET"}), seed=1))
    assert client.get_task(task.task_uuid).task_uuid == task.task_uuid
    assert [c.status for c in sim.calls_to("GET")] == [429, 200]
    assert client.calls == 3


def test_a_429_holds_every_client_sharing_the_schedule_for_its_retry_after(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim()
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    now = [1_700_000_000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    schedule = MemorySchedule()  # what the DynamoDB item is to two processes
    refused, other = (
        make_chartmogul_client(sim, pacer=SharedPacer(schedule, 38.0, clock=lambda: now[0], sleep=sleep))
        for _ in range(2)
    )
    task = refused.create_task(customer_uuid=customer, fields=task_fields())
    sim.inject(FaultPlan(rate_limit_rate=1.0, methods=frozenset({"PATCH"})))
    with pytest.raises(RateLimited) as caught:
        refused.update_task(task.task_uuid, {"task_details": "changed"})
    assert caught.value.retry_after == 1.0
    sim.inject(FaultPlan())
    slept.clear()
    now[0] += 0.3
    other.update_task(task.task_uuid, {"task_details": "changed again"})
    # It waited out the rest of the Retry-After, up to the next reservation start (5 slots at 38/s).
    assert 0.7 - 0.01 <= sum(slept) <= 0.7 + 5 / 38 + 0.01


def test_a_request_whose_slot_aged_before_it_left_waits_for_a_new_slot(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    """The transport confirms the slot right before the request leaves: a thread descheduled
    between taking its slot and sending (here: 90 ms pass on the pacer's clock) sends on a
    fresh slot, once."""
    sim = make_chartmogul_sim()
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    now = [1_700_000_000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = SharedPacer(MemorySchedule(), 38.0, clock=lambda: now[0], sleep=sleep)
    acquire = pacer.acquire

    def descheduled_after(method: str = "-", path: str = "-") -> float:
        waited = acquire(method, path)
        now[0] += 0.09
        return waited

    pacer.acquire = descheduled_after  # type: ignore[method-assign]
    client = make_chartmogul_client(sim, pacer=pacer)
    client.create_task(customer_uuid=customer, fields=task_fields())
    assert pacer.overran == 1
    assert len(sim.live_tasks()) == 1


def test_a_429_without_retry_after_still_classifies_as_rate_limited(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim(retry_after_header=False)
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    client = make_chartmogul_client(sim)
    sim.inject(FaultPlan(rate_limit_rate=1.0, methods=frozenset({"PATCH"})))
    task = client.create_task(customer_uuid=customer, fields=task_fields())
    with pytest.raises(RateLimited) as caught:
        client.update_task(task.task_uuid, {"task_details": "changed"})
    assert caught.value.retry_after is None
    assert sim.calls_to("PATCH")[-1].fault == "injected_429"


def test_more_parallel_requests_than_allowed_get_503(
    make_chartmogul_sim: ChartMogulSimFactory, make_chartmogul_client: ChartMogulClientFactory
) -> None:
    sim = make_chartmogul_sim(max_parallel=2)
    customer = sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    setup_client = make_chartmogul_client(sim)
    task = setup_client.create_task(customer_uuid=customer, fields=task_fields())
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
    pacer = SharedPacer(MemorySchedule(), 0.1, block=1, stride=0.0, max_wait=2.0)
    client = make_chartmogul_client(chartmogul_sim, pacer=pacer)
    client.create_task(customer_uuid=acme, fields=task_fields())
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
    assert isinstance(client.pacer, SharedPacer)
    assert client.pacer.rate == 20.0
    assert client.list_tasks().entries == []
    assert client.calls == 1


def test_ping_answers_pong(chartmogul_sim: ChartMogulSimulator) -> None:
    response = requests.get(f"{chartmogul_sim.url}/v1/ping", auth=(chartmogul_sim.api_key, ""), timeout=5)
    assert (response.status_code, response.json()) == (200, {"data": "pong!"})
