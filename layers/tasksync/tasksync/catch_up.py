"""Catch-up from Close's event log: oldest first, in time slices, checkpointed after each slice.

Close lists its event log newest first and pages it with a cursor, so "oldest first" means
time slices: each slice is a `date_updated` range [start, end] read completely (all its pages),
then enqueued oldest first, then the pair's checkpoint moves to the slice's end. A run that
stops (its time budget is spent, Close fails or rate-limits it) loses at most the slice it was
in; the next run starts from the last checkpoint. A backlog of days is finished over as many
runs as it takes, and no run outlives its Lambda.

Before enqueuing, every event is checked against what the worker has already applied (the
task's link, read for a whole page in one BatchGetItem): with no webhook lost, a pass enqueues
nothing. The worker still checks every event itself; this filter only saves work, so an event it
lets through by mistake is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from tasksync.errors import InvalidInput, RateLimited
from tasksync.logic.ports import AppliedState, Checkpoints, Enqueuer, EventLog, PoisonSink
from tasksync.models._parsing import format_utc
from tasksync.models.close import DEFAULT_RATE_LIMIT_WAIT, TASK_COMPLETED_ACTIVITY, CloseEvent
from tasksync.models.event_log import EventPage, LogEntry
from tasksync.models.link import AppliedMarks, LinkState
from tasksync.models.queue import QueuedEvent

# Close: "To avoid missing recent events when paginating, we recommend to scan the latest five
# minutes of events." Every run starts this long before the stored checkpoint.
OVERLAP = timedelta(minutes=5)
# With no checkpoint yet (first run), look this far back.
FIRST_SCAN = timedelta(hours=1)
# Slices start a day wide (a quiet pair crosses a backlog of days in a few requests; a normal
# run's window is one slice anyway). A slice with more pages than PAGES_PER_SLICE is read again
# at half the width (down to MIN_SLICE), so that one slice always fits in a run; one that fills
# at most a quarter of them doubles the next. A warm process remembers each pair's width.
MAX_SLICE = timedelta(days=1)
MIN_SLICE = timedelta(seconds=1)
PAGES_PER_SLICE = 20  # 1,000 events at Close's 50 per page
# A run stops this long before Lambda would end it: one Close request at its read timeout (10 s)
# plus its connect timeout, the slice's enqueue and checkpoint write, and the run record.
LAMBDA_MARGIN_SECONDS = 30.0
# At most this many waits for one Close 429 within a slice, each within the run's budget.
RATE_LIMIT_WAITS = 3


class OutOfTime(Exception):
    """The run's budget is spent: stop where we are (the checkpoint holds the progress)."""


