"""Hostile input to the webhook receiver: generated bodies, headers, signatures and timestamps.

Properties, whatever arrives:
- the answer is 2xx or 4xx (a 5xx would make Close retry garbage; the queue double never fails);
- nothing is queued unless the delivery carries a valid, fresh signature over the exact body;
- a 2xx means a valid signature: fresh (202 queued, 200 ignored) or stale (200, not queued);
- the answer is a small JSON object with no traceback and no key in it;
- a body over the size limit is refused before its signature is checked or its JSON parsed,
  after at most one read of the raw text.

`make chaos` (TASKSYNC_CHAOS=full) runs 10,000 cases; `make test` a few hundred.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tasksync.logic.signature import sign
from tasksync.models.close import CloseEvent
from tasksync.models.queue import QueuedEvent
from tasksync.receiver import MAX_BODY_BYTES, Receiver
from tests.unit.deliveries import SANDBOX_KEY, load

FULL = os.environ.get("TASKSYNC_CHAOS", "").strip().lower() == "full"
EXAMPLES = 10_000 if FULL else 300
NOW = 1_750_000_000
TOLERANCE = 300
SUBSCRIPTION = "whsub_1vT2aEze4uUzQlqLIBExYl"
SAMPLE_ENVELOPE: dict[str, Any] = json.loads(load("webhook-task-created.json")["body"])


class RecordingQueue:
    """The queue double: keeps what would be sent (encoded as EventQueue encodes it)."""

    def __init__(self) -> None:
        self.messages: list[QueuedEvent] = []

    def enqueue(self, event: CloseEvent, raw_event: Mapping[str, Any], *, subscription_id: str | None = None) -> str:
        self.messages.append(
            QueuedEvent.from_message_body(QueuedEvent(event, raw_event, subscription_id).message_body())
        )
        return f"m{len(self.messages)}"


class CountingKeys:
    """SingleSignatureKey, counting how often a key is asked for (i.e. a signature is checked)."""

    def __init__(self) -> None:
        self.lookups = 0

    def key_for(self, subscription_id: str) -> str | None:
        self.lookups += 1
        return SANDBOX_KEY

    def all_keys(self) -> list[str]:
        self.lookups += 1
        return [SANDBOX_KEY]


class CountingText(str):
    """A request body that counts how often it is turned into bytes."""

    encodes = 0

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        self.encodes += 1
        return str(self).encode(encoding, errors)


@dataclass
class Delivery:
    event: dict[str, Any]
    body: bytes  # what the receiver would see after decoding
    validly_signed: bool
    # A valid signature over the exact body, but a timestamp outside the tolerance.
    authentic_but_stale: bool = False


# --- strategies -----------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


# Built once: a strategy made inside a composite is looked up again on every draw.
booleans = st.booleans()
MUTATION_COUNTS = st.sampled_from([0, 0, 1, 2, 3])
MUTATED_KEYS = [
    st.lists(st.sampled_from(sorted(SAMPLE_ENVELOPE["event"])), min_size=count, max_size=count, unique=True)
    for count in range(4)
]
SUBSCRIPTION_IDS = st.none() | st.integers() | st.text(max_size=30) | st.just(SUBSCRIPTION)
EXTRA_KEYS = st.text(max_size=10)


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """Close-shaped JSON with some fields replaced, removed or added."""
    envelope = json.loads(json.dumps(SAMPLE_ENVELOPE))
    event = envelope["event"]
    for key in draw(MUTATED_KEYS[draw(MUTATION_COUNTS)]):
        if draw(booleans):
            del event[key]
        else:
            event[key] = draw(json_values)
    if one_in(draw, 5):
        envelope["subscription_id"] = draw(SUBSCRIPTION_IDS)
    if one_in(draw, 5):
        envelope[draw(EXTRA_KEYS)] = draw(json_values)
    return json.dumps(envelope, ensure_ascii=draw(booleans)).encode()


# Repeated branches weight the draw: most cases must get past the signature to test what follows.
bodies = st.one_of(
    envelopes(),
    envelopes(),
    envelopes(),
    envelopes(),
    st.binary(max_size=400),
    st.text(max_size=400).map(str.encode),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b"", b"{", b"[" * 5000, b"\xff\xfe", b'{"subscription_id": "whsub_x", "event": null}']),
)
in_window = st.integers(NOW - TOLERANCE, NOW + TOLERANCE).map(str)
timestamps = st.one_of(
    in_window,
    in_window,
    in_window,
    in_window,
    st.integers(-(10**15), 10**15).map(str),
    st.text(max_size=20),
    st.sampled_from(["", " ", "1e9", "0x10", "١٧٥٠٠٠٠٠٠٠", f"{NOW}.5", f" {NOW}"]),
)
junk_headers = st.dictionaries(
    st.text(min_size=1, max_size=20), st.text(max_size=60) | st.integers() | st.none(), max_size=5
)


ONE_IN = {n: st.sampled_from([False] * (n - 1) + [True]) for n in (5, 10, 20, 30)}


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True about once in ``n`` draws (st.integers favours its bounds, so it cannot weigh)."""
    return draw(ONE_IN[n])


