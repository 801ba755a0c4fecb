"""The webhook receiver, driven with real HTTP API v2 events (events/*.json).

The queue is an in-memory stand-in for tasksync.dal.queue.EventQueue with the same `enqueue`
signature. It encodes each event exactly as EventQueue does and decodes it again, so the
tests assert on the message the worker would read, not on calls.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tasksync.dal.signature_keys import (
    SignatureKeyInvalid,
    SignatureKeyMap,
    SignatureKeysUnavailable,
    SingleSignatureKey,
    parse_key_map,
)
from tasksync.logic.signature import sign
from tasksync.models.close import CloseEvent
from tasksync.models.queue import QueuedEvent
from tasksync.receiver import MAX_BODY_BYTES, Receiver, WebhookResponse

EVENTS = Path(__file__).resolve().parents[2] / "events"
SANDBOX_KEY = "4163f715a56509cf31c5fb4e5ea975c2dc88e6d61ad41c28eab5b9b12c83d548"
OTHER_KEY = "aa" * 32
CREATED_SUBSCRIPTION = "whsub_1vT2aEze4uUzQlqLIBExYl"


class InMemoryEventQueue:
    def __init__(self, failure: Exception | None = None) -> None:
        self.messages: list[QueuedEvent] = []
        self.failure = failure

    def enqueue(self, event: CloseEvent, raw_event: Mapping[str, Any], *, subscription_id: str | None = None) -> str:
        if self.failure is not None:
            raise self.failure
        body = QueuedEvent(event, raw_event, subscription_id).message_body()
        self.messages.append(QueuedEvent.from_message_body(body))
        return f"message-{len(self.messages)}"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def timestamp_of(event: Mapping[str, Any]) -> int:
    return int(event["headers"]["close-sig-timestamp"])


def signed(body: str | bytes, *, timestamp: int = 1_750_000_000, key: str = SANDBOX_KEY) -> dict[str, Any]:
    """An HTTP API v2 event carrying ``body`` with a valid Close signature."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    event = load("webhook-task-created.json")
    event["body"] = raw.decode("utf-8")
    event["headers"]["content-length"] = str(len(raw))
    event["headers"]["close-sig-timestamp"] = str(timestamp)
    event["headers"]["close-sig-hash"] = sign(key, str(timestamp), raw)
    return event


def receiver_at(now: float, queue: InMemoryEventQueue, *, keys: Any = None, tolerance: int = 300) -> Receiver:
    return Receiver(
        keys=keys if keys is not None else SingleSignatureKey(SANDBOX_KEY),
        queue=queue,
        tolerance_seconds=tolerance,
        clock=lambda: now,
    )


def handle(
    event: dict[str, Any], *, keys: Any = None, now: float | None = None, tolerance: int = 300
) -> tuple[WebhookResponse, InMemoryEventQueue]:
    queue = InMemoryEventQueue()
    clock = now if now is not None else float(event["headers"].get("close-sig-timestamp", "0") or 0)
    response = receiver_at(clock, queue, keys=keys, tolerance=tolerance).handle(event)
    return response, queue


def body_of(response: WebhookResponse) -> dict[str, Any]:
    http = response.to_http()
    assert http["headers"]["content-type"] == "application/json"
    decoded: dict[str, Any] = json.loads(http["body"])
    assert "Traceback" not in http["body"]
    return decoded


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
