"""Which records of one SQS batch the worker applies, and which it folds into a newer one.

The engine is state-based: applying the newest version of a Close task is enough, and the
FIFO queue already delivers one task's events together and in order (one message group per
task). So when a rep edits a task five times in ten seconds and the five events share a batch,
one ChartMogul call carries the newest state instead of five.

A *run* is a sequence of records of one task that follow each other within the task's own
records in the batch (records of other tasks may sit in between), every one a task
event that carries the whole task (`created`, `updated`, `completed`, a reconciler snapshot),
optionally closed by one `deleted`. The run is applied once, as
its *representative*: the delete when it ends with one (nothing an earlier event would write
survives it), else the newest version (``date_updated``, the later record on a tie). Anything
else ends a run and is applied on its own, in order: a completion activity (it changes what
the next event pushes), an event about no task, a record that cannot be read.

The representative is applied at the turn of the run's *first* record, so a failure fails that
record and, through the FIFO processor, the rest of the task's records in the batch: exactly
what a failure of the first record does without coalescing. Every record still gets its own
result and idempotency record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasksync.errors import InvalidInput
from tasksync.models.close import SNAPSHOT_ACTION
from tasksync.models.queue import QueuedEvent

# Every task event but a delete carries (or fetches) the whole task: the newest one is enough.
_FOLDABLE = frozenset({"created", "updated", "completed", SNAPSHOT_ACTION})


@dataclass(frozen=True)
class ParsedRecord:
    """One SQS record, parsed once at the edge: either its event or why it cannot be read."""

    message_id: str
    body: str
    queued: QueuedEvent | None = None
    rejection: str | None = None
    # Where the record came from: its message group (one Close task) and its receipt handle.
    group_id: str | None = None
    receipt_handle: str = ""

    @classmethod
    def parse(
        cls, message_id: str, body: str, *, group_id: str | None = None, receipt_handle: str = ""
    ) -> ParsedRecord:
        try:
            queued, rejection = QueuedEvent.from_message_body(body), None
        except InvalidInput as exc:
            queued, rejection = None, str(exc)
        return cls(message_id, body, queued, rejection, group_id=group_id, receipt_handle=receipt_handle)

    @property
    def task_id(self) -> str | None:
        """The Close task a run may fold this record into, or None when it stands alone."""
        event = self.queued.event if self.queued is not None else None
        if event is None or not event.is_task_event or event.action not in (*_FOLDABLE, "deleted"):
            return None
        return event.close_task_id


@dataclass(frozen=True)
class Run:
    """Records of one task applied as one: ``members`` in batch order."""

    members: tuple[ParsedRecord, ...]
    representative: ParsedRecord

    @property
    def first(self) -> ParsedRecord:
        return self.members[0]


class BatchPlan:
    """The runs of one batch, by message id (a record outside every run is applied alone)."""

    def __init__(self, records: Iterable[ParsedRecord]) -> None:
        self.records = {record.message_id: record for record in records}
        self._runs: dict[str, Run] = {}
        # Results of representatives applied in this batch, by message id.
        self.applied: dict[str, Any] = {}
        open_runs: dict[str, list[ParsedRecord]] = {}
        for record in self.records.values():
            event = record.queued.event if record.queued is not None else None
            group = event.close_task_id if event is not None else None
            task_id = record.task_id
            if group is not None and task_id is None:
                self._close(open_runs.pop(group, None))  # a completion activity ends the task's run
                continue
            if task_id is None:
                continue
            members = open_runs.setdefault(task_id, [])
            members.append(record)
            if event is not None and event.action == "deleted":
                self._close(open_runs.pop(task_id))
        for members in open_runs.values():
            self._close(members)

    @classmethod
    def from_lambda_records(cls, records: Iterable[Mapping[str, Any]]) -> BatchPlan:
        """Parse the records of an SQS event (Lambda's shape: ``messageId``, ``body``) once each."""
        return cls(
            ParsedRecord.parse(
                str(r.get("messageId", "")),
                str(r.get("body", "")),
                group_id=(r.get("attributes") or {}).get("MessageGroupId") or None,
                receipt_handle=str(r.get("receiptHandle", "")),
            )
            for r in records
        )

    @property
    def task_ids(self) -> list[str]:
        """The Close tasks the batch's readable records name, in batch order, each once."""
        events = (record.queued.event for record in self.records.values() if record.queued is not None)
        return list(dict.fromkeys(event.close_task_id for event in events if event.close_task_id))

    def run_of(self, message_id: str) -> Run | None:
        return self._runs.get(message_id)

    def later_in_group(self, message_id: str) -> list[ParsedRecord]:
        """The records of the batch after this one in its message group: a failure of this one
        sends them back to the queue unhandled (tasksync.batch)."""
        record = self.records.get(message_id)
        if record is None or record.group_id is None:
            return []
        order = list(self.records)
        later = order[order.index(message_id) + 1 :]
        return [self.records[m] for m in later if self.records[m].group_id == record.group_id]

    def _close(self, members: list[ParsedRecord] | None) -> None:
        if not members or len(members) < 2:
            return
        run = Run(tuple(members), _representative(members))
        for member in members:
            self._runs[member.message_id] = run


def _representative(members: list[ParsedRecord]) -> ParsedRecord:
    last = members[-1]
    if last.queued is not None and last.queued.event.action == "deleted":
        return last
    # max() keeps the first of equal keys: walk backwards so that the later record wins a tie.
    return max(reversed(members), key=_version)


def _version(record: ParsedRecord) -> datetime:
    if record.queued is None:  # pragma: no cover - a run holds parsed records only
        raise ValueError("an unreadable record has no version")
    return record.queued.event.date_updated
