"""The HTTP plumbing shared by the Close and ChartMogul clients.

One ``requests.Session`` per client for its lifetime (connection reuse matters on Lambda),
connect and read timeouts on every call, Basic auth with the API key as the username, and a
count of the calls made. No retries here: long waits belong to the queue, so the subclasses
decide what one short retry (if any) is safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import requests

from tasksync.dal.path_ids import safe_path
from tasksync.errors import ApiError, NotFound, OutcomeUnknown, PermanentApiError, RateLimited, RetryableApiError

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SleepBudget:
    """At most ``seconds`` of in-process sleeping per ``window`` seconds, across threads.

    A worker that keeps sleeping on 429s would hold a Lambda (and its bill) for nothing.
    """

    def __init__(self, *, max_wait: float = 2.0, seconds: float = 5.0, window: float = 60.0) -> None:
        self.max_wait = max_wait
        self.seconds = seconds
        self.window = window
        self._sleeps: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    def reserve(self, wait: float) -> bool:
        """Whether we may sleep ``wait`` seconds now without exceeding the budget."""
        if wait < 0 or wait > self.max_wait:
            return False
        now = time.monotonic()
        with self._lock:
            while self._sleeps and now - self._sleeps[0][0] > self.window:
                self._sleeps.popleft()
            if sum(seconds for _, seconds in self._sleeps) + wait > self.seconds:
                return False
            self._sleeps.append((now, wait))
            return True


class HttpOptions(TypedDict, total=False):
    """The transport options every client takes beside its URL and key (for tests and settings)."""

    connect_timeout: float  # seconds; 3.05 by default
    read_timeout: float  # seconds; 10 by default
    session: requests.Session  # a new one by default


@dataclass(frozen=True)
class _Call:
    """One request as the client was asked for it: sent again as is after a 401 or a short 429."""

    method: str
    path: str
    params: dict[str, Any] | None
    json_body: Any
    ok: tuple[int, ...]


class JsonApiClient:
    """Base client: subclasses set ``api_name`` and may override ``classify`` and ``before_send``."""

    api_name = "api"
    # The wait assumed for a 429 that carries no usable header.
    default_rate_limit_wait = 1.0

    def __init__(self, *, base_url: str, api_key: str, **options: Unpack[HttpOptions]) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (options.get("connect_timeout", 3.05), options.get("read_timeout", 10.0))
        self.session = options.get("session") or requests.Session()
        self.session.auth = (api_key, "")
        self.session.headers.update({"Accept": "application/json", "User-Agent": "tasksync/0.1"})
        self._counts = threading.local()
        self.sleep_budget = SleepBudget()
        # Set by wiring when the key comes from a secret: a 401 asks it for a rotated key
        # (tasksync.dal.api_keys.ApiKey.refresh), which answers None when there is none.
        self.key_refresh: Callable[[], str | None] | None = None

    @property
    def calls(self) -> int:
        """The requests this thread has sent with this client: the engine reports one event's
        calls as a difference, and a worker applies the tasks of one batch on several threads."""
        return int(getattr(self._counts, "calls", 0))

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> requests.Response:
        """One call; a GET answered 429 with a short wait is retried once after that wait.

        Writes are never retried here, and the sleeping is bounded by a per-client budget:
        long waits belong to the queue, which retries with its own backoff. A 401 is sent
        again once with a rotated key, when the key's secret holds a new one.
        """
        call = _Call(method, path, params, json_body, ok)
        try:
            return self._request(call)
        except PermanentApiError as exc:
            key = self.key_refresh() if exc.status == 401 and self.key_refresh is not None else None
            if key is None:
                raise
        self.session.auth = (key, "")
        # A 401 applied nothing, so a write is as safe to send again as a read.
        return self._request(call)

    def _request(self, call: _Call) -> requests.Response:
        try:
            return self._send(call)
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else self.default_rate_limit_wait
            if call.method != "GET" or not self.sleep_budget.reserve(wait):
                raise
        time.sleep(wait)
        return self._send(call)

    def before_send(self, method: str, path: str) -> None:
        """Hook run before every attempt (ChartMogul paces its requests here)."""

    def _send(self, call: _Call) -> requests.Response:
        """Make one call; return the response when its status is in ``ok``, else raise.

        Timeouts and connection errors on writes raise OutcomeUnknown (the write may have
        happened); on reads they raise RetryableApiError.
        """
        method, path = call.method, call.path
        self.before_send(method, path)
        self._counts.calls = self.calls + 1
        url = f"{self.base_url}{safe_path(path)}"
        try:
            response = self.session.request(method, url, params=call.params, json=call.json_body, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout:
            # Nothing reached the server: safe to retry even a POST.
            raise RetryableApiError(self.api_name, method, path, None, message="connect timeout") from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            kind = type(exc).__name__
            if method in WRITE_METHODS:
                raise OutcomeUnknown(self.api_name, method, path, None, message=kind) from None
            raise RetryableApiError(self.api_name, method, path, None, message=kind) from None
        if response.status_code in call.ok:
            return response
        raise self.classify(method, path, response)

    def classify(self, method: str, path: str, response: requests.Response) -> ApiError:
        """Turn an unexpected answer into the right error type."""
        status = response.status_code
        body = response.text
        if status in RETRYABLE_STATUSES or status >= 500:
            if method in WRITE_METHODS and status not in {429, 503}:
                # A 500/502/504 on a write may come after the write was applied.
                return OutcomeUnknown(self.api_name, method, path, status, body)
            return RetryableApiError(self.api_name, method, path, status, body)
        if status == 404:
            return NotFound(self.api_name, method, path, status, body)
        return PermanentApiError(self.api_name, method, path, status, body)

    @staticmethod
    def json(response: requests.Response, where: str) -> Any:
        """Decode a JSON body; a broken body is a retryable fault, not a crash."""
        try:
            return response.json()
        except ValueError:
            raise RetryableApiError(
                "api",
                response.request.method or "?",
                where,
                response.status_code,
                response.text[:200],
                message="invalid JSON in response",
            ) from None
