"""The HTTP plumbing shared by the Close and ChartMogul simulators.

A simulator is a real HTTP server on 127.0.0.1 (port 0 by default: the OS picks a free one)
running in a background thread. Routes are registered as (method, regex) -> handler. Every
request goes through the same gate: Basic auth, the rate limiter, then injected faults, so the
clients meet the failure modes they will meet in production.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    raw_body: bytes
    headers: dict[str, str]
    match: re.Match[str]


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        return json.dumps(self.body).encode()


Handler = Callable[[Request], Response]


@dataclass
class FaultPlan:
    """Faults a simulator injects, each with its own probability, drawn from a seeded RNG.

    - ``error_rate``: answer 500/502/503/504 *without* applying the request.
    - ``rate_limit_rate``: answer 429 without applying the request.
    - ``lose_response_rate``: apply the request, then drop the connection with no answer
      (the client sees a connection error and cannot know the write happened).
    - ``latency``: seconds added before answering (a (min, max) range).
    - ``methods``: the HTTP methods the faults apply to (default: all).
    """

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    lose_response_rate: float = 0.0
    latency: tuple[float, float] = (0.0, 0.0)
    methods: frozenset[str] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
    seed: int | None = None


@dataclass
class RecordedCall:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int | None  # None when the response was deliberately lost
    fault: str | None
    at: float = field(default_factory=time.monotonic)  # when it was answered (benchmarks time rates by it)


class RateWindow:
    """A sliding one-second window: more than ``limit`` requests in it get a 429."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        if self.limit is None:
            return True
        now = time.monotonic()
        with self._lock:
            while self._stamps and now - self._stamps[0] >= 1.0:
                self._stamps.popleft()
            if len(self._stamps) >= self.limit:
                return False
            self._stamps.append(now)
            return True


class SimulatorServer:
    """A threaded HTTP server with routing, auth, rate limiting, faults and a call log."""

    name = "simulator"
    # The attributes that hold what the API's account holds (not faults, calls or keys): what
    # snapshot() copies out and restore() puts back, so that `make run` can stop and resume it.
    STATE: ClassVar[tuple[str, ...]] = ()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy({name: getattr(self, name) for name in self.STATE})

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            for name in self.STATE:
                setattr(self, name, copy.deepcopy(state[name]))

    def __init__(
        self,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit_per_second: float | None = None,
        max_parallel: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.faults = FaultPlan()
        self.rate_window = RateWindow(rate_limit_per_second)
        self.max_parallel = max_parallel
        self.calls: list[RecordedCall] = []
        self.lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._rng = random.Random(0)
        self._in_flight = 0
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SimulatorServer:
        simulator = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, the body waits for
            # the client's delayed ACK (~40 ms per request).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                simulator._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer((self._host, self._port), _RequestHandler)
        self._server.daemon_threads = True
        # A short poll interval so that stop() returns quickly (the default 0.5 s adds up in tests).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- configuration
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def inject(self, plan: FaultPlan) -> None:
        with self.lock:
            self.faults = plan
            self._rng = random.Random(plan.seed)

    def clear_faults(self) -> None:
        self.inject(FaultPlan())

    def calls_to(self, method: str, path_regex: str = ".*") -> list[RecordedCall]:
        pattern = re.compile(path_regex)
        with self.lock:
            return [c for c in self.calls if c.method == method and pattern.search(c.path)]

    # ----------------------------------------------------------------- hooks for subclasses
    def authorized(self, headers: dict[str, str]) -> bool:
        """Basic auth with the API key as the username (both APIs accept an empty password)."""
        value = headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return False
        try:
            user = base64.b64decode(value[6:]).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.api_key

    def unauthorized(self) -> Response:
        return Response(401, {"error": "unauthorized"})

    def rate_limited(self) -> Response:
        return Response(429, {"error": "rate limited"}, {"Retry-After": "1"})

    def too_many_parallel(self) -> Response:
        return Response(503, {"error": "too many parallel connections"})

    def not_found(self) -> Response:
        return Response(404, {"error": "not found"})

    # ----------------------------------------------------------------- request handling
    def _draw(self, probability: float) -> bool:
        with self.lock:
            return probability > 0 and self._rng.random() < probability

    def _dispatch(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(http.headers.get("content-length") or 0)
        raw = http.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in http.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        method = http.command
        with self.lock:
            self._in_flight += 1
            in_flight = self._in_flight
        try:
            self._delay(method)
            response, fault = self._gate(method, headers, in_flight)
            if response is None:
                response = self._route(method, parts.path, query, body, raw, headers)
                if self._loses_response(method, response):
                    fault = "lost_response"
            lost = fault == "lost_response"
            self._record(method, parts.path, query, body, None if lost else response.status, fault)
            if lost:
                # Applied, but the client never hears back: close the socket without a reply.
                http.close_connection = True
                with contextlib.suppress(OSError):
                    http.connection.shutdown(socket.SHUT_RDWR)
                return
            self._write(http, response)
        finally:
            with self.lock:
                self._in_flight -= 1

    def _delay(self, method: str) -> None:
        low, high = self.faults.latency
        if high > 0 and method in self.faults.methods:
            with self.lock:
                delay = self._rng.uniform(low, high)
            time.sleep(delay)

    def _gate(self, method: str, headers: dict[str, str], in_flight: int) -> tuple[Response | None, str | None]:
        """Answers that stop a request before it is applied: limits, auth and injected errors."""
        plan = self.faults
        if self.max_parallel is not None and in_flight > self.max_parallel:
            return self.too_many_parallel(), "parallel"
        if not self.authorized(headers):
            return self.unauthorized(), None
        if not self.rate_window.admit():
            return self.rate_limited(), "rate_limit"
        if method in plan.methods and self._draw(plan.rate_limit_rate):
            return self.rate_limited(), "injected_429"
        if method in plan.methods and self._draw(plan.error_rate):
            with self.lock:
                status = self._rng.choice([500, 502, 503, 504])
            return Response(status, {"error": HTTPStatus(status).phrase}), f"injected_{status}"
        return None, None

    def _loses_response(self, method: str, response: Response) -> bool:
        plan = self.faults
        applied = method != "GET" and response.status < 400
        return applied and method in plan.methods and self._draw(plan.lose_response_rate)

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, raw: bytes, headers: dict[str, str]
    ) -> Response:
        for route_method, pattern, handler in self._routes:
            if route_method != method:
                continue
            match = pattern.match(path)
            if match:
                with self.lock:
                    return handler(Request(method, path, query, body, raw, headers, match))
        return self.not_found()

    def _record(
        self, method: str, path: str, query: dict[str, str], body: Any, status: int | None, fault: str | None
    ) -> None:
        with self.lock:
            self.calls.append(RecordedCall(method, path, query, body, status, fault))

    @staticmethod
    def _write(http: BaseHTTPRequestHandler, response: Response) -> None:
        payload = response.encode()
        http.send_response(response.status)
        if payload:
            http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            http.send_header(key, value)
        http.end_headers()
        if payload:
            http.wfile.write(payload)
