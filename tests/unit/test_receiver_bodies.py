"""The webhook receiver, driven with real HTTP API v2 events (events/*.json, signed by
tests.unit.deliveries): authentic but malformed bodies (400) and oversized ones (413).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tasksync.dal.signature_keys import SignatureKeyMap
from tasksync.receiver import MAX_BODY_BYTES
from tests.unit.deliveries import CREATED_SUBSCRIPTION, OTHER_KEY, SANDBOX_KEY, body_of, handle, load, signed

# --- 400 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "",
        "[1, 2, 3]",
        '"a string"',
        '{"subscription_id": "whsub_x", "event": {"id": NaN}}',
        '{"subscription_id": "whsub_x", "n": 1e999}',
        "[" * 100_000 + "]" * 100_000,
        '{"subscription_id": "whsub_x", "n": ' + "9" * 5000 + "}",
    ],
    ids=["text", "empty", "array", "string", "nan", "overflow", "deep", "huge-int"],
)
def test_authentic_but_malformed_json_is_400(body: str) -> None:
    response, queue = handle(signed(body))
    assert response.status == 400
    assert body_of(response)["message"]
    assert queue.messages == []


def test_malformed_json_is_verified_against_every_known_key() -> None:
    # With no readable subscription id, a correct signature by any of our keys still proves the
    # sender; one by none of them is 401.
    keys = SignatureKeyMap({"whsub_a": OTHER_KEY, "whsub_b": SANDBOX_KEY})
    response, _ = handle(signed("{not json"), keys=keys)
    assert response.status == 400
    response, _ = handle(signed("{not json", key="bb" * 32), keys=keys)
    assert response.status == 401


def test_a_json_body_that_is_not_a_close_webhook_is_400_naming_the_field_not_the_value() -> None:
    envelope = json.loads(load("webhook-task-created.json")["body"])
    envelope["event"]["date_updated"] = "SECRET-not-a-date"
    del envelope["event"]["object_type"]
    envelope["event"]["text"] = "SECRET"
    response, queue = handle(signed(json.dumps(envelope)))
    assert response.status == 400
    body = body_of(response)
    assert body["field"].startswith("body.event.")
    assert body["field"] in {"body.event.object_type", "body.event.date_updated"}
    assert "SECRET" not in response.to_http()["body"]
    assert queue.messages == []


def test_a_webhook_without_an_event_is_400() -> None:
    response, queue = handle(signed(json.dumps({"subscription_id": CREATED_SUBSCRIPTION})))
    assert response.status == 400
    assert body_of(response)["field"] == "body.event"
    assert queue.messages == []


def test_invalid_base64_is_400() -> None:
    event = load("webhook-task-created.json")
    event["body"] = "%%% not base64 %%%"
    event["isBase64Encoded"] = True
    response, queue = handle(event)
    assert response.status == 400
    assert queue.messages == []


# --- 413 -----------------------------------------------------------------------------------------


def _padded_envelope(total_bytes: int) -> str:
    envelope = json.loads(load("webhook-task-created.json")["body"])
    envelope["event"]["data"]["text"] = ""
    base = len(json.dumps(envelope).encode("utf-8"))
    envelope["event"]["data"]["text"] = "x" * (total_bytes - base)
    text = json.dumps(envelope)
    assert len(text.encode("utf-8")) == total_bytes
    return text


def test_a_body_of_exactly_the_limit_is_accepted() -> None:
    response, queue = handle(signed(_padded_envelope(MAX_BODY_BYTES)))
    assert response.status == 202
    assert len(queue.messages) == 1


def without_length(event: dict[str, Any]) -> dict[str, Any]:
    # The actual size must be checked too, not only the Content-Length the sender declares.
    del event["headers"]["content-length"]
    return event


@pytest.mark.parametrize("declared", [True, False])
def test_a_body_one_byte_over_the_limit_is_413_even_when_signed(declared: bool) -> None:
    event = signed(_padded_envelope(MAX_BODY_BYTES + 1))
    response, queue = handle(event if declared else without_length(event))
    assert response.status == 413
    assert queue.messages == []


def test_multibyte_characters_count_as_bytes() -> None:
    # 2 bytes per character: within the limit in characters, one byte over it in UTF-8.
    padding = MAX_BODY_BYTES + 1 - len('{"x": ""}')
    body = '{"x": "' + "é" * (padding // 2) + "a" * (padding % 2) + '"}'
    assert len(body) <= MAX_BODY_BYTES < len(body.encode("utf-8")) == MAX_BODY_BYTES + 1
    response, _ = handle(without_length(signed(body)))
    assert response.status == 413


def test_the_declared_length_is_checked_before_anything_else() -> None:
    event = load("webhook-task-created.json")
    event["headers"]["content-length"] = str(MAX_BODY_BYTES + 1)
    del event["headers"]["close-sig-hash"]  # would be 401 if the size were not checked first
    response, queue = handle(event)
    assert response.status == 413
    assert queue.messages == []


def test_an_oversized_base64_body_is_413_before_it_is_decoded() -> None:
    event = load("webhook-task-created.json")
    # Not even valid base64: a 400 would mean it was decoded before the size check.
    event["body"] = "!" * (MAX_BODY_BYTES * 2)
    event["isBase64Encoded"] = True
    response, queue = handle(event)
    assert response.status == 413
    assert queue.messages == []


def test_an_oversized_decoded_base64_body_is_413() -> None:
    raw = _padded_envelope(MAX_BODY_BYTES + 1).encode("utf-8")
    event = without_length(signed(raw))
    event["body"] = base64.b64encode(raw).decode("ascii")
    event["isBase64Encoded"] = True
    response, _ = handle(event)
    assert response.status == 413
