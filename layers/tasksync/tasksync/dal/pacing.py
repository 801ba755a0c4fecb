"""Client-side request pacing for ChartMogul: a thread-safe token bucket.

ChartMogul allows 40 requests per second, counted over a sliding second, and answers 429
beyond that. Pacing ourselves keeps a burst of queue messages from turning into a burst of
429s. A token bucket of capacity ``burst`` refilled at ``rate_per_second`` lets through at
most ``burst + rate_per_second`` requests in any one second, so the default burst is small
(a tenth of the rate) to stay under the server's window.

Waiting is capped: a Lambda invocation must not spend its time asleep. When a token is
further away than ``max_wait`` the pacer raises RateLimited and the queue takes the long
wait instead (the message becomes visible again after its backoff).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from tasksync.errors import RateLimited

DEFAULT_MAX_WAIT_SECONDS = 2.0


class RequestPacer:
    """Hands out one token per request, at most ``rate_per_second`` on average."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    ) -> None:
        if not rate_per_second > 0:
            raise ValueError("rate_per_second must be positive")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must not be negative")
        self.rate = float(rate_per_second)
        self.burst = burst if burst is not None else max(1, math.floor(self.rate / 10))
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # May go negative: a negative balance is tokens already promised to callers that are
        # sleeping, so that later callers queue behind them instead of racing for the same one.
        self._tokens = float(self.burst)
        self._stamp = clock()

    def acquire(self, method: str = "-", path: str = "-") -> float:
        """Take one token, sleeping until it is due; return the seconds slept.

        Raises RateLimited (with ``retry_after``) without taking a token when the wait would
        exceed ``max_wait``. ``method`` and ``path`` only label that error.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            if wait > self.max_wait:
                raise RateLimited(
                    "chartmogul", method, path, None, message="client-side pacing", retry_after=round(wait, 3)
                )
            self._tokens -= 1
        # Sleep outside the lock: the token is already reserved for us.
        if wait > 0:
            self._sleep(wait)
        return wait
