"""The Close webhook receiver: verify, validate, enqueue, answer. No Lambda imports here.

`Receiver.handle` takes an API Gateway HTTP API (payload v2) event and returns a
`WebhookResponse`. The order of the checks is the point:

1. size (413), before anything is decoded or parsed;
2. signature headers present (401);
3. the body is parsed once, only to find `subscription_id` and so the key to verify with;
4. signature and timestamp (401): nothing is validated further, logged as an event or queued
   before this holds;
5. shape of a Close webhook (400), relevance (200, dropped);
6. enqueue (202), or 503 when the queue write fails so that Close retries.

Answers never carry a traceback, a key or a value from the payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tasksync.errors import InvalidInput, SignatureKeyInvalid, SignatureKeysUnavailable
from tasksync.logic.ports import SignatureKeys, WebhookEventQueue
from tasksync.logic.signature import MIN_TOLERANCE_SECONDS, SignatureVerdict, verify
from tasksync.models.envelope import parse_envelope

MAX_BODY_BYTES = 256 * 1024
# A base64 text of MAX_BODY_BYTES bytes is at most this long (4 characters per 3 bytes, padded).
_MAX_BASE64_CHARS = 4 * math.ceil(MAX_BODY_BYTES / 3)
SIGNATURE_HEADER = "close-sig-hash"
TIMESTAMP_HEADER = "close-sig-timestamp"


# The metric each outcome is counted under (template.yaml's alarms and dashboard read them).
METRIC_BY_OUTCOME = {
    "accepted": "WebhooksAccepted",
    "ignored": "WebhooksIgnored",
    "stale": "WebhooksStale",
    "rejected": "WebhooksRejected",
    "failed": "WebhooksFailed",
    "misconfigured": "WebhooksMisconfigured",
}


@dataclass(frozen=True)
class WebhookResponse:
    """The answer to one delivery, plus what the handler logs and counts (never sent)."""

    status: int
    body: dict[str, str]
    # A key of METRIC_BY_OUTCOME.
    outcome: str
    # Why, in a word or two: "missing_signature", "stale_timestamp", "queue_write_failed", ...
    reason: str
    event_id: str | None = None
    subscription_id: str | None = None
    object_type: str | None = None
    action: str | None = None
    message_id: str | None = None
    # Seconds between close-sig-timestamp and now, once the signature holds (replay window data).
    signature_age_seconds: float | None = None
    # The exception behind a 5xx, for the handler's log (never in the body).
    error: BaseException | None = None

    def to_http(self) -> dict[str, Any]:
        """The HTTP API (payload v2) response."""
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(self.body, separators=(",", ":")),
        }


_VERDICT_REASONS: dict[str, str] = {
    SignatureVerdict.MISSING: "missing_signature",
    SignatureVerdict.MALFORMED: "malformed_timestamp",
    SignatureVerdict.MISMATCH: "signature_mismatch",
}


def _rejected(status: int, message: str, reason: str, **extra: Any) -> WebhookResponse:
    return WebhookResponse(status=status, body={"message": message}, outcome="rejected", reason=reason, **extra)


def _unauthorized(reason: str) -> WebhookResponse:
    # One body for every signature failure: the caller learns nothing about which check failed.
    return _rejected(401, "invalid or missing signature", reason)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    # HTTP API v2 lower-cases header names already; other front ends (the local runner, tests,
    # a REST API) may not, so look the name up case-insensitively.
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = candidate
                break
    return value if isinstance(value, str) else None


def declared_length(value: str | None) -> int | None:
    """A Content-Length value as a number, or None when it is not one.

    ASCII digits only: "²".isdigit() is true but int() refuses it, and int() reads
    "١٠٠٠٠٠٠" (Arabic-Indic digits) as a million.
    """
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError("number out of range")
    return number


def _parse_json(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no overflowing floats (they could not be re-encoded)."""
    try:
        return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        return None


