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
  event). Reservations start on epoch multiples of k slots (a busy schedule moves on by k
  slots; an idle one, or one moved by a hold, restarts on the next multiple), and k and
  ``c*k + 1`` have no common factor, so the reservations' slots tile the grid of slots
  exactly: never two on one, never more than r in any second, whatever the number of
  processes and however often the schedule goes idle. A contiguous block would have each
  process send k requests ``1/r`` apart, which a worker that spends longer than that on an
  event cannot do; a stride near a worker's pace lets it use its slots as they come.
- A request never leaves before its slot, and not more than a grace after it (39 ms at
  r = 38): the requests of any second then come from the slots of 1.039 s, at most 40 even
  when the ones that left late also reach ChartMogul up to 13 ms later than the rest. A
  slot not used in time is dropped, so a frozen Lambda cannot send old slots in a burst; the
  ChartMogul client checks the slot's age again right before the request leaves
  (``confirm``), as a thread may lose the CPU between the two.
- A slot that went unused while the process had work means it holds more than it can use,
  and its next reservation waits a stride. Slots that went unused between a worker's batches
  (``resume``) say nothing of the kind.
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
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from tasksync.dal.schedule import Schedule, ScheduleFull
from tasksync.errors import RateLimited

DEFAULT_MAX_WAIT_SECONDS = 2.0
# ChartMogul's documented limit per account, counted over a sliding second.
ACCOUNT_LIMIT_PER_SECOND = 40.0
DEFAULT_BLOCK = 5
# The spacing of one reservation's slots: about the time a worker spends on one event when
# ChartMogul is busy, so that a worker can use each of its slots when it comes.
DEFAULT_STRIDE_SECONDS = 0.25
# Of ChartMogul's 40 a second, what is left for the varying delay between a request leaving and
# ChartMogul counting it: half a slot, 13 ms at 38/s (see SharedPacer.grace).
DELIVERY_MARGIN_SLOTS = 0.5
_MICROS = 1_000_000


