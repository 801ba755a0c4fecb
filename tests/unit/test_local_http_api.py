"""The local HTTP API's Content-Length: ASCII digits or a 400, as API Gateway answers."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from tasksync_dev.local.http_api import HttpApi


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[HttpApi, list[dict[str, Any]]]]:
    """One server for the module: stopping one waits out its poll interval (0.1 s)."""
    invoked: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        invoked.append(event)
        return {"statusCode": 202, "body": "{}"}

    api = HttpApi(invoke, port=0, on_error=lambda error: None)
    api.start("test-http-api")
    try:
        yield api, invoked
    finally:
        api.stop()


@pytest.fixture
def api(server: tuple[HttpApi, list[dict[str, Any]]]) -> tuple[HttpApi, list[dict[str, Any]]]:
    """The module's server, with no invocation recorded yet."""
    server[1].clear()
    return server


def _post(port: int, length: bytes, body: bytes) -> bytes:
    request = b"POST /webhooks/close HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + length + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("length", [b"\xb2", b"1\xb3", b"-2", b"0x2"])
def test_a_content_length_that_is_not_ascii_digits_is_400(
    api: tuple[HttpApi, list[dict[str, Any]]], length: bytes
) -> None:
    server, invoked = api
    answer = _post(server.port, length, b"{}")
    assert answer.startswith(b"HTTP/1.0 400 ")
    assert invoked == []


def test_an_ascii_content_length_is_read() -> None:
    assert HttpApi._read_body(_Request("2", b"{}x")) == b"{}"


@pytest.mark.parametrize("length", ["١٢", "²"])
def test_unicode_digits_are_no_length_whatever_decoded_the_headers(length: str) -> None:
    # http.server decodes header bytes as Latin-1, so over the wire only "¹²³" get this far,
    # and int() refuses those. The parse must not depend on that: int() reads "١٢" as 12.
    with pytest.raises(ValueError, match="Content-Length"):
        HttpApi._read_body(_Request(length, b"x" * 12))


class _Request:
    """The two attributes of BaseHTTPRequestHandler that reading a body uses."""

    def __init__(self, length: str, body: bytes) -> None:
        self.headers = Message()
        self.headers["content-length"] = length
        self.rfile = io.BytesIO(body)
