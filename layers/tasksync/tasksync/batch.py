"""Lambda's partial batch response for an SQS FIFO queue: which records go back to the queue.

This is what Powertools' `SqsFifoPartialProcessor(skip_group_on_error=True)` with
`raise_on_entire_batch_failure = False` does, written out: importing that processor loads the
whole Powertools batch package (asyncio and every event data class), which cost the worker
about 50 ms of CPU on every cold start for a loop of a few lines.
tests/unit/test_batch.py checks that both answer the same for any batch.

- Records are handled in order. A record whose handler raises is reported in
  `batchItemFailures`, and so is every later record of its message group (one Close task),
  without being handled: its events stay in order. Other groups go on.
- Even when every record fails the answer is a partial response, not an exception: retries are
  flow control here (each failed record already has its backoff), and an exception would also
  make Lambda scale the SQS pollers down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PartialResponse = dict[str, list[dict[str, str]]]


@dataclass(frozen=True)
class SqsRecord:
    """The parts of one record of Lambda's SQS event that the worker uses."""

    message_id: str
    receipt_handle: str
    body: str
    message_group_id: str | None
    receive_count: int

    @classmethod
    def from_event_record(cls, record: Mapping[str, Any]) -> SqsRecord:
        attributes = record.get("attributes") or {}
        return cls(
            message_id=str(record["messageId"]),
            receipt_handle=str(record.get("receiptHandle", "")),
            body=str(record.get("body", "")),
            message_group_id=attributes.get("MessageGroupId") or None,
            receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
        )


def process_fifo_batch(event: Mapping[str, Any], handle: Callable[[SqsRecord], object]) -> PartialResponse:
    """Handle each record of an SQS FIFO batch event in order; report the ones to retry."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ValueError("not an SQS batch event: no Records list")
    failed_groups: set[str] = set()
    failures: list[dict[str, str]] = []
    for raw in records:
        record = SqsRecord.from_event_record(raw)
        if record.message_group_id is not None and record.message_group_id in failed_groups:
            failures.append({"itemIdentifier": record.message_id})
            continue
        try:
            handle(record)
        except Exception:  # any failure sends the record (and the rest of its group) back to the queue
            failures.append({"itemIdentifier": record.message_id})
            if record.message_group_id is not None:
                failed_groups.add(record.message_group_id)
    return {"batchItemFailures": failures}
