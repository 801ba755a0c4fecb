"""The webhook receiver, driven with real HTTP API v2 events (events/*.json, signed by
tests.unit.deliveries): failures on our side (503, 500) and malformed signature keys.
"""

from __future__ import annotations

import pytest

from tasksync.dal.signature_keys import SignatureKeyInvalid, SignatureKeysUnavailable, SingleSignatureKey, parse_key_map
from tests.unit.deliveries import (
    CREATED_SUBSCRIPTION,
    OTHER_KEY,
    SANDBOX_KEY,
    InMemoryEventQueue,
    body_of,
    handle,
    load,
    receiver_at,
    timestamp_of,
)

# --- 5xx -----------------------------------------------------------------------------------------


def test_a_failed_queue_write_is_503_so_close_retries() -> None:
    event = load("webhook-task-created.json")
    failure = RuntimeError('queue down\nTraceback (most recent call last):\n  File "x.py"')
    queue = InMemoryEventQueue(failure=failure)
    response = receiver_at(timestamp_of(event), queue).handle(event)
    assert response.status == 503
    assert response.outcome == "failed"
    assert response.error is failure
    text = response.to_http()["body"]
    assert "queue down" not in text
    assert "Traceback" not in text
    assert response.event_id == "ev_34bKnJcMX9UnRJmuGH5Jtr"


def test_unreadable_signature_keys_are_503_not_401() -> None:
    class BrokenKeys:
        def key_for(self, subscription_id: str) -> str | None:
            raise SignatureKeysUnavailable("secret unreadable")

        def all_keys(self) -> list[str]:
            raise SignatureKeysUnavailable("secret unreadable")

    response, queue = handle(load("webhook-task-created.json"), keys=BrokenKeys())
    assert response.status == 503
    assert "secret" not in response.to_http()["body"]
    assert queue.messages == []


@pytest.mark.parametrize("declared", ["²", "١٠٠٠٠٠٠", "1²", "+12", " 12 3"])
def test_a_content_length_that_is_not_ascii_digits_is_no_number(declared: str) -> None:
    # "²".isdigit() and "١".isdigit() are true, and int() reads "١٠٠٠٠٠٠" as a million: only
    # ASCII digits make a length. A malformed one is ignored; the actual size is still checked.
    event = load("webhook-task-created.json")
    event["headers"]["content-length"] = declared
    response, queue = handle(event)
    assert response.status == 202
    assert len(queue.messages) == 1


def test_an_unexpected_exception_is_a_500_without_detail() -> None:
    failure = RuntimeError("boom: Traceback (most recent call last)")

    class CrashingKeys:
        def key_for(self, subscription_id: str) -> str | None:
            raise failure

        def all_keys(self) -> list[str]:
            raise failure

    response, queue = handle(load("webhook-task-created.json"), keys=CrashingKeys())
    assert response.status == 500
    assert body_of(response) == {"message": "internal error"}
    assert response.outcome == "failed"
    assert response.reason == "unexpected_error"
    assert response.error is failure
    assert queue.messages == []


@pytest.mark.parametrize(
    "pasted",
    [
        f'"{SANDBOX_KEY}"',
        f"0x{SANDBOX_KEY}",
        SANDBOX_KEY[:-1],
        SANDBOX_KEY + "0",
        "zz" * 32,
        f"{SANDBOX_KEY[:32]} {SANDBOX_KEY[32:]}",
    ],
    ids=["quoted", "0x", "short", "long", "not-hex", "space"],
)
def test_a_malformed_signature_key_is_refused_when_the_keys_are_loaded(pasted: str) -> None:
    with pytest.raises(SignatureKeyInvalid) as caught:
        parse_key_map({CREATED_SUBSCRIPTION: pasted})
    assert pasted not in str(caught.value)
    assert CREATED_SUBSCRIPTION in str(caught.value)


def test_well_formed_keys_load_in_either_case() -> None:
    keys = parse_key_map({CREATED_SUBSCRIPTION: SANDBOX_KEY.upper(), "whsub_other": f" {OTHER_KEY}\n"})
    assert keys.key_for(CREATED_SUBSCRIPTION) == SANDBOX_KEY.upper()
    assert keys.key_for("whsub_other") == OTHER_KEY


def test_a_malformed_signature_key_is_a_misconfiguration_answered_503_not_401() -> None:
    class MalformedKeys:
        def key_for(self, subscription_id: str) -> str | None:
            return parse_key_map({subscription_id: "0x" + SANDBOX_KEY}).key_for(subscription_id)

        def all_keys(self) -> list[str]:
            return parse_key_map({CREATED_SUBSCRIPTION: "0x" + SANDBOX_KEY}).all_keys()

    response, queue = handle(load("webhook-task-created.json"), keys=MalformedKeys())
    assert response.status == 503
    assert response.outcome == "misconfigured"
    assert response.reason == "signature_key_malformed"
    assert SANDBOX_KEY not in response.to_http()["body"]
    assert queue.messages == []


def test_a_malformed_single_key_is_refused_when_it_is_made() -> None:
    with pytest.raises(SignatureKeyInvalid):
        SingleSignatureKey("0x" + SANDBOX_KEY)
