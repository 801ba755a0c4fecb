"""The webhook receiver, driven with real HTTP API v2 events (events/*.json, signed by
tests.unit.deliveries): what is queued (202), what is ignored (200), the method, and the sample
events.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
from typing import Any

import pytest

from tasksync.dal.signature_keys import SignatureKeyMap
from tests.unit.deliveries import (
    CREATED_SUBSCRIPTION,
    EVENTS,
    OTHER_KEY,
    SANDBOX_KEY,
    InMemoryEventQueue,
    body_of,
    handle,
    load,
    receiver_at,
    signed,
    timestamp_of,
)

# --- accepted ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("webhook-task-created.json", "created"),
        ("webhook-task-completed.json", "completed"),
        ("webhook-task-deleted.json", "deleted"),
    ],
)
def test_a_signed_task_event_is_queued_and_answered_202(name: str, action: str) -> None:
    event = load(name)
    envelope = json.loads(event["body"])
    response, queue = handle(event)

    assert response.status == 202
    assert body_of(response) == {"event_id": envelope["event"]["id"]}
    assert [m.event.id for m in queue.messages] == [envelope["event"]["id"]]
    queued = queue.messages[0]
    assert queued.event.action == action
    # The worker gets the event object exactly as Close sent it, plus the subscription id.
    assert dict(queued.raw_event) == envelope["event"]
    assert queued.subscription_id == envelope["subscription_id"]
    # Every event about one task shares a message group (per-task order).
    assert queued.group_id == "task_CIRBr39mOsTfWAc3ErihkSt4cX0PlVBpTovHGNj939w"


def test_each_subscription_is_verified_with_its_own_key() -> None:
    keys = SignatureKeyMap({"whsub_other": OTHER_KEY, CREATED_SUBSCRIPTION: SANDBOX_KEY})
    response, queue = handle(load("webhook-task-created.json"), keys=keys)
    assert response.status == 202
    assert len(queue.messages) == 1


def test_a_base64_body_is_decoded_before_verifying() -> None:
    event = load("webhook-task-created.json")
    event["body"] = base64.b64encode(event["body"].encode("utf-8")).decode("ascii")
    event["isBase64Encoded"] = True
    response, queue = handle(event)
    assert response.status == 202
    assert len(queue.messages) == 1


def test_header_names_are_case_insensitive() -> None:
    event = load("webhook-task-created.json")
    headers = event["headers"]
    event["headers"] = {
        "Close-Sig-Hash": headers.pop("close-sig-hash"),
        "CLOSE-SIG-TIMESTAMP": headers.pop("close-sig-timestamp"),
        **headers,
    }
    response, queue = handle(event, now=float(event["headers"]["CLOSE-SIG-TIMESTAMP"]))
    assert response.status == 202
    assert len(queue.messages) == 1


@pytest.mark.parametrize("tolerance", [0, 59, -1])
def test_a_tolerance_under_a_minute_is_refused(tolerance: int) -> None:
    # 0 used to switch the window off: a captured delivery could then be replayed once its
    # event's idempotency records and tombstones expire.
    with pytest.raises(ValueError, match="at least 60"):
        receiver_at(0, InMemoryEventQueue(), tolerance=tolerance)


def test_the_signature_age_is_reported_for_verified_deliveries() -> None:
    event = load("webhook-task-created.json")
    response, _ = handle(event, now=timestamp_of(event) + 42)
    assert response.status == 202
    assert response.signature_age_seconds == 42


# --- ignored -------------------------------------------------------------------------------------


def test_an_event_we_do_not_act_on_gets_200_and_is_not_queued() -> None:
    event = load("webhook-ignored-event.json")
    response, queue = handle(event)
    assert response.status == 200
    assert body_of(response) == {"event_id": "ev_0X8bjywh2qbo4m0ZjvJDdg", "status": "ignored"}
    assert response.outcome == "ignored"
    assert queue.messages == []


# --- other ---------------------------------------------------------------------------------------


def test_only_post_is_accepted() -> None:
    event = load("webhook-task-created.json")
    event["requestContext"]["http"]["method"] = "GET"
    response, queue = handle(event)
    assert response.status == 405
    assert queue.messages == []


def test_no_answer_ever_carries_a_traceback_or_a_key() -> None:
    cases: list[dict[str, Any]] = [load(p.name) for p in sorted(EVENTS.glob("webhook-*.json"))]
    broken = copy.deepcopy(cases[0])
    broken["body"] = "{"
    cases.append(broken)
    cases.append(signed("{"))
    for event in cases:
        for now in (0, timestamp_of(event)):
            response, _ = handle(event, now=now)
            text = response.to_http()["body"]
            json.loads(text)
            assert "Traceback" not in text
            assert SANDBOX_KEY not in text
            assert event["headers"].get("close-sig-hash", "-") not in text


def test_the_sample_events_are_what_generate_py_makes() -> None:
    spec = importlib.util.spec_from_file_location("events_generate", EVENTS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.SANDBOX_SIGNATURE_KEY == SANDBOX_KEY
    for name, event in generate.build_events().items():
        assert (EVENTS / name).read_text(encoding="utf-8") == generate.render(event), f"{name} is stale"