class Budget:
    """The time a run may still use, from a monotonic clock (Lambda's remaining time, less a margin)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.deadline = clock() + seconds

    @classmethod
    def for_lambda(
        cls, remaining_millis: int, *, margin: float = LAMBDA_MARGIN_SECONDS, cap: float | None = None
    ) -> Budget:
        """What is left of this invocation, less a margin (at most ``cap`` seconds).

        The margin is ``margin`` seconds, or a fifth of the time left when that is less (a
        function configured with a short timeout still gets most of it).
        """
        left = remaining_millis / 1000
        seconds = left - min(margin, left / 5)
        return cls(max(0.0, seconds if cap is None else min(seconds, cap)))

    def remaining(self) -> float:
        return self.deadline - self.clock()

    @property
    def spent(self) -> bool:
        return self.remaining() <= 0

    def check(self) -> None:
        if self.spent:
            raise OutOfTime


def event_version(event: CloseEvent) -> str | None:
    """The task version an event carries (`data.date_updated`, canonical UTC), if it has one."""
    if event.data is None:
        return None
    try:
        task = event.task()
    except InvalidInput:
        return None
    return format_utc(task.date_updated) if task is not None else None


def already_applied(event: CloseEvent, marks: AppliedMarks) -> bool:
    """True when the worker has certainly applied ``event`` already (or would skip it as stale)."""
    task_id = event.close_task_id
    if task_id is None:
        return False
    link = marks.links.get(task_id)
    if link is not None and link.state is LinkState.DELETED:
        return True  # deleted: a delete is done, anything else would be dropped by the tombstone
    if event.object_type == TASK_COMPLETED_ACTIVITY:
        return _completion_applied(event, marks.completions.get(task_id))
    if event.action == "deleted" or link is None:
        return False
    version = event_version(event)
    if version is None:
        return False
    if link.state is LinkState.PARKED and version == (link.pending_version or link.version):
        # The parked retry refetches the task when its backoff is over: this very version adds
        # nothing (the engine itself would retry it, and park it again).
        return True
    # Otherwise the engine's own rule: a version it would skip as stale. (Creating: the very
    # version being created passes, since its create may have crashed.)
    return link.makes_stale(version)


def _completion_applied(event: CloseEvent, hint_date: str | None) -> bool:
    try:
        activity = event.completion()
    except InvalidInput:
        return False
    if activity is None:
        return False
    mine = format_utc(activity.date_created)
    if event.action == "deleted":
        # The worker drops the hint unless a newer completion replaced it.
        return hint_date is None or hint_date > mine
    return hint_date is not None and hint_date >= mine


def refetch_stub(event: CloseEvent, reason: str) -> dict[str, Any]:
    """The event without its payload: the worker reads the task from Close instead.

    Same id and `date_updated`, so it deduplicates like the original would have.
    """
    return {
        "id": event.id,
        "object_type": event.object_type,
        "action": event.action,
        "object_id": event.close_task_id,
        "lead_id": event.lead_id,
        "date_created": event.date_created.isoformat(),
        "date_updated": event.date_updated.isoformat(),
        "data": None,
        "previous_data": {},
        "changed_fields": [],
        "meta": {"source": "tasksync", "refetch": reason[:200]},
    }


@dataclass
class CatchUpTally:
    """What a catch-up did: per pair, and (summed) per run in the reconciler's report."""

    events_seen: int = 0
    events_already_applied: int = 0
    events_enqueued: int = 0
    events_invalid: int = 0
    events_poisoned: int = 0
    events_refetched: int = 0
    slices: int = 0
    read_units: float = 0.0
    # Events that can never be enqueued, each with its id and reason; they went to the DLQ.
    poisoned: list[str] = field(default_factory=list)

    def add(self, other: CatchUpTally) -> None:
        for name in (f.name for f in fields(CatchUpTally)):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class PairScan:
    """One pair's position in this run: the next slice starts at ``start``; done at ``end``."""

    object_type: str
    action: str
    start: datetime
    end: datetime
    width: timedelta = MAX_SLICE
    done: bool = False
    checkpoint: datetime | None = None  # the pair's checkpoint as this run knows it
    advanced: bool = False  # this run moved it

    @property
    def name(self) -> str:
        return f"{self.object_type}:{self.action}"


