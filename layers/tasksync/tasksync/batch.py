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
- With ``parallel`` > 1 the message groups of the batch are handled at the same time, each on a
  thread of its own and each group's records still one after the other: order only matters
  within a group (one Close task). A worker spends most of an event waiting on ChartMogul and
  DynamoDB, so one execution environment then keeps several requests in flight instead of one.
  A record without a group (a standard queue) is a group of its own. The answer is the same as
  with ``parallel`` = 1, failures listed in batch order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
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


def process_fifo_batch(
    event: Mapping[str, Any], handle: Callable[[SqsRecord], object], *, parallel: int = 1
) -> PartialResponse:
    """Handle each record of an SQS FIFO batch event in order; report the ones to retry."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ValueError("not an SQS batch event: no Records list")
    lanes = _groups(records)
    workers = min(parallel, len(lanes))
    if workers > 1:

        def handle_lane(lane: list[tuple[int, SqsRecord]]) -> list[int]:
            return _lane(lane, handle)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="group") as pool:
            failed = sorted(index for indexes in pool.map(handle_lane, lanes) for index in indexes)
    else:
        failed = _in_batch_order(records, handle)
    return {"batchItemFailures": [{"itemIdentifier": str(records[i]["messageId"])} for i in failed]}


def _groups(records: list[Any]) -> list[list[tuple[int, SqsRecord]]]:
    """The batch's records by message group, in batch order (a record without one alone)."""
    groups: dict[str, list[tuple[int, SqsRecord]]] = {}
    for index, raw in enumerate(records):
        record = SqsRecord.from_event_record(raw)
        key = record.message_group_id if record.message_group_id is not None else f"\0{index}"
        groups.setdefault(key, []).append((index, record))
    return list(groups.values())


def _lane(members: list[tuple[int, SqsRecord]], handle: Callable[[SqsRecord], object]) -> list[int]:
    """One group's records in order; the indexes to retry: the first that fails and all after it."""
    for position, (_, record) in enumerate(members):
        try:
            handle(record)
        except Exception:  # any failure sends the record (and the rest of its group) back to the queue
            return [index for index, _ in members[position:]]
    return []


def _in_batch_order(records: list[Any], handle: Callable[[SqsRecord], object]) -> list[int]:
    """One record after the other, as they came: Powertools' own order of work."""
    failed_groups: set[str] = set()
    failed: list[int] = []
    for index, raw in enumerate(records):
        record = SqsRecord.from_event_record(raw)
        if record.message_group_id is not None and record.message_group_id in failed_groups:
            failed.append(index)
            continue
        try:
            handle(record)
        except Exception:  # any failure sends the record (and the rest of its group) back to the queue
            failed.append(index)
            if record.message_group_id is not None:
                failed_groups.add(record.message_group_id)
    return failed
