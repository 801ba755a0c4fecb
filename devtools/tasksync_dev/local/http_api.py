"""API Gateway's HTTP API in front of the receiver: real HTTP in, payload v2 events to the handler.

Each request on the one route (`POST /webhooks/close`, as in template.yaml) becomes the event
API Gateway would build: the raw body (base64 when it is not text), lower-cased headers,
requestContext.http.method/path and isBase64Encoded. The handler's answer goes back as is.
Any other method or path gets API Gateway's own 404, `{"message":"Not Found"}`.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

WEBHOOK_ROUTE = ("POST", "/webhooks/close")
# API Gateway refuses request bodies above 10 MB itself, before any Lambda runs.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded", "+json", "+xml")

Invoke = Callable[[dict[str, Any]], Any]


def _is_text(content_type: str, body: bytes) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not any(marker in kind for marker in _TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def http_api_event(
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    host: str,
    route_key: str,
) -> dict[str, Any]:
    """The HTTP API payload format 2.0 event for one request."""
    parts = urlsplit(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        # API Gateway joins repeated headers with commas.
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    text = _is_text(merged.get("content-type", ""), body)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not text,
    }
    if cookies:
        event["cookies"] = cookies
    if parts.query:
        params: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        event["queryStringParameters"] = params
    if body:
        event["body"] = body.decode("utf-8") if text else base64.b64encode(body).decode("ascii")
    return event


def _http_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Lambda's answer as status, headers, body (payload 2.0 response rules)."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        raw = result.get("body")
        text = raw if isinstance(raw, str) else ("" if raw is None else json.dumps(raw))
        body = base64.b64decode(text) if result.get("isBase64Encoded") else text.encode("utf-8")
        return int(result["statusCode"]), headers, body
    # Anything else is a 200 with the value as JSON, as API Gateway does.
    return 200, {"content-type": "application/json"}, json.dumps(result).encode("utf-8")


class _ListeningServer(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: with 50 senders connecting at once the kernel
    # refused connections before a thread could accept them. API Gateway refuses none.
    request_queue_size = 128


class HttpApi:
    """A local HTTP API with one route to one function, on 127.0.0.1."""

    def __init__(self, invoke: Invoke, *, port: int, on_error: Callable[[BaseException], None]) -> None:
        self._invoke = invoke
        self._on_error = on_error
        self._in_flight = 0
        self._lock = threading.Lock()
        self.requests_served = 0
        api = self

        class _Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so no idle keep-alive thread outlives stop().
            server_version = "tasksync-local"

            def log_message(self, format: str, *args: Any) -> None:
                return  # the receiver logs every delivery itself

            def _serve(self) -> None:
                api._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        # Binding here (not in start()) makes the port known before the stack wires the app.
        self._server = _ListeningServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._in_flight > 0

    def start(self, thread_name: str) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=thread_name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def _serve(self, http: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._in_flight += 1
        try:
            status, headers, body = self._answer(http)
        finally:
            with self._lock:
                self._in_flight -= 1
                self.requests_served += 1
        http.send_response(status)
        for name, value in headers.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        if http.command != "HEAD":
            http.wfile.write(body)

    def _answer(self, http: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        json_type = {"content-type": "application/json"}
        path = urlsplit(http.path).path
        if (http.command, path) != WEBHOOK_ROUTE:
            return 404, json_type, b'{"message":"Not Found"}'
        try:
            body = self._read_body(http)
        except ValueError:
            return 400, json_type, b'{"message":"Bad Request"}'
        if body is None:
            return 413, json_type, b'{"message":"Request Entity Too Large"}'
        event = http_api_event(
            method=http.command,
            target=http.path,
            headers=list(http.headers.items()),
            body=body,
            source_ip=http.client_address[0],
            host=http.headers.get("host", "127.0.0.1"),
            route_key=" ".join(WEBHOOK_ROUTE),
        )
        try:
            result = self._invoke(event)
        except Exception as exc:  # a crashed invocation is API Gateway's 500, as in AWS
            self._on_error(exc)
            return 500, json_type, b'{"message":"Internal Server Error"}'
        return _http_response(result)

    @staticmethod
    def _read_body(http: BaseHTTPRequestHandler) -> bytes | None:
        """The request body, or None when it is larger than API Gateway accepts."""
        if http.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(http.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    http.rfile.readline()  # the blank line after the last chunk (no trailers)
                    return b"".join(chunks)
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    return None
                chunks.append(http.rfile.read(size))
                http.rfile.readline()
        declared = (http.headers.get("content-length") or "0").strip()
        length = int(declared) if declared.isdigit() else 0
        if length > MAX_PAYLOAD_BYTES:
            return None
        return http.rfile.read(length) if length else b""