class Receiver:
    def __init__(
        self,
        *,
        keys: SignatureKeys,
        queue: WebhookEventQueue,
        tolerance_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if tolerance_seconds < MIN_TOLERANCE_SECONDS:
            raise ValueError(f"tolerance_seconds must be at least {MIN_TOLERANCE_SECONDS}")
        self._keys = keys
        self._queue = queue
        self._tolerance = tolerance_seconds
        self._clock = clock

    def handle(self, http_event: Mapping[str, Any]) -> WebhookResponse:
        try:
            return self._answer(http_event)
        except Exception as exc:  # a defect: answered and reported here rather than escaping the handler
            return WebhookResponse(
                status=500, body={"message": "internal error"}, outcome="failed", reason="unexpected_error", error=exc
            )

    def _answer(self, http_event: Mapping[str, Any]) -> WebhookResponse:
        method = ((http_event.get("requestContext") or {}).get("http") or {}).get("method")
        if isinstance(method, str) and method.upper() != "POST":
            return _rejected(405, "only POST is accepted", "method_not_allowed")
        raw_headers = http_event.get("headers")
        headers: Mapping[str, Any] = raw_headers if isinstance(raw_headers, Mapping) else {}

        body_or_error = self._read_body(http_event, headers)
        if isinstance(body_or_error, WebhookResponse):
            return body_or_error
        body = body_or_error

        timestamp = _header(headers, TIMESTAMP_HEADER)
        signature = _header(headers, SIGNATURE_HEADER)
        if not timestamp or not signature:
            return _unauthorized("missing_signature")

        parsed = _parse_json(body)
        subscription_id = parsed.get("subscription_id") if isinstance(parsed, dict) else None
        try:
            verdict = self._verify(subscription_id, timestamp, signature, body)
        except SignatureKeysUnavailable as exc:
            # Our fault, not the sender's: a 5xx makes Close retry once the secret is readable, or
            # once an operator has fixed a key Close could never have issued (misconfigured).
            malformed = isinstance(exc, SignatureKeyInvalid)
            return WebhookResponse(
                status=503,
                body={"message": "temporarily unable to verify deliveries; retry later"},
                outcome="misconfigured" if malformed else "failed",
                reason="signature_key_malformed" if malformed else "signature_keys_unavailable",
                error=exc,
            )
        if verdict == SignatureVerdict.STALE:
            # Authentic but too old to rule out a replay: not queued (the reconciler recovers the
            # event from Close's event log), and a 2xx so that Close stops retrying it.
            return WebhookResponse(
                status=200,
                body={"status": "stale"},
                outcome="stale",
                reason="stale_timestamp",
                subscription_id=subscription_id if isinstance(subscription_id, str) else None,
                signature_age_seconds=self._clock() - int(timestamp),
            )
        if verdict != SignatureVerdict.VALID:
            return _unauthorized(_VERDICT_REASONS.get(verdict, verdict))
        age = self._clock() - int(timestamp)

        # Authentic from here on.
        if not isinstance(parsed, dict):
            return _rejected(400, "body is not a JSON object", "malformed_json", signature_age_seconds=age)
        try:
            webhook = parse_envelope(parsed)
        except InvalidInput as exc:
            # The field path and the message name the field and the expected type, never the
            # input value.
            return WebhookResponse(
                status=400,
                body={"message": "not a Close webhook event", "field": exc.field[:120], "error": exc.message[:200]},
                outcome="rejected",
                reason="invalid_event",
                subscription_id=subscription_id if isinstance(subscription_id, str) else None,
                signature_age_seconds=age,
            )
        event = webhook.event
        details: dict[str, Any] = {
            "event_id": event.id,
            "subscription_id": webhook.subscription_id,
            "object_type": event.object_type,
            "action": event.action,
            "signature_age_seconds": age,
        }
        if not event.is_relevant:
            return WebhookResponse(
                status=200,
                body={"event_id": event.id, "status": "ignored"},
                outcome="ignored",
                reason="irrelevant_event",
                **details,
            )
        try:
            message_id = self._queue.enqueue(event, webhook.raw_event, subscription_id=webhook.subscription_id)
        except InvalidInput as exc:
            # Cannot fit in a queue message however often Close retries it.
            return _rejected(413, "event too large to queue", "message_too_large", error=exc, **details)
        except Exception as exc:  # any failure to queue must become a retryable 5xx
            return WebhookResponse(
                status=503,
                body={"message": "could not queue the event; retry later"},
                outcome="failed",
                reason="queue_write_failed",
                error=exc,
                **details,
            )
        return WebhookResponse(
            status=202,
            body={"event_id": event.id},
            outcome="accepted",
            reason="queued",
            message_id=message_id,
            **details,
        )

    @staticmethod
    def _read_body(http_event: Mapping[str, Any], headers: Mapping[str, Any]) -> bytes | WebhookResponse:
        """The raw body bytes, size-checked before decoding; or the 400/413 answer."""
        too_large = _rejected(413, f"body larger than {MAX_BODY_BYTES} bytes", "body_too_large")
        declared = declared_length(_header(headers, "content-length"))
        if declared is not None and declared > MAX_BODY_BYTES:
            return too_large
        raw = http_event.get("body")
        if raw is None:
            return b""
        if not isinstance(raw, str):
            return _rejected(400, "body is not text", "malformed_body")
        if http_event.get("isBase64Encoded"):
            if len(raw) > _MAX_BASE64_CHARS:
                return too_large
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                return _rejected(400, "body is not valid base64", "malformed_body")
        else:
            # Characters never outnumber UTF-8 bytes, so this check is safe before encoding.
            if len(raw) > MAX_BODY_BYTES:
                return too_large
            try:
                body = raw.encode("utf-8")
            except UnicodeEncodeError:
                return _rejected(400, "body is not UTF-8 text", "malformed_body")
        if len(body) > MAX_BODY_BYTES:
            return too_large
        return body

    def _verify(self, subscription_id: Any, timestamp: str, signature: str, body: bytes) -> SignatureVerdict | str:
        if isinstance(subscription_id, str) and subscription_id:
            key = self._keys.key_for(subscription_id)
            if key is None:
                return "unknown_subscription"
            candidates = [key]
        else:
            # No readable subscription id (malformed or not a Close body): it can still be an
            # authentic delivery, which deserves a 400 rather than a 401, so try our few keys.
            candidates = self._keys.all_keys()
        verdicts = [
            verify(
                signature_key_hex=key,
                timestamp=timestamp,
                signature=signature,
                body=body,
                now=self._clock(),
                tolerance_seconds=self._tolerance,
            )
            for key in candidates
        ]
        for wanted in (SignatureVerdict.VALID, SignatureVerdict.STALE):
            if wanted in verdicts:
                return wanted
        return verdicts[0] if verdicts else "unknown_subscription"
