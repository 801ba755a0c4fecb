"""One ChartMogul request budget for the whole account, shared by every worker and the reconciler.

ChartMogul allows 40 requests per second per account, counted over a sliding second, and
answers 429 beyond that. Every process that calls it (up to five workers, the reconciler, the
CLI) draws from one schedule of request *slots* kept in a single DynamoDB item, so that one
busy worker may use the whole budget and any number of them together never exceed it.

How the schedule works (``CHARTMOGUL_REQUESTS_PER_SECOND`` = r, a reservation of k slots):

- Slots are ``1/r`` apart. The item holds ``next_slot``, the first slot nobody holds yet.
- A process reserves k slots (default 5) with one conditional UpdateItem that moves
  ``next_slot`` on by ``k/r``: one write per k requests, 0.2 write units per ChartMogul call.
- A reservation's slots are *strided*: its j-th slot is ``start + j*stride``, the stride being
  ``c*k + 1`` slots (c chosen to come nearest 0.25 s, about what a worker spends on one
  event). Reservations start k slots apart, and k and ``c*k + 1`` have no common factor, so
  the reservations' slots tile the grid of slots exactly: never two on one, never more than r
  in any second, whatever the number of processes. A contiguous block would have each
  process send k requests ``1/r`` apart, which a worker that spends longer than that on an
  event cannot do; a stride near a worker's pace lets it use its slots as they come.
- A request never leaves before its slot, and not more than a grace after it (52 ms at
  r = 38): the requests of any second then come from the slots of 1.053 s, at most 40. A
  slot not used in time is dropped, so a frozen Lambda cannot send old slots in a burst.
- A process holds several reservations when it is faster than one slot per stride, so one
  busy worker alone can use the whole budget.
- After a 429 the client moves ``next_slot`` past the server's Retry-After: every process
  waits, not only the one that was refused.

Waiting is capped: when the next free slot is further away than ``max_wait`` the pacer raises
RateLimited and the queue takes the long wait instead (the message becomes visible again after
its backoff).
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from tasksync.dal.aws import refused
from tasksync.errors import RateLimited

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_MAX_WAIT_SECONDS = 2.0
# ChartMogul's documented limit per account, counted over a sliding second.
ACCOUNT_LIMIT_PER_SECOND = 40.0
DEFAULT_BLOCK = 5
# The spacing of one reservation's slots: about the time a worker spends on one event when
# ChartMogul is busy, so that a worker can use each of its slots when it comes.
DEFAULT_STRIDE_SECONDS = 0.25
SCHEDULE_KEY = "pacing#chartmogul"
_MICROS = 1_000_000


class Pacer(Protocol):
    """What the ChartMogul client needs: a slot before each request, and a pause after a 429."""

    def acquire(self, method: str = "-", path: str = "-") -> float:
        """Wait for this request's slot; return the seconds slept. Raises RateLimited."""
        ...

    def hold(self, seconds: float) -> None:
        """Send nothing (in any process) for ``seconds`` from now."""
        ...


@dataclass(frozen=True)
class Reservation:
    start: int  # µs since the epoch: the reservation's first slot
    next_slot: int  # the schedule's next free slot right after this reservation


class ScheduleFull(Exception):
    """The next free slot is later than the caller is willing to wait."""

    def __init__(self, next_slot: int) -> None:
        super().__init__(next_slot)
        self.next_slot = next_slot


class Schedule(Protocol):
    """Where ``next_slot`` lives: a DynamoDB item shared by every process, or process memory."""

    def reserve(self, span: int, now: int, latest: int, expected: int) -> Reservation:
        """Move ``next_slot`` on by ``span`` µs from ``max(next_slot, now)``.

        Raises ScheduleFull when ``next_slot`` is later than ``latest``. ``expected`` is the
        caller's last sight of ``next_slot``, a hint for which write to try first.
        """
        ...

    def hold_until(self, until: int) -> None:
        """Move ``next_slot`` to ``until`` unless it is already later."""
        ...


class MemorySchedule:
    """The schedule of one process (tests, and a client no other process shares an account with)."""

    def __init__(self) -> None:
        self.next_slot = 0
        self.writes = 0
        self._lock = threading.Lock()

    def reserve(self, span: int, now: int, latest: int, expected: int) -> Reservation:
        with self._lock:
            self.writes += 1
            if self.next_slot > latest:
                raise ScheduleFull(self.next_slot)
            start = max(self.next_slot, now)
            self.next_slot = start + span
            return Reservation(start, self.next_slot)

    def hold_until(self, until: int) -> None:
        with self._lock:
            self.writes += 1
            self.next_slot = max(self.next_slot, until)