HOWS = st.sampled_from(
    ["valid", "valid", "valid", "valid", "valid", "other-key", "garbage", "flipped", "missing", "upper"]
)
GARBAGE_SIGNATURES = st.text(max_size=80)
SIGNATURE_HEADERS = st.sampled_from(["close-sig-hash", "Close-Sig-Hash"])
TIMESTAMP_HEADERS = st.sampled_from(["close-sig-timestamp", "CLOSE-SIG-TIMESTAMP"])
ODD_HEADERS = st.none() | st.just([("a", "b")])
METHODS = st.sampled_from(["POST"] * 12 + ["GET", "post", ""])
ODD_ENCODED_BODIES = st.text(max_size=50)
ODD_BODIES = st.none() | st.integers() | st.just(["x"])


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    body = draw(bodies)
    timestamp = draw(timestamps)
    how = draw(HOWS)
    headers: dict[str, Any] = dict(draw(junk_headers))
    signature: str | None
    match how:
        case "valid" | "upper":
            signature = sign(SANDBOX_KEY, timestamp, body) if timestamp.isascii() else None
            if signature is not None and how == "upper":
                signature = signature.upper()
        case "other-key":
            signature = sign("bb" * 32, timestamp, body) if timestamp.isascii() else None
        case "flipped":
            valid = sign(SANDBOX_KEY, timestamp, body) if timestamp.isascii() else "0" * 64
            signature = valid[:-1] + ("0" if valid[-1] != "0" else "1")
        case "garbage":
            signature = draw(GARBAGE_SIGNATURES)
        case _:
            signature = None
    if signature is not None:
        headers[draw(SIGNATURE_HEADERS)] = signature
    if how != "missing" or draw(booleans):
        headers[draw(TIMESTAMP_HEADERS)] = timestamp
    encoded = draw(booleans)
    reencoded = False
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "POST /webhooks/close",
        "headers": draw(ODD_HEADERS) if one_in(draw, 20) else headers,
        "requestContext": {"http": {"method": draw(METHODS)}},
        "isBase64Encoded": encoded,
    }
    if encoded:
        event["body"] = draw(ODD_ENCODED_BODIES) if one_in(draw, 10) else base64.b64encode(body).decode()
    else:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = body.decode("latin-1")  # what a careless front end might pass on
            body = event["body"].encode("utf-8")
            reencoded = True
    if one_in(draw, 30):
        event["body"] = draw(ODD_BODIES)
    well_formed = timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12
    fresh = well_formed and abs(NOW - int(timestamp)) <= 300
    decoded_as_signed = isinstance(event.get("body"), str) and (
        not encoded or event["body"] == base64.b64encode(body).decode()
    )
    # No body at all reads as the empty body, which a signature can cover too.
    decoded_as_signed = decoded_as_signed or ("body" in event and event["body"] is None and body == b"")
    authentic = how in ("valid", "upper") and signature is not None and well_formed and decoded_as_signed
    authentic = authentic and not reencoded
    return Delivery(
        event=event, body=body, validly_signed=authentic and fresh, authentic_but_stale=authentic and not fresh
    )


def receiver(queue: RecordingQueue, keys: Any = None) -> Receiver:
    return Receiver(keys=keys or CountingKeys(), queue=queue, tolerance_seconds=TOLERANCE, clock=lambda: float(NOW))


def assert_safe_answer(http: dict[str, Any]) -> dict[str, Any]:
    assert 200 <= http["statusCode"] < 500, http
    assert "Traceback" not in http["body"]
    assert SANDBOX_KEY not in http["body"].lower()
    answer = json.loads(http["body"])
    assert isinstance(answer, dict)
    assert len(http["body"]) < 1000
    return answer


_settings = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@_settings
@given(delivery=deliveries())
def test_any_delivery_gets_a_safe_answer_and_only_signed_ones_are_queued(delivery: Delivery) -> None:
    queue = RecordingQueue()
    response = receiver(queue).handle(delivery.event)
    answer = assert_safe_answer(response.to_http())
    event(f"{response.status} {response.reason}")  # --hypothesis-show-statistics shows the mix
    if queue.messages:
        assert delivery.validly_signed, (response.status, response.reason)
        assert response.status == 202
        [message] = queue.messages
        assert json.loads(delivery.body)["event"]["id"] == message.event.id == answer["event_id"]
    if response.status == 202:
        assert len(queue.messages) == 1
    if not delivery.validly_signed and response.status in (200, 202):
        assert delivery.authentic_but_stale, response.reason
        assert (response.status, response.reason) == (200, "stale_timestamp")


@_settings
@given(
    extra=st.integers(1, 3 * MAX_BODY_BYTES),
    multibyte=st.booleans(),
    encoded=st.booleans(),
    declare=st.booleans(),
)
def test_an_oversized_signed_body_is_refused_before_it_is_verified_or_parsed(
    extra: int, multibyte: bool, encoded: bool, declare: bool
) -> None:
    size = MAX_BODY_BYTES + extra
    text = ("é" * (size // 2) + "a" * (size % 2)) if multibyte else "a" * size
    raw = text.encode()
    timestamp = str(NOW)
    body = CountingText(base64.b64encode(raw).decode() if encoded else text)
    headers = {"close-sig-timestamp": timestamp, "close-sig-hash": sign(SANDBOX_KEY, timestamp, raw)}
    if declare:
        headers["content-length"] = str(len(raw))
    keys = CountingKeys()
    queue = RecordingQueue()
    event = {
        "headers": headers,
        "body": body,
        "isBase64Encoded": encoded,
        "requestContext": {"http": {"method": "POST"}},
    }
    response = receiver(queue, keys).handle(event)
    assert response.status == 413
    assert keys.lookups == 0, "the signature of an oversized body was checked"
    assert body.encodes <= 1, "the oversized body was read more than once"
    assert queue.messages == []
    assert_safe_answer(response.to_http())
