"""RequestPacer: a token bucket driven by an injected clock, so every test is deterministic."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasksync.dal.pacing import RequestPacer
from tasksync.errors import RateLimited, RetryableApiError


class FakeClock:
    """A clock that only moves when told to (or when the pacer sleeps, if ``sleep_advances``)."""

    def __init__(self, *, sleep_advances: bool = True) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.sleep_advances = sleep_advances
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self.sleep_advances:
                self.now += seconds


def make_pacer(clock: FakeClock, rate: float, burst: int | None = None, max_wait: float = 2.0) -> RequestPacer:
    return RequestPacer(rate, burst, clock=clock, sleep=clock.sleep, max_wait=max_wait)


def test_burst_is_granted_without_sleeping() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, rate=10, burst=3)
    assert [pacer.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert clock.sleeps == []


def test_after_the_burst_requests_are_spaced_at_the_rate() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, rate=10, burst=1)
    pacer.acquire()
    waits = [pacer.acquire() for _ in range(4)]
    assert waits == pytest.approx([0.1, 0.1, 0.1, 0.1])
    assert clock.now == pytest.approx(1000.4)


def test_idle_time_refills_but_never_beyond_the_burst() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, rate=10, burst=2)
    pacer.acquire()
    pacer.acquire()
    clock.now += 60  # a long idle period must not bank 600 tokens
    assert [pacer.acquire() for _ in range(2)] == [0.0, 0.0]
    assert pacer.acquire() == pytest.approx(0.1)


def test_default_burst_keeps_one_second_under_the_server_window() -> None:
    # ChartMogul counts 40 requests per sliding second; the settings default is 36/s.
    pacer = RequestPacer(36.0, clock=FakeClock())
    assert pacer.burst + pacer.rate <= 40
    assert RequestPacer(0.5, clock=FakeClock()).burst == 1


def test_a_wait_longer_than_max_wait_raises_rate_limited_without_taking_a_token() -> None:
    clock = FakeClock(sleep_advances=False)
    pacer = make_pacer(clock, rate=1, burst=1, max_wait=2.0)
    pacer.acquire()  # the burst token
    assert pacer.acquire() == pytest.approx(1.0)  # reserved, due at t+1
    assert pacer.acquire() == pytest.approx(2.0)  # reserved, due at t+2 (exactly max_wait)
    with pytest.raises(RateLimited) as caught:
        pacer.acquire("POST", "/tasks")
    error = caught.value
    assert isinstance(error, RetryableApiError)
    assert error.api == "chartmogul"
    assert error.status is None
    assert error.retry_after == pytest.approx(3.0)
    assert "client-side pacing" in str(error)
    assert "POST /tasks" in str(error)
    # The refusal reserved nothing: once the clock catches up the next wait is 2 s again.
    clock.now += 1.0
    assert pacer.acquire() == pytest.approx(2.0)


def test_concurrent_callers_each_get_their_own_slot() -> None:
    # The clock stands still, so the waits depend only on how many tokens were promised
    # before each caller: whatever the interleaving, they must be 0, 1/r, 2/r, ...
    clock = FakeClock(sleep_advances=False)
    pacer = make_pacer(clock, rate=50, burst=1, max_wait=10.0)
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def take() -> None:
        start.wait()
        wait = pacer.acquire()
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([i / 50 for i in range(20)])


@pytest.mark.parametrize(
    ("rate", "burst", "max_wait"),
    [(0, None, 2.0), (-1, None, 2.0), (10, 0, 2.0), (10, None, -1.0)],
)
def test_rejects_nonsense_settings(rate: float, burst: int | None, max_wait: float) -> None:
    with pytest.raises(ValueError, match="must"):
        RequestPacer(rate, burst, clock=FakeClock(), max_wait=max_wait)


@given(
    rate=st.floats(min_value=0.5, max_value=100),
    burst=st.integers(min_value=1, max_value=10),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=60),
)
def test_no_window_ever_admits_more_than_burst_plus_rate_times_its_length(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, rate=rate, burst=burst, max_wait=1e9)
    granted: list[float] = []
    for gap in gaps:
        clock.now += gap
        pacer.acquire()
        granted.append(clock.now)  # the moment the request may go out
    for first in range(len(granted)):
        for last in range(first, len(granted)):
            count = last - first + 1
            assert count <= burst + rate * (granted[last] - granted[first]) + 1e-6