class DynamoDBSchedule:
    """``next_slot`` in the state table item ``pacing#chartmogul``, moved by conditional updates.

    Two writes, neither of which reads first: when the schedule is busy (``next_slot`` at or
    after now) an atomic ``next_slot = next_slot + span``; when it is idle (in the past, or
    absent) ``next_slot = now + span``. Each is conditional on the case it handles, so a
    reservation is one write when the caller's hint is right, and the refused write returns
    the item (ALL_OLD) to pick the other. A refused conditional write still costs one write
    unit; ``writes`` counts every attempt.
    """

    ATTRIBUTE = "next_slot"

    def __init__(self, client: DynamoDBClient, table_name: str, key: str = SCHEDULE_KEY) -> None:
        self._client = client
        self._table = table_name
        self._key = key
        self._found_busy = False
        self.writes = 0

    def reserve(self, span: int, now: int, latest: int, expected: int) -> Reservation:
        # next_slot only grows: seen at or after now, it is still busy. Seen before now, guess
        # what the last reservation found: busy when other processes share the load, idle when
        # this one has the schedule to itself (a wrong guess costs one refused write).
        busy = expected >= now or self._found_busy
        for _ in range(4):
            self.writes += 1
            try:
                if busy:
                    answer = self._client.update_item(
                        TableName=self._table,
                        Key={"pk": {"S": self._key}},
                        UpdateExpression="SET #n = #n + :span",
                        ConditionExpression="#n >= :now AND #n <= :latest",
                        ExpressionAttributeNames={"#n": self.ATTRIBUTE},
                        ExpressionAttributeValues={
                            ":span": {"N": str(span)},
                            ":now": {"N": str(now)},
                            ":latest": {"N": str(latest)},
                        },
                        ReturnValues="UPDATED_NEW",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                    after = int(answer["Attributes"][self.ATTRIBUTE]["N"])
                    self._found_busy = True
                    return Reservation(after - span, after)
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": self._key}},
                    UpdateExpression="SET #n = :after",
                    ConditionExpression="attribute_not_exists(#n) OR #n < :now",
                    ExpressionAttributeNames={"#n": self.ATTRIBUTE},
                    ExpressionAttributeValues={":after": {"N": str(now + span)}, ":now": {"N": str(now)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                self._found_busy = False
                return Reservation(now, now + span)
            except ClientError as exc:
                if not refused(exc):
                    raise
                # ALL_OLD hands back the item that failed the condition (botocore leaves it untyped).
                item: dict[str, dict[str, str]] = exc.response.get("Item") or {}  # type: ignore[assignment]
                current = int(item[self.ATTRIBUTE]["N"]) if self.ATTRIBUTE in item else None
            if current is not None and current > latest:
                raise ScheduleFull(current)
            busy = current is not None and current >= now
        raise ScheduleFull(latest)  # four lost races in a row: let the queue retry later

    def hold_until(self, until: int) -> None:
        self.writes += 1
        # Refused: a later hold is already in place. Failed: the hold is advice, and this
        # process's queue backoff still honours the Retry-After.
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": self._key}},
                UpdateExpression="SET #n = :until",
                ConditionExpression="attribute_not_exists(#n) OR #n < :until",
                ExpressionAttributeNames={"#n": self.ATTRIBUTE},
                ExpressionAttributeValues={":until": {"N": str(until)}},
            )


class SharedPacer:
    """A process's view of the shared schedule: the slots it holds, handed out one per request."""

    def __init__(
        self,
        schedule: Schedule,
        rate_per_second: float,
        *,
        block: int = DEFAULT_BLOCK,
        stride: float = DEFAULT_STRIDE_SECONDS,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        grace: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate_per_second > 0:
            raise ValueError("rate_per_second must be positive")
        if block < 1:
            raise ValueError("block must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must not be negative")
        self.schedule = schedule
        self.rate = float(rate_per_second)
        self.block = block
        self.max_wait = max_wait
        self.interval = max(1, math.ceil(_MICROS / self.rate))  # µs between slots, rounded down in rate
        self.span = self.interval * block  # µs of the schedule one reservation takes
        # µs between the slots of one reservation: (c*k + 1) slots, the nearest to ``stride``.
        # Reservations start k slots apart, so this stride lays every reservation's slots onto
        # the grid of slots without two of them ever landing on the same one (k and c*k + 1
        # have no common factor).
        self.period = self.interval * (block * max(0, round((stride * _MICROS / self.interval - 1) / block)) + 1)
        # Enough reservations for one process to use the whole rate on its own, and one more.
        # How late a request may still use its slot: slots are 1/r apart, so the requests of any
        # second come from slots within (1 + grace) seconds: at most r * (1 + grace) of them,
        # which this grace keeps within ChartMogul's limit. A later request takes a new slot.
        fitting = max(0.005, (ACCOUNT_LIMIT_PER_SECOND - self.rate) / self.rate)
        self.grace = round((fitting if grace is None else grace) * _MICROS)
        self.max_held = block * (math.ceil(self.rate * self.period / _MICROS) + 1)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: list[int] = []  # sorted, µs since the epoch
        self._seen_next = 0
        self._last_drop = 0  # µs: when a slot of ours last went unused
        self.reservations = 0
        self.used = 0
        self.dropped = 0
        self.overran = 0  # of those dropped: a sleep that woke up too late for its slot

    def acquire(self, method: str = "-", path: str = "-") -> float:
        waited = 0.0
        while True:
            now = self._clock()
            slot = self.take(now, method, path)
            wait = max(0.0, slot - now)
            # Sleep outside the lock: the slot is ours.
            if wait > 0:
                self._sleep(wait)
                waited += wait
            # A sleep that overran the grace (a busy machine) would send too late: start over.
            # Not a sign of holding more than we can use (the slot was wanted), so it does not
            # hold back the next reservation: with several threads that would starve them all.
            if wait == 0 or round((self._clock() - slot) * _MICROS) <= self.grace:
                return waited
            with self._lock:
                self.dropped += 1
                self.overran += 1

    def take(self, now: float, method: str = "-", path: str = "-") -> float:
        """Take the next slot held (reserving more when needed); return its time, no sleeping."""
        at = round(now * _MICROS)
        with self._lock:
            self._drop_stale(at)
            if self._should_reserve(at):
                self._reserve(at, method, path)
            slot = self._slots.pop(0)
            self.used += 1
        return slot / _MICROS

    def hold(self, seconds: float) -> None:
        until = self._now() + max(0, round(seconds * _MICROS))
        with self._lock:
            self.dropped += bisect.bisect_left(self._slots, until)
            self._slots = [slot for slot in self._slots if slot >= until]
            self._seen_next = max(self._seen_next, until)
        self.schedule.hold_until(until)

    def _now(self) -> int:
        return round(self._clock() * _MICROS)

    def _drop_stale(self, now: int) -> None:
        stale = bisect.bisect_left(self._slots, now - self.grace)
        if stale:
            self.dropped += stale
            self._last_drop = now
            del self._slots[:stale]

    def _should_reserve(self, now: int) -> bool:
        """Reserve when nothing is held; or when the next held slot is more than one slot away,
        no slot of ours went unused within the last stride (we hold no more than we can use),
        and a new reservation would (as far as this process last saw) start no later."""
        if not self._slots:
            return True
        first = self._slots[0]
        return (
            first > now + self.interval
            and now - self._last_drop > self.period
            and max(self._seen_next, now) <= first
            and len(self._slots) < self.max_held
        )

    def _reserve(self, now: int, method: str, path: str) -> None:
        latest = now + round(self.max_wait * _MICROS)
        # An idle schedule restarts on the grid of slots (epoch multiples of the interval).
        on_grid = -(-now // self.interval) * self.interval
        try:
            reservation = self.schedule.reserve(self.span, on_grid, latest, self._seen_next)
        except ScheduleFull as full:
            self._seen_next = full.next_slot
            if self._slots:
                return  # keep using what we hold
            retry_after = max(0.0, (full.next_slot - now) / _MICROS)
            raise RateLimited(
                "chartmogul", method, path, None, message="client-side pacing", retry_after=round(retry_after, 3)
            ) from None
        self.reservations += 1
        self._seen_next = reservation.next_slot
        for j in range(self.block):
            bisect.insort(self._slots, reservation.start + j * self.period)
