"""Rebuild the sample events in events/ (dev-only; stdlib + tasksync). Never hand-edit them.

    python events/generate.py           # rewrite the files
    python events/generate.py --check   # exit 1 if a file differs from what this script makes

The Close payloads come from events/payloads/ (real captured webhooks, see events/README.md);
the completed and deleted events are derived from close-task-created.json as described there.
Webhook bodies are signed with the sandbox signature key below, like Close signs them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(EVENTS_DIR.parent / "layers" / "tasksync"))

from tasksync.logic.signature import sign  # noqa: E402 - after the path set-up above
from tasksync.models.queue import QueuedEvent  # noqa: E402

# The sandbox's webhook signature key (a Close `signature_key` is 32 bytes, hex). Not a secret:
# it signs only these samples, the local runner and the tests.
SANDBOX_SIGNATURE_KEY = "4163f715a56509cf31c5fb4e5ea975c2dc88e6d61ad41c28eab5b9b12c83d548"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
API_ID = "a1b2c3d4e5"
QUEUE_NAME = "tasksync-events.fifo"


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS_DIR / "payloads" / name).read_text(encoding="utf-8"))
    return loaded


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


def http_api_event(body: str, *, timestamp: int, signature: str, request_id: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for `POST /webhooks/close`, as Close calls it."""
    raw = body.encode("utf-8")
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/close",
        "rawPath": "/webhooks/close",
        "rawQueryString": "",
        # HTTP API hands headers to Lambda with lower-case names.
        "headers": {
            "accept-encoding": "gzip, deflate",
            "close-sig-hash": signature,
            "close-sig-timestamp": str(timestamp),
            "content-length": str(len(raw)),
            "content-type": "application/json",
            "host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "user-agent": "Close Webhooks",
            "x-amzn-trace-id": f"Root=1-{timestamp:08x}-{hashlib.sha256(raw).hexdigest()[:24]}",
            "x-forwarded-for": "203.0.113.10",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "domainPrefix": API_ID,
            "http": {
                "method": "POST",
                "path": "/webhooks/close",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "Close Webhooks",
            },
            "requestId": request_id,
            "routeKey": "POST /webhooks/close",
            "stage": "$default",
            "time": datetime.fromtimestamp(timestamp, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": timestamp * 1000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def signed_webhook(envelope: dict[str, Any], *, timestamp: int, request_id: str) -> dict[str, Any]:
    # Close's body is JSON as its Python service writes it (", " and ": " separators).
    body = json.dumps(envelope)
    signature = sign(SANDBOX_SIGNATURE_KEY, str(timestamp), body.encode("utf-8"))
    return http_api_event(body, timestamp=timestamp, signature=signature, request_id=request_id)


def completed_envelope(created: dict[str, Any]) -> dict[str, Any]:
    """The created task, completed the next morning by its assignee (derived, see README)."""
    envelope = copy.deepcopy(created)
    event = envelope["event"]
    when = "2025-03-01T09:12:03.114000"
    previous = {"is_complete": False, "date_updated": event["data"]["date_updated"]}
    event.update(
        id="ev_6Qb2Xw9TtKd1mUe4RfLhZp",
        date_created=when,
        date_updated=when,
        request_id="req_2Hs8UfWc7Nq3RbYt0KxPzl",
        action="completed",
        changed_fields=["date_updated", "is_complete"],
        meta={"request_path": f"/api/v1/task/{event['object_id']}/", "request_method": "PUT"},
        previous_data=previous,
    )
    event["data"].update(is_complete=True, is_new=False, date_updated="2025-03-01T09:12:03.112000+00:00")
    return envelope


def deleted_envelope(created: dict[str, Any]) -> dict[str, Any]:
    """The created task, deleted: `data` is null and `previous_data` holds the whole object (Close event log)."""
    envelope = copy.deepcopy(created)
    event = envelope["event"]
    when = "2025-03-03T14:02:30.871000"
    event.update(
        id="ev_1Yc7VnM3sJq8LaGw5TdRkb",
        date_created=when,
        date_updated=when,
        request_id="req_7Pq1ZyXo4Lm9VcBn2WsDfe",
        action="deleted",
        changed_fields=[],
        meta={"request_path": f"/api/v1/task/{event['object_id']}/", "request_method": "DELETE"},
        previous_data=event["data"],
        data=None,
    )
    return envelope


def sqs_event(envelope: dict[str, Any], *, sent_at: int) -> dict[str, Any]:
    """The worker's input: one SQS FIFO record as the receiver would have queued this webhook."""
    queued = QueuedEvent.from_raw(envelope["event"], envelope["subscription_id"])
    body = queued.message_body()
    return {
        "Records": [
            {
                "messageId": "5f9b3c1e-2a7d-4e8b-9c6f-1d2e3f4a5b6c",
                "receiptHandle": "AQEBsampleReceiptHandle+tasksync/events/sqs-task-created==",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(sent_at * 1000),
                    "SequenceNumber": "18891234567890123456",
                    "MessageGroupId": queued.group_id,
                    "SenderId": "AROAEXAMPLEROLEID:tasksync-ReceiverFunction",
                    "MessageDeduplicationId": queued.deduplication_id,
                    "ApproximateFirstReceiveTimestamp": str(sent_at * 1000 + 35),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{QUEUE_NAME}",
                "awsRegion": REGION,
            }
        ]
    }


def build_events() -> dict[str, Any]:
    created = _load("close-task-created.json")
    by_sequence = _load("close-task-created-by-sequence.json")
    lead_created = _load("close-lead-created.json")
    completed = completed_envelope(created)
    deleted = deleted_envelope(created)

    def at(envelope: dict[str, Any]) -> int:
        # Close signs a moment after the event was written.
        return _epoch(envelope["event"]["date_updated"]) + 1

    bad = signed_webhook(by_sequence, timestamp=at(by_sequence), request_id="bad-signature-0001")
    # Signed correctly, then altered in transit: the signature no longer matches the body.
    bad["body"] = bad["body"].replace("Campaign That Doesn't Exist", "Campaign That Does Exist")
    bad["headers"]["content-length"] = str(len(bad["body"].encode("utf-8")))

    return {
        "webhook-task-created.json": signed_webhook(created, timestamp=at(created), request_id="task-created-0001"),
        "webhook-task-completed.json": signed_webhook(
            completed, timestamp=at(completed), request_id="task-completed-0001"
        ),
        "webhook-task-deleted.json": signed_webhook(deleted, timestamp=at(deleted), request_id="task-deleted-0001"),
        "webhook-bad-signature.json": bad,
        "webhook-ignored-event.json": signed_webhook(
            lead_created, timestamp=at(lead_created), request_id="lead-created-0001"
        ),
        "sqs-task-created.json": sqs_event(created, sent_at=at(created)),
        # What EventBridge Scheduler sends (the template's ScheduleV2 Input, with the time filled in).
        "schedule-reconcile.json": {"trigger": "schedule", "scheduled_time": "2025-03-01T12:05:00Z"},
        "reconcile-backfill.json": {"backfill_since": "2025-01-01"},
    }


def render(event: Any) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__, file=sys.stderr)
        return 2
    stale = []
    for name, event in build_events().items():
        path = EVENTS_DIR / name
        text = render(event)
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date (run python events/generate.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
