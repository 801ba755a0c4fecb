"""CloseClient against the Close simulator over real HTTP on 127.0.0.1: webhook subscriptions and
signed deliveries.
"""

from __future__ import annotations

import time

import pytest
import requests

from tasksync.dal.close_api import CloseClient
from tasksync.errors import NotFound, PermanentApiError
from tasksync.logic.signature import SignatureVerdict, verify
from tasksync.models.close import CloseWebhook
from tasksync_dev.sandbox.close import BASE_PATH, CloseSimulator
from tests.support.close_sandbox import TASK_SELECTORS


# ===================================================================== webhook subscriptions
def test_webhook_subscription_lifecycle(close_sim: CloseSimulator, close_client: CloseClient) -> None:
    created = close_client.create_webhook(url="https://hooks.example/close", events=TASK_SELECTORS)

    assert created.id.startswith("whsub_")
    assert created.signature_key is not None
    key = created.signature_key.get_secret_value()
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key not in repr(created)
    assert [(e.object_type, e.action) for e in created.events] == [
        (s["object_type"], s["action"]) for s in TASK_SELECTORS
    ]
    assert close_client.get_webhook(created.id).url == "https://hooks.example/close"
    assert [w.id for w in close_client.list_webhooks()] == [created.id]

    paused = close_client.update_webhook(created.id, status="paused")
    assert paused.is_paused
    assert paused.pause_reason == "api"
    resumed = close_client.update_webhook(created.id, status="active")
    assert not resumed.is_paused
    assert resumed.pause_reason is None

    close_sim.pause_subscription(created.id)
    seen = close_client.get_webhook(created.id)
    assert (seen.status, seen.pause_reason) == ("paused", "failures")

    close_client.delete_webhook(created.id)
    with pytest.raises(NotFound):
        close_client.get_webhook(created.id)
    with pytest.raises(NotFound):
        close_client.delete_webhook(created.id)


def test_duplicate_active_subscription_is_refused_with_its_id(close_client: CloseClient) -> None:
    first = close_client.create_webhook(url="https://hooks.example/dup", events=TASK_SELECTORS)

    with pytest.raises(PermanentApiError) as caught:
        close_client.create_webhook(url="https://hooks.example/dup", events=TASK_SELECTORS)

    assert caught.value.status == 400
    assert "Duplicate active subscription" in caught.value.body
    assert first.id in caught.value.body


def test_invalid_subscription_body_names_the_field(close_sim: CloseSimulator) -> None:
    answer = requests.post(
        f"{close_sim.url}{BASE_PATH}/webhook/",
        json={"url": "ftp://nope", "events": []},
        auth=(close_sim.api_key, ""),
        timeout=5,
    )

    assert answer.status_code == 400
    assert set(answer.json()["field-errors"]) == {"url", "events"}


def test_signed_delivery_verifies_with_the_subscription_key(
    close_sim: CloseSimulator, close_demo: dict[str, str]
) -> None:
    subscription = close_sim.create_subscription("https://hooks.example/signed", TASK_SELECTORS)
    close_sim.create_task(lead_id=close_demo["acme"], text="Deliver me")
    (event,) = close_sim.events_matching(subscription["id"])

    body, headers = close_sim.signed_delivery(event, subscription["id"])

    verdict = verify(
        signature_key_hex=subscription["signature_key"],
        timestamp=headers["close-sig-timestamp"],
        signature=headers["close-sig-hash"],
        body=body,
        now=time.time(),
        tolerance_seconds=300,
    )
    assert verdict is SignatureVerdict.VALID
    assert headers["content-type"] == "application/json"
    envelope = CloseWebhook.model_validate_json(body)
    assert envelope.subscription_id == subscription["id"]
    assert envelope.event.id == event["id"]
    tampered = verify(
        signature_key_hex=subscription["signature_key"],
        timestamp=headers["close-sig-timestamp"],
        signature=headers["close-sig-hash"],
        body=body.replace(b"Deliver me", b"Deliver you"),
        now=time.time(),
        tolerance_seconds=300,
    )
    assert tampered is SignatureVerdict.MISMATCH
    _, fixed = close_sim.signed_delivery(event, subscription["id"], timestamp=1_700_000_000)
    assert fixed["close-sig-timestamp"] == "1700000000"
