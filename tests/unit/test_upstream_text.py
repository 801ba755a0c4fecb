"""Upstream text in errors and CLI output: no escape sequences, no control characters, no keys."""

from __future__ import annotations

import io
import json

import pytest
import requests

from tasksync.dal.close_api import CloseClient
from tasksync.errors import ApiError
from tasksync.upstream_text import REDACTED, redact_keys, strip_controls, upstream_text
from tasksync_dev.cli.output import one_line, print_table

KEY = "4163f715a56509cf31c5fb4e5ea975c2dc88e6d61ad41c28eab5b9b12c83d548"
HOSTILE = (
    "\x1b[2J\x1b[1;1H\x1b]0;pwned\x07\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"
    "\x1b[31mred\x1b[0m \x00nul \x08bs \x9bc1 \u202egnp.exe\u202c done"
)


def test_escape_sequences_and_control_characters_are_removed() -> None:
    cleaned = strip_controls(HOSTILE)
    assert cleaned == "clickred nul bs c1 gnp.exe done"
    assert strip_controls("line one\n\tline two") == "line one\n\tline two"


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"id": "whsub_1", "signature_key": KEY, "url": "https://x.example"}),
        json.dumps({"error": {"Api_Key": KEY}}),
        '{"id": "whsub_1", "signature_key": "' + KEY[:20],  # cut short by truncation
        f"invalid request: api_key={KEY}&page=2",
        json.dumps({"client_secret": KEY, "access_token": KEY, "password": KEY}),
    ],
)
def test_key_like_fields_are_redacted(body: str) -> None:
    redacted = redact_keys(body)
    assert KEY[:20] not in redacted
    assert REDACTED in redacted


def test_other_fields_are_kept() -> None:
    body = json.dumps({"id": "whsub_1", "status": "paused", "keys": ["a"], "message": "Key is invalid"})
    assert redact_keys(body) == body


def _response(status: int, body: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    return response


def test_an_api_error_keeps_only_clean_redacted_text() -> None:
    client = CloseClient(base_url="http://127.0.0.1:9", api_key="k")
    body = HOSTILE + json.dumps({"signature_key": KEY})
    error = client.classify("POST", "/webhook/", _response(400, body))
    assert isinstance(error, ApiError)
    for text in (error.body, str(error)):
        assert "\x1b" not in text
        assert "\u202e" not in text
        assert KEY not in text
    assert error.body == upstream_text(body)


def test_the_cli_prints_no_escape_sequence_or_key() -> None:
    line = one_line(HOSTILE + "\n" + json.dumps({"signature_key": KEY}))
    assert "\x1b" not in line
    assert KEY not in line
    assert "\n" not in line
    out = io.StringIO()
    print_table([["whsub_1", HOSTILE]], ["id", "latest error"], out=out)
    assert "\x1b" not in out.getvalue()
    assert "\u202e" not in out.getvalue()
