"""Cached lookups in the StateTable (lead -> ChartMogul customer, Close user -> email, and the
assignee emails ChartMogul refused).

Two layers. The process memory answers first, so a warm worker makes no DynamoDB call for a
lead or user it has already seen. Behind it, a DynamoDB item per key (`lead#<close_lead_id>`,
`user#<close_user_id>`, `assignee#<email>`) shares the answer between workers and across cold
starts. Refusals are the one lookup whose usual answer is "none": memory remembers that
absence too, so the hot path does not read DynamoDB for every task of a valid assignee.

Expiry: every item carries `expires_at` (epoch seconds), the table's TTL attribute. DynamoDB
deletes expired items lazily (up to ~48 h later) and moto never does, so every read checks
`expires_at` itself; TTL only keeps the table small.

Write rule: an item also records `cached_at`, when its answer was obtained. A write succeeds
if the item is absent, expired, or not newer than the one being written
(`attribute_not_exists(pk) OR expires_at <= :now OR cached_at <= :cached_at`; the expiry
clause matters only for an item without `cached_at`, e.g. one written by hand). So two workers
that resolve the same lead at nearly the same time settle on the later answer whatever order
their writes land in, and a slow worker cannot put back an answer older than a newer one (or
than a `forget_customer`, which writes a short-lived tombstone rather than deleting). A lost
write is not an error: the newer answer is already there. Plain unconditional puts would be
one condition cheaper to read but could let a stale customer (say, from before a merge in
ChartMogul) overwrite the fresh one for a whole TTL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasksync.dal.aws import condition_held

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LEAD_PREFIX = "lead#"
USER_PREFIX = "user#"
ASSIGNEE_PREFIX = "assignee#"
CUSTOMER_ATTRIBUTE = "customer_uuid"
EMAIL_ATTRIBUTE = "email"
REFUSAL_ATTRIBUTE = "refusal"
# In memory only: "looked, nothing stored" (never written to DynamoDB).
_ABSENT = ""
# A forgotten entry is remembered as forgotten this long: far longer than any worker takes
# between resolving a lead and writing the answer, which is the race the tombstone closes.
TOMBSTONE_SECONDS = 3600
# Memory is per worker and a `forget_customer` on one worker cannot reach another's memory,
# so memory keeps an answer at most this long even when the item lives longer.
DEFAULT_MEMORY_SECONDS = 300.0
DEFAULT_MEMORY_ITEMS = 10_000

_WRITE_CONDITION = "attribute_not_exists(pk) OR #expires_at <= :now OR #cached_at <= :cached_at"


@dataclass(frozen=True)
class RefusedAssignee:
    """An assignee email ChartMogul refused, remembered until ``expires_at`` (epoch seconds)."""

    email: str
    refusal: str
    expires_at: float


class StateCache:
    """The LookupCache of the worker and reconciler; ``reads``/``writes`` count DynamoDB requests."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        clock: Callable[[], float] = time.time,
        *,
        memory_seconds: float = DEFAULT_MEMORY_SECONDS,
        memory_items: int = DEFAULT_MEMORY_ITEMS,
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.clock = clock
        self.memory_seconds = memory_seconds
        self.memory_items = memory_items
        self.reads = 0
        self.writes = 0
        self.memory_hits = 0
        self._memory: dict[str, tuple[str, float]] = {}  # pk -> (value, valid until), oldest first
        self._lock = threading.Lock()

    # --- the LookupCache protocol --------------------------------------------------------------

    def get_customer(self, lead_id: str) -> str | None:
        return self._get(LEAD_PREFIX + lead_id, CUSTOMER_ATTRIBUTE)

    def put_customer(self, lead_id: str, customer_uuid: str, ttl_seconds: int) -> None:
        self._put(LEAD_PREFIX + lead_id, CUSTOMER_ATTRIBUTE, customer_uuid, ttl_seconds)

    def forget_customer(self, lead_id: str) -> None:
        self._forget(LEAD_PREFIX + lead_id)

    def get_user_email(self, user_id: str) -> str | None:
        return self._get(USER_PREFIX + user_id, EMAIL_ATTRIBUTE)

    def put_user_email(self, user_id: str, email: str, ttl_seconds: int) -> None:
        self._put(USER_PREFIX + user_id, EMAIL_ATTRIBUTE, email, ttl_seconds)

    # --- the AssigneeRefusals port ---------------------------------------------------------------

    def assignee_refusal(self, email: str) -> str | None:
        """Why ChartMogul refused ``email`` as an assignee, while that is remembered."""
        return self._get(ASSIGNEE_PREFIX + email.strip().lower(), REFUSAL_ATTRIBUTE, remember_absence=True)

    def note_assignee_refusal(self, email: str, refusal: str, ttl_seconds: int) -> None:
        self._put(ASSIGNEE_PREFIX + email.strip().lower(), REFUSAL_ATTRIBUTE, refusal or "refused", ttl_seconds)

    def refused_assignees(self) -> Iterator[RefusedAssignee]:
        """Every refusal still remembered (a Scan: for the operator's status, never the hot path)."""
        now = self.clock()
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(pk, :p) AND #expires_at > :now",
            "ExpressionAttributeNames": {"#expires_at": "expires_at"},
            "ExpressionAttributeValues": {":p": {"S": ASSIGNEE_PREFIX}, ":now": {"N": _number(now)}},
        }
        while True:
            page = self.client.scan(**kwargs)
            with self._lock:
                self.reads += 1
            for item in page.get("Items", []):
                if REFUSAL_ATTRIBUTE in item:
                    yield RefusedAssignee(
                        email=item["pk"]["S"][len(ASSIGNEE_PREFIX) :],
                        refusal=item[REFUSAL_ATTRIBUTE]["S"],
                        expires_at=float(item["expires_at"]["N"]),
                    )
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- memory --------------------------------------------------------------------------------

    def _recall(self, pk: str, now: float) -> str | None:
        with self._lock:
            entry = self._memory.get(pk)
            if entry is None:
                return None
            value, valid_until = entry
            if valid_until <= now:
                del self._memory[pk]
                return None
            self.memory_hits += 1
            return value

    def _remember(self, pk: str, value: str, expires_at: float, now: float) -> None:
        with self._lock:
            self._memory.pop(pk, None)
            self._memory[pk] = (value, min(expires_at, now + self.memory_seconds))
            while len(self._memory) > self.memory_items:
                # dicts keep insertion order: drop the entry remembered longest ago.
                del self._memory[next(iter(self._memory))]

    def _drop(self, pk: str) -> None:
        with self._lock:
            self._memory.pop(pk, None)

    # --- DynamoDB ------------------------------------------------------------------------------

    def _get(self, pk: str, attribute: str, *, remember_absence: bool = False) -> str | None:
        now = self.clock()
        remembered = self._recall(pk, now)
        if remembered is not None:
            return remembered or None  # _ABSENT: we looked not long ago and found nothing
        # Eventually consistent: a cache may lag a write by a moment, and it costs half as much.
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": pk}},
            ProjectionExpression="#value, #expires_at",
            ExpressionAttributeNames={"#value": attribute, "#expires_at": "expires_at"},
        )
        with self._lock:
            self.reads += 1
        item = response.get("Item")
        expires_at = float(item["expires_at"]["N"]) if item and "expires_at" in item else 0.0
        if not item or attribute not in item or expires_at <= now:
            # Absent, a tombstone left by forget, or expired but not yet deleted by TTL.
            if remember_absence:
                self._remember(pk, _ABSENT, now + self.memory_seconds, now)
            return None
        value = item[attribute]["S"]
        self._remember(pk, value, expires_at, now)
        return value

    def _conditional_put(self, item: dict[str, str], now: float, cached_at: float, expires_at: int) -> bool:
        values: dict[str, dict[str, str]] = {name: {"S": text} for name, text in item.items()}
        values["cached_at"] = {"N": _number(cached_at)}
        values["expires_at"] = {"N": str(expires_at)}
        with self._lock:
            self.writes += 1
        return condition_held(
            lambda: self.client.put_item(
                TableName=self.table_name,
                Item=values,
                ConditionExpression=_WRITE_CONDITION,
                ExpressionAttributeNames={"#expires_at": "expires_at", "#cached_at": "cached_at"},
                ExpressionAttributeValues={":now": {"N": _number(now)}, ":cached_at": {"N": _number(cached_at)}},
            )
        )

    def _put(self, pk: str, attribute: str, value: str, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            return  # a TTL of 0 turns caching off (CUSTOMER_CACHE_TTL_SECONDS=0)
        now = self.clock()
        expires_at = int(now + ttl_seconds)
        if self._conditional_put({"pk": pk, attribute: value}, now, now, expires_at):
            self._remember(pk, value, expires_at, now)
        else:
            # A newer answer is stored: read it from DynamoDB next time rather than trust ours.
            self._drop(pk)

    def _forget(self, pk: str) -> None:
        self._drop(pk)
        now = self.clock()
        self._conditional_put({"pk": pk}, now, now, int(now + TOMBSTONE_SECONDS))


def _number(value: float) -> str:
    # Fixed notation with microseconds, never Python's exponent form (str(1e-06) == '1e-06').
    return f"{value:.6f}"
