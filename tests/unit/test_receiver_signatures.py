"""The webhook receiver, driven with real HTTP API v2 events (events/*.json, signed by
tests.unit.deliveries): signatures and their age; every refusal is the same 401.
"""

from __future__ import annotations

import pytest

from tasksync.dal.signature_keys import SignatureKeyMap, SingleSignatureKey
from tests.unit.deliveries import (
    CREATED_SUBSCRIPTION,
    OTHER_KEY,
    SANDBOX_KEY,
    body_of,
    handle,
    load,
    signed,
    timestamp_of,
)

# --- 401 -----------------------------------------------------------------------------------------


def test_a_tampered_body_is_401_and_nothing_is_queued() -> None:
    response, queue = handle(load("webhook-bad-signature.json"))
    assert response.status == 401
    assert response.reason == "signature_mismatch"
    assert queue.messages == []


@pytest.mark.parametrize(
    "missing", [["close-sig-hash"], ["close-sig-timestamp"], ["close-sig-hash", "close-sig-timestamp"]]
)
def test_missing_signature_headers_are_401(missing: list[str]) -> None:
    event = load("webhook-task-created.json")
    now = float(timestamp_of(event))
    for name in missing:
        del event["headers"][name]
    response, queue = handle(event, now=now)
    assert response.status == 401
    assert response.reason == "missing_signature"
    assert queue.messages == []


def test_no_headers_at_all_is_401() -> None:
    event = load("webhook-task-created.json")
    del event["headers"]
    response, queue = handle(event, now=0)
    assert response.status == 401
    assert queue.messages == []


@pytest.mark.parametrize("offset", [301, -301, 10**6])
def test_an_authentic_delivery_outside_the_tolerance_is_200_and_not_queued(offset: int) -> None:
    # Authentic, but too old to rule out a replay: not queued (the reconciler recovers the event
    # from Close's event log), and a 2xx so that Close stops retrying it. A 401 would count as a
    # failed delivery every time Close retries it, and three days of those pause the subscription.
    event = load("webhook-task-created.json")
    response, queue = handle(event, now=timestamp_of(event) + offset)
    assert response.status == 200
    assert response.outcome == "stale"
    assert response.reason == "stale_timestamp"
    assert body_of(response) == {"status": "stale"}
    assert response.signature_age_seconds == offset
    assert queue.messages == []


def test_a_forged_delivery_outside_the_tolerance_is_still_401() -> None:
    event = load("webhook-bad-signature.json")
    response, queue = handle(event, now=timestamp_of(event) + 10**6)
    assert response.status == 401
    assert response.reason == "signature_mismatch"
    assert queue.messages == []


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_a_timestamp_inside_the_tolerance_is_accepted(offset: int) -> None:
    event = load("webhook-task-created.json")
    response, _ = handle(event, now=timestamp_of(event) + offset)
    assert response.status == 202


def test_an_unknown_subscription_is_401_even_with_a_valid_signature_for_another() -> None:
    keys = SignatureKeyMap({"whsub_someone_else": SANDBOX_KEY})
    response, queue = handle(load("webhook-task-created.json"), keys=keys)
    assert response.status == 401
    assert response.reason == "unknown_subscription"
    assert queue.messages == []


def test_the_wrong_key_for_a_known_subscription_is_401() -> None:
    keys = SignatureKeyMap({CREATED_SUBSCRIPTION: OTHER_KEY})
    response, queue = handle(load("webhook-task-created.json"), keys=keys)
    assert response.status == 401
    assert response.reason == "signature_mismatch"
    assert queue.messages == []


def test_a_malformed_timestamp_is_401() -> None:
    event = load("webhook-task-created.json")
    event["headers"]["close-sig-timestamp"] = "yesterday"
    response, queue = handle(event, now=0)
    assert response.status == 401
    assert queue.messages == []


def test_every_401_has_the_same_body() -> None:
    # Which check failed is for our logs, not for the caller.
    bodies = set()
    for name, keys in [
        ("webhook-task-created.json", SingleSignatureKey(OTHER_KEY)),
        ("webhook-bad-signature.json", None),
        ("webhook-task-created.json", SignatureKeyMap({})),
    ]:
        event = load(name)
        response, _ = handle(event, keys=keys)
        assert response.status == 401
        bodies.add(response.to_http()["body"])
    assert len(bodies) == 1


def test_unsigned_garbage_is_401_not_400() -> None:
    event = signed("not json at all")
    event["headers"]["close-sig-hash"] = "0" * 64
    response, queue = handle(event)
    assert response.status == 401
    assert queue.messages == []
