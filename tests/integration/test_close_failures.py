"""CloseClient against the Close simulator over real HTTP on 127.0.0.1: wrong keys, rate limits (429
and its headers), server errors and lost answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tasksync.dal.close_api import CloseClient
from tasksync.errors import NotFound, OutcomeUnknown, PermanentApiError, RateLimited, RetryableApiError
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.close import CloseSimulator
from tests.support.close_sandbox import TASK_SELECTORS, close_client_for, raw_close_get


@pytest.fixture
def limited_sim() -> Iterator[CloseSimulator]:
    """A simulator allowing one request per second, so the second quick call gets a 429."""
    simulator = CloseSimulator(rate_limit_per_second=1)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


# ===================================================================== failures
def test_wrong_key_is_permanent_and_never_echoed(close_sim: CloseSimulator) -> None:
    secret = "wrong-key-0123456789abcdef"
    client = close_client_for(close_sim, api_key=secret)

    with pytest.raises(PermanentApiError) as caught:
        client.get_user("user_x")

    assert caught.value.status == 401
    assert not isinstance(caught.value, NotFound)
    assert secret not in str(caught.value)
    assert secret not in caught.value.body
    assert close_sim.api_key not in str(caught.value)


def test_rate_limited_write_raises_with_the_header_wait(limited_sim: CloseSimulator) -> None:
    client = close_client_for(limited_sim)
    deadline = time.monotonic() + 5
    with pytest.raises(RateLimited) as caught:  # noqa: PT012 - loop until the window fills
        while time.monotonic() < deadline:
            client.create_webhook(url=f"https://hooks.example/{time.monotonic_ns()}", events=TASK_SELECTORS)

    # Close sends both headers; the wait is the larger: a decimal reset <= 1 s, retry-after 1 s.
    assert caught.value.retry_after == 1.0
    assert caught.value.status == 429
    refused = limited_sim.calls[-1]
    assert (refused.method, refused.status) == ("POST", 429)
    assert len(limited_sim.calls_to("POST", "/webhook/")) == len(limited_sim.subscriptions) + 1


def test_429_carries_ratelimit_and_retry_after_headers(limited_sim: CloseSimulator) -> None:
    answers = [raw_close_get(limited_sim, "/webhook/") for _ in range(3)]

    assert "RateLimit" in answers[0].headers  # also on successful answers
    limited = next(a for a in answers if a.status_code == 429)
    header = limited.headers["RateLimit"]
    assert header.startswith("limit=1, remaining=0, reset=")
    assert 0 < float(header.rsplit("=", 1)[1]) <= 1
    assert limited.headers["retry-after"] == "1"


def test_rate_limited_get_is_retried_once_after_the_wait(limited_sim: CloseSimulator) -> None:
    client = close_client_for(limited_sim)
    limited_sim.seed_demo()
    user_id = next(iter(limited_sim.users))

    client.get_user(user_id)
    user = client.get_user(user_id)  # 429, then one retry after the advised wait

    assert user.id == user_id
    assert [c.status for c in limited_sim.calls_to("GET", "/user/")] == [200, 429, 200]
    assert client.calls == 3


def test_a_get_still_limited_after_its_one_retry_raises(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    close_sim.inject(FaultPlan(rate_limit_rate=1.0, methods=frozenset({"GET"})))

    with pytest.raises(RateLimited) as caught:
        close_client.get_user(close_demo["alice"])

    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 1.0
    assert len(close_sim.calls_to("GET", "/user/")) == 2


def test_injected_server_error_is_retryable(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    close_sim.inject(FaultPlan(error_rate=1.0, seed=7))

    with pytest.raises(RetryableApiError) as caught:
        close_client.get_lead(close_demo["acme"])

    assert not isinstance(caught.value, RateLimited)
    assert caught.value.status is not None
    assert caught.value.status >= 500
    assert len(close_sim.calls_to("GET", "/lead/")) == 1  # 5xx is the queue's to retry


def test_lost_response_on_a_write_is_outcome_unknown(close_sim: CloseSimulator, close_client: CloseClient) -> None:
    close_sim.inject(FaultPlan(lose_response_rate=1.0, methods=frozenset({"POST"})))

    with pytest.raises(OutcomeUnknown):
        close_client.create_webhook(url="https://hooks.example/lost", events=TASK_SELECTORS)

    # The write happened even though the client never heard back.
    assert [s["url"] for s in close_sim.subscriptions.values()] == ["https://hooks.example/lost"]