class Pacer(Protocol):
    """What the ChartMogul client needs: a slot before each request, and a pause after a 429."""

    def acquire(self, method: str = "-", path: str = "-") -> float:
        """Wait for this request's slot; return the seconds slept. Raises RateLimited."""
        ...

    def hold(self, seconds: float) -> None:
        """Send nothing (in any process) for ``seconds`` from now."""
        ...

    def confirm(self, method: str = "-", path: str = "-") -> float:
        """Right before the request leaves: take a new slot if this thread's has aged past the
        grace since ``acquire``. Returns the seconds slept."""
        ...

    def resume(self) -> None:
        """Work starts again after a gap (a worker's next batch)."""
        ...


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
        # which this grace keeps within ChartMogul's limit, less half a slot: a request also
        # reaches ChartMogul after a delay that varies (network, a busy host), and without that
        # margin any such jitter made a 41st. A later request takes a new slot. Above 39.5/s
        # there is no margin left to keep: the grace is then a floor of 5 ms, and a 429 (paced
        # by its Retry-After) becomes likely.
        fitting = max(0.005, (ACCOUNT_LIMIT_PER_SECOND - DELIVERY_MARGIN_SLOTS - self.rate) / self.rate)
        self.grace = round((fitting if grace is None else grace) * _MICROS)
        self.max_held = block * (math.ceil(self.rate * self.period / _MICROS) + 1)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._held_by_thread = threading.local()  # .slot: the one ``acquire`` gave this thread
        self._slots: list[int] = []  # sorted, µs since the epoch
        self._seen_next = 0
        self._last_drop = 0  # µs: when a slot of ours last went unused while there was work
        self._resumed = 0  # µs: when the current stretch of work began (see ``resume``)
        self.reservations = 0
        self.used = 0
        self.dropped = 0
        self.overran = 0  # of those dropped: a thread that got the CPU back too late for its slot
        self.slept = 0.0  # seconds requests spent waiting for their slots, all threads together

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
                with self._lock:
                    self.slept += wait
            # A sleep that overran the grace (a busy machine) would send too late: start over.
            # Not a sign of holding more than we can use (the slot was wanted), so it does not
            # hold back the next reservation: with several threads that would starve them all.
            if wait == 0 or self._on_time(slot):
                self._held_by_thread.slot = slot
                return waited
            self._overran()

    def confirm(self, method: str = "-", path: str = "-") -> float:
        """Right before the request leaves (the ChartMogul client's transport calls this): a
        thread that was descheduled between ``acquire`` and the send, long enough for its slot
        to age past the grace, takes a new slot rather than send late. On a busy machine that
        delay reached 90 ms; a late request bunches with the next second's."""
        slot = getattr(self._held_by_thread, "slot", None)
        self._held_by_thread.slot = None
        if slot is None or self._on_time(slot):
            return 0.0
        self._overran()
        return self.acquire(method, path)

    def _on_time(self, slot: float) -> bool:
        return round((self._clock() - slot) * _MICROS) <= self.grace

    def _overran(self) -> None:
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
            while not self._slots:  # every slot of that reservation had gone (see ``_reserve``)
                self._reserve(at, method, path)
            slot = self._slots.pop(0)
            self.used += 1
        return slot / _MICROS

    def hold(self, seconds: float) -> None:
        until = self._on_grid(self._now() + max(0, round(seconds * _MICROS)))
        with self._lock:
            self.dropped += bisect.bisect_left(self._slots, until)
            self._slots = [slot for slot in self._slots if slot >= until]
            self._seen_next = max(self._seen_next, until)
        self.schedule.hold_until(until)

    def resume(self) -> None:
        """Work starts again after a gap (the worker calls this as each batch starts).

        Slots that came due before now went unused because there was nothing to send (between
        two batches, or while the last task of a batch finished), not because this process
        holds more than it can use: dropping them must not hold back its next reservations,
        or its threads would wait on the few strided slots they still hold.
        """
        with self._lock:
            self._resumed = self._now()

    def _now(self) -> int:
        return round(self._clock() * _MICROS)

    def _on_grid(self, at: int) -> int:
        """The first reservation start at or after ``at``: an epoch multiple of ``span``.

        A busy schedule moves on by ``span``, so every reservation starts on this grid, and an
        idle one (next slot more than a stride old) or one moved by a hold restarts on it too.
        That is what keeps the strided slots of all reservations on distinct positions:
        restarting anywhere else could put a new slot where a strided slot of a reservation
        made just before the idle spell still waits. The cost: the first request after an idle
        spell waits up to ``span`` (132 ms at 38/s, 66 ms on average).
        """
        return -(-at // self.span) * self.span

    def _drop_stale(self, now: int) -> None:
        stale = bisect.bisect_left(self._slots, now - self.grace)
        if stale:
            self.dropped += stale
            # Over-holding is a slot that came due while there was work and that no thread came
            # for within a slot after the grace. One missed by less was wanted: its thread was
            # only a little late (on a busy host, often), and holding back reservations for it
            # starved the process's other threads.
            first_in_work = bisect.bisect_left(self._slots, self._resumed, 0, stale)
            if first_in_work < stale and self._slots[first_in_work] < now - self.grace - self.interval:
                self._last_drop = now
            del self._slots[:stale]

    def _should_reserve(self, now: int) -> bool:
        """Reserve when nothing is held. Otherwise only while no slot of ours went unused within
        the last stride (we hold no more than we can use) and we hold fewer than ``max_held``;
        then when either

        - the next held slot is more than one slot away and a new reservation would (as far as
          this process last saw) start no later: the request is served sooner; or
        - the schedule's next free slot (as far as this process last saw) is due within one
          slot: a process that is using its slots keeps the schedule's pace, where waiting until
          its held slots run out would leave the slots in between to nobody.
        """
        if not self._slots:
            return True
        if len(self._slots) >= self.max_held or now - self._last_drop <= self.period:
            return False
        start = self._seen_next if self._seen_next >= now - self.period else self._on_grid(now)
        sooner = self._slots[0] > now + self.interval and start <= self._slots[0]
        return sooner or start <= now + self.interval

    def _reserve(self, now: int, method: str, path: str) -> None:
        latest = now + round(self.max_wait * _MICROS)
        try:
            # A schedule whose next slot is at most a stride old goes on from it: the first
            # slot of such a reservation may be gone already, its later ones are all ahead, and
            # no position of the grid is skipped (a worker's batches leave such short gaps). A
            # schedule idle longer restarts on the grid, within one span of now.
            reservation = self.schedule.reserve(
                self.span, self._on_grid(now), latest, self._seen_next, since=now - self.period
            )
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
            slot = reservation.start + j * self.period
            if slot < now - self.grace:  # went on from a schedule that was idle a little: gone already
                self.dropped += 1
                continue
            bisect.insort(self._slots, slot)
