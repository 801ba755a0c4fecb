"""Where the shared ChartMogul schedule's ``next_slot`` lives: a DynamoDB item, or process memory.

``tasksync.dal.pacing`` explains the schedule; this module holds its storage. A reservation
moves ``next_slot`` on by a span with one conditional write and no read.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from tasksync.dal.aws import refused

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import UpdateItemOutputTypeDef

SCHEDULE_KEY = "pacing#chartmogul"


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

    def reserve(self, span: int, now: int, latest: int, expected: int, since: int | None = None) -> Reservation:
        """Move ``next_slot`` on by ``span`` µs: from ``next_slot`` when it is at or after
        ``since`` (default ``now``; a slot a little in the past can still be used), else from
        ``now``.

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

    def reserve(self, span: int, now: int, latest: int, expected: int, since: int | None = None) -> Reservation:
        with self._lock:
            self.writes += 1
            if self.next_slot > latest:
                raise ScheduleFull(self.next_slot)
            start = self.next_slot if self.next_slot >= (now if since is None else since) else now
            self.next_slot = start + span
            return Reservation(start, self.next_slot)

    def hold_until(self, until: int) -> None:
        with self._lock:
            self.writes += 1
            self.next_slot = max(self.next_slot, until)


class DynamoDBSchedule:
    """``next_slot`` in the state table item ``pacing#chartmogul``, moved by conditional updates.

    Two writes, neither of which reads first: when the schedule is busy (``next_slot`` at or
    after ``since``) an atomic ``next_slot = next_slot + span``; when it is idle (in the past, or
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
        self._shared = False  # the last reservation found another process's before it
        self.writes = 0

    def reserve(self, span: int, now: int, latest: int, expected: int, since: int | None = None) -> Reservation:
        since = now if since is None else since
        # next_slot only grows: seen at or after now, it is still busy. Seen before now, it is
        # idle unless another process moved it since: guess that it did when the last
        # reservation found another process's reservation before its own (a wrong guess costs
        # one refused write). A process alone on the schedule thus always guesses right.
        busy = expected >= since or self._shared
        for _ in range(4):
            self.writes += 1
            try:
                if busy:
                    answer = self._update(
                        "SET #n = #n + :span",
                        "#n >= :since AND #n <= :latest",
                        {":span": span, ":since": since, ":latest": latest},
                        ReturnValues="UPDATED_NEW",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                    after = int(answer["Attributes"][self.ATTRIBUTE]["N"])
                    self._shared = after - span != expected
                    return Reservation(after - span, after)
                self._update(
                    "SET #n = :after",
                    "attribute_not_exists(#n) OR #n < :since",
                    {":after": now + span, ":since": since},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                self._shared = False
                return Reservation(now, now + span)
            except ClientError as exc:
                if not refused(exc):
                    raise
                # ALL_OLD hands back the item that failed the condition (botocore leaves it untyped).
                item: dict[str, dict[str, str]] = exc.response.get("Item") or {}  # type: ignore[assignment]
                current = int(item[self.ATTRIBUTE]["N"]) if self.ATTRIBUTE in item else None
            if current is not None and current > latest:
                raise ScheduleFull(current)
            busy = current is not None and current >= since
        raise ScheduleFull(latest)  # four lost races in a row: let the queue retry later

    def hold_until(self, until: int) -> None:
        self.writes += 1
        # Refused: a later hold is already in place. Failed: the hold is advice, and this
        # process's queue backoff still honours the Retry-After.
        with contextlib.suppress(ClientError, BotoCoreError):
            self._update("SET #n = :until", "attribute_not_exists(#n) OR #n < :until", {":until": until})

    def _update(self, update: str, condition: str, values: dict[str, int], **returns: Any) -> UpdateItemOutputTypeDef:
        """One conditional UpdateItem of the schedule's item; ``values`` are the µs numbers."""
        return self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": self._key}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#n": self.ATTRIBUTE},
            ExpressionAttributeValues={name: {"N": str(value)} for name, value in values.items()},
            **returns,
        )