@dataclass(eq=False, kw_only=True)
class CatchUp:
    """Reads one slice of a pair at a time, filters, enqueues, and checkpoints it."""

    log: EventLog
    applied: AppliedState
    checkpoints: Checkpoints
    queue: Enqueuer
    poison: PoisonSink | None
    sleep: Callable[[float], None] = time.sleep
    # Each pair's slice width, remembered by a warm process.
    widths: dict[tuple[str, str], timedelta] = field(default_factory=dict, init=False)

    def begin(self, object_type: str, action: str, now: datetime) -> PairScan:
        checkpoint = self.checkpoints.get(object_type, action)
        start = (checkpoint - OVERLAP) if checkpoint else now - FIRST_SCAN
        width = self.widths.get((object_type, action), MAX_SLICE)
        return PairScan(object_type, action, start=min(start, now), end=now, width=width, checkpoint=checkpoint)

    def step(self, scan: PairScan, tally: CatchUpTally, budget: Budget) -> None:
        """Scan the pair's next slice. Raises OutOfTime, or whatever Close or SQS raised."""
        slice_end = min(scan.start + scan.width, scan.end)
        pages = self._read_slice(scan, slice_end, budget)
        if pages is None:
            scan.width = self.widths[(scan.object_type, scan.action)] = max(scan.width / 2, MIN_SLICE)
            return
        for page in reversed(pages):  # oldest page first
            self._enqueue_page(page, tally)
        self.checkpoints.advance(scan.object_type, scan.action, slice_end)
        scan.checkpoint = slice_end
        scan.advanced = True
        tally.slices += 1
        scan.start = slice_end
        scan.done = slice_end >= scan.end
        if len(pages) <= PAGES_PER_SLICE // 4:
            scan.width = min(scan.width * 2, MAX_SLICE)
        self.widths[(scan.object_type, scan.action)] = scan.width

    def _read_slice(self, scan: PairScan, slice_end: datetime, budget: Budget) -> list[EventPage] | None:
        """Every page of the slice, newest first; None when it is too big for one slice.

        A Close 429 is waited out when the wait fits the budget, and the slice read again; a
        wait that does not fit, or one 429 too many, raises RateLimited (the pair stops cleanly).
        """
        for attempt in range(RATE_LIMIT_WAITS + 1):
            pages: list[EventPage] = []
            reader = self.log.event_pages(
                object_type=scan.object_type,
                action=scan.action,
                date_updated_gte=scan.start,
                date_updated_lte=slice_end,
            )
            try:
                while not pages or pages[-1].more:
                    budget.check()  # before every request: none starts once the time is up
                    pages.append(next(reader))
                    if pages[-1].number > PAGES_PER_SLICE and scan.width > MIN_SLICE:
                        return None
                return pages
            except RateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
                if attempt == RATE_LIMIT_WAITS or wait >= budget.remaining():
                    raise
                self.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _enqueue_page(self, page: EventPage, tally: CatchUpTally) -> None:
        tally.events_seen += len(page.entries)
        valid: list[tuple[LogEntry, CloseEvent]] = []
        for entry in page.entries:
            if entry.event is None:
                tally.events_invalid += 1
                self._poison(entry.raw, entry.entry_id, f"invalid event-log entry: {entry.problem}", tally)
            else:
                valid.append((entry, entry.event))
        task_ids = [e.close_task_id for _, e in valid if e.close_task_id]
        completion_ids = [
            e.close_task_id for _, e in valid if e.close_task_id and e.object_type == TASK_COMPLETED_ACTIVITY
        ]
        marks = self.applied.applied_marks(list(dict.fromkeys(task_ids)), list(dict.fromkeys(completion_ids)))
        tally.read_units += marks.read_units
        wanted: list[QueuedEvent] = []
        for entry, event in reversed(valid):  # the log is newest first; each task's queue wants oldest first
            if already_applied(event, marks):
                tally.events_already_applied += 1
            else:
                wanted.append(QueuedEvent(event, entry.raw))
        self._send(wanted, tally)

    def _send(self, events: list[QueuedEvent], tally: CatchUpTally) -> None:
        if not events:
            return
        sent = self.queue.enqueue_many(events)
        tally.events_enqueued += len(sent.sent)
        by_id = {queued.event.id: queued for queued in events}
        stubs: list[QueuedEvent] = []
        retryable: list[str] = []
        for failure in sent.failures:
            queued = by_id[failure.event_id]
            reason = f"{failure.code}: {failure.message}"
            if not failure.sender_fault:
                retryable.append(f"enqueue {failure.event_id}: {reason}")
            elif failure.code == "MessageTooLong" and queued.event.close_task_id and queued.event.is_task_event:
                stubs.append(QueuedEvent.from_raw(refetch_stub(queued.event, reason)))
            else:
                self._poison(queued.raw_event, failure.event_id, reason, tally)
        if stubs:
            resent = self.queue.enqueue_many(stubs)
            tally.events_refetched += len(resent.sent)
            tally.events_enqueued += len(resent.sent)
            retryable += [f"enqueue {f.event_id} (refetch): {f.code} {f.message}" for f in resent.failures]
        if retryable:
            # The queue (not the events) failed: keep the checkpoint so that the next run retries.
            raise EnqueueFailed(retryable)

    def _poison(self, raw: Any, event_id: str | None, reason: str, tally: CatchUpTally) -> None:
        tally.events_poisoned += 1
        tally.poisoned.append(f"event {event_id or '(no id)'}: {reason}")
        if self.poison is not None:
            self.poison.put(raw, event_id, reason)


class EnqueueFailed(Exception):
    def __init__(self, failures: list[str]) -> None:
        super().__init__(f"{len(failures)} events could not be enqueued; first: {failures[0]}")
        self.failures = failures
