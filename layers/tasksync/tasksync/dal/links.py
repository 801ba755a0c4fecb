"""The TaskLink store: the `LinkStore` port over DynamoDB (the link itself: models/link.py).

Item `task#<close_task_id>` (see docs/data-model.md). Every write is conditional on the
optimistic-lock counter ``rev`` read with the link, so two workers can never both act on the
same state: the loser gets ConcurrentUpdate and its SQS record is retried. The claim item
`cmtask#<task_uuid>` is written in the same transaction as the link that takes a ChartMogul
task, so one ChartMogul task is never adopted by two Close tasks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from tasksync.dal.aws import condition_held, refused
from tasksync.dal.read_ahead import LinksReadAhead
from tasksync.errors import ConcurrentUpdate
from tasksync.models.chartmogul import TaskFields
from tasksync.models.link import AppliedMarks, LinkState, TaskLink

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PARKED_PARTITION = "parked"
PARKED_INDEX = "ParkedIndex"
TOMBSTONE_TTL_SECONDS = 40 * 86400
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _key(close_task_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"task#{close_task_id}"}}


def _claim_key(cm_task_uuid: str) -> dict[str, Any]:
    return {"pk": {"S": f"cmtask#{cm_task_uuid}"}}


# The link's optional plain attributes (text, a flag), stored under their own names only when set.
_OPTIONAL_PLAIN = (
    "version",
    "pending_version",
    "cm_task_uuid",
    "customer_uuid",
    "lead_id",
    "task_type",
    "fingerprint",
    "lease_owner",
    "intended_customer",
    "parked_reason",
    "written_back_complete",
    "written_back_version",
    "sync_back_reported",
    "sync_back_reported_key",
)


def _to_item(link: TaskLink) -> dict[str, Any]:
    plain: dict[str, Any] = {
        "pk": f"task#{link.close_task_id}",
        "close_task_id": link.close_task_id,
        "state": link.state.value,
        "rev": link.rev,
        "lease_until": int(link.lease_until * 1000),
        "maybe_created": link.maybe_created,
        "attempts": link.attempts,
        "updated_at": int(link.updated_at * 1000),
        "written_back_at": int(link.written_back_at * 1000),
        "pushed_at": int(link.pushed_at * 1000),
        "chartmogul_written_at": int(link.chartmogul_written_at * 1000),
        "sync_back_checked_at": int(link.sync_back_checked_at * 1000),
    }
    optional: dict[str, Any] = {name: getattr(link, name) for name in _OPTIONAL_PLAIN}
    optional |= {
        "fields": link.fields.model_dump() if link.fields else None,
        "intended_fields": link.intended_fields.model_dump() if link.intended_fields else None,
        "pending_delete": True if link.pending_delete else None,
    }
    plain.update({k: v for k, v in optional.items() if v is not None})
    if link.state is LinkState.DELETED:
        # Late webhooks (Close retries for 72 h) and the event log (30 days) can still mention a
        # deleted task; after that the tombstone has done its job and DynamoDB may expire it.
        plain["expires_at"] = int(link.updated_at) + TOMBSTONE_TTL_SECONDS
    if link.state is LinkState.PARKED and link.retry_at is not None:
        # Only parked links carry the GSI keys, so the ParkedIndex holds nothing else.
        plain["parked_pk"] = PARKED_PARTITION
        plain["retry_at"] = int(link.retry_at)
    return {name: _serializer.serialize(value) for name, value in plain.items()}


def _from_item(item: dict[str, Any]) -> TaskLink:
    plain = {name: _deserializer.deserialize(value) for name, value in item.items()}

    def fields(name: str) -> TaskFields | None:
        raw = plain.get(name)
        return TaskFields.model_validate(raw) if raw else None

    retry_at = plain.get("retry_at")
    return TaskLink(
        close_task_id=str(plain["close_task_id"]),
        state=LinkState(plain["state"]),
        rev=int(plain.get("rev", 0)),
        version=plain.get("version"),
        pending_version=plain.get("pending_version"),
        cm_task_uuid=plain.get("cm_task_uuid"),
        customer_uuid=plain.get("customer_uuid"),
        lead_id=plain.get("lead_id"),
        task_type=plain.get("task_type"),
        fields=fields("fields"),
        fingerprint=plain.get("fingerprint"),
        lease_owner=plain.get("lease_owner"),
        lease_until=int(plain.get("lease_until", 0)) / 1000,
        maybe_created=bool(plain.get("maybe_created", False)),
        intended_fields=fields("intended_fields"),
        intended_customer=plain.get("intended_customer"),
        parked_reason=plain.get("parked_reason"),
        retry_at=float(retry_at) if retry_at is not None else None,
        attempts=int(plain.get("attempts", 0)),
        pending_delete=bool(plain.get("pending_delete", False)),
        updated_at=int(plain.get("updated_at", 0)) / 1000,
        written_back_complete=plain.get("written_back_complete"),
        written_back_version=plain.get("written_back_version"),
        written_back_at=int(plain.get("written_back_at", 0)) / 1000,
        pushed_at=int(plain.get("pushed_at", 0)) / 1000,
        chartmogul_written_at=int(plain.get("chartmogul_written_at", 0)) / 1000,
        sync_back_reported=plain.get("sync_back_reported"),
        sync_back_reported_key=plain.get("sync_back_reported_key"),
        sync_back_checked_at=int(plain.get("sync_back_checked_at", 0)) / 1000,
    )


class TaskLinkStore:
    """Reads and conditionally writes TaskLinks and their ChartMogul task claims."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name
        self.reads = 0
        self.writes = 0
        self._ahead = LinksReadAhead()

    # ------------------------------------------------------------------ reads
    def read_ahead(self, close_task_ids: Sequence[str]) -> None:
        """Read the links of the tasks a batch is about to apply in one consistent BatchGetItem
        instead of a GetItem each (one round trip fewer on every record's path); each task's
        next ``get``, if it comes within `read_ahead.MAX_AGE_SECONDS`, is answered from it, once.

        Every write stays conditional on the ``rev`` read, so a link another process changed
        since fails the link write (ConcurrentUpdate, the record is retried) as after any read;
        the age limit keeps the read as recent as the record's own read would have been. A
        task's later reads in the batch ask DynamoDB again: they must see the writes of its own
        earlier records.
        """
        ids = list(dict.fromkeys(close_task_ids))
        read_at = self._ahead.now()
        ahead: dict[str, TaskLink | None] = {}
        if len(ids) >= 2:  # one task: nothing to save on
            try:
                # One attempt: a key left unprocessed is read on its own when its record comes.
                items, _, left = self._batch_get([_key(task_id) for task_id in ids], consistent=True, attempts=1)
            except (BotoCoreError, ClientError):
                # Only a shortcut: each record's own read asks again and meets the error where
                # the worker handles it.
                items, left = [], [_key(task_id) for task_id in ids]
            unread = {str(key["pk"]["S"]) for key in left}
            ahead = {task_id: None for task_id in ids if f"task#{task_id}" not in unread}
            for item in items:
                task_id = str(item["pk"]["S"]).removeprefix("task#")
                try:
                    ahead[task_id] = _from_item(item)
                except (KeyError, TypeError, ValueError):
                    # An item this code cannot read fails its own record when that reads it,
                    # not the whole batch here.
                    del ahead[task_id]
        self._ahead.replace(ahead, read_at=read_at)

    def get(self, close_task_id: str) -> TaskLink | None:
        read, link = self._ahead.take(close_task_id)
        if read:
            return link
        self.reads += 1
        answer = self.client.get_item(TableName=self.table_name, Key=_key(close_task_id), ConsistentRead=True)
        item = answer.get("Item")
        return _from_item(item) if item else None

    def claimed_by(self, cm_task_uuid: str) -> str | None:
        """The Close task that owns a ChartMogul task, if any."""
        self.reads += 1
        answer = self.client.get_item(TableName=self.table_name, Key=_claim_key(cm_task_uuid), ConsistentRead=True)
        item = answer.get("Item")
        return str(item["close_task_id"]["S"]) if item else None

    def parked_due(self, now: float, limit: int = 100) -> Iterator[TaskLink]:
        """Parked links whose retry time has come, oldest first (sparse ParkedIndex)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": PARKED_INDEX,
            "KeyConditionExpression": "parked_pk = :p AND retry_at <= :now",
            "ExpressionAttributeValues": {":p": {"S": PARKED_PARTITION}, ":now": {"N": str(int(now))}},
            "Limit": min(limit, 100),
        }
        returned = 0
        while returned < limit:
            self.reads += 1
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                yield _from_item(item)
                returned += 1
                if returned >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def scan_links(self) -> Iterator[TaskLink]:
        """Every TaskLink (operator status and tests; never on the hot path)."""
        return self._scan("begins_with(pk, :p)", {":p": {"S": "task#"}})

    def active_links(self) -> Iterator[TaskLink]:
        """Every ACTIVE link, for the sync-back's comparison with ChartMogul's open tasks.

        A filtered Scan: it reads the whole table once per sync-back pass (DynamoDB read
        units, no API calls), which stays cheap at the volumes the sync-back is meant for.
        """
        return self._scan(
            "begins_with(pk, :p) AND #state = :active",
            {":p": {"S": "task#"}, ":active": {"S": LinkState.ACTIVE.value}},
            {"#state": "state"},
        )

    def _scan(self, condition: str, values: dict[str, Any], names: dict[str, str] | None = None) -> Iterator[TaskLink]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": condition,
            "ExpressionAttributeValues": values,
            **({"ExpressionAttributeNames": names} if names else {}),
        }
        while True:
            self.reads += 1
            page = self.client.scan(**kwargs)
            for item in page.get("Items", []):
                yield _from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ------------------------------------------------------------------ writes
    def _condition(self, previous: TaskLink | None) -> dict[str, Any]:
        if previous is None:
            return {"ConditionExpression": "attribute_not_exists(pk)"}
        return {
            "ConditionExpression": "rev = :rev",
            "ExpressionAttributeValues": {":rev": {"N": str(previous.rev)}},
        }

    def _put(self, previous: TaskLink | None, link: TaskLink) -> TaskLink:
        self._ahead.drop(link.close_task_id)
        written = replace(link, rev=(previous.rev + 1) if previous else 1)
        self.writes += 1
        try:
            self.client.put_item(TableName=self.table_name, Item=_to_item(written), **self._condition(previous))
        except ClientError as exc:
            if refused(exc):
                raise ConcurrentUpdate(f"task link {link.close_task_id} changed underneath us") from None
            raise
        return written

    def save(self, previous: TaskLink | None, link: TaskLink) -> TaskLink:
        """Write ``link`` if the stored link is still ``previous``; return it with its new rev."""
        return self._put(previous, link)

    def save_with_claim(self, previous: TaskLink | None, link: TaskLink, *, release: str | None = None) -> TaskLink:
        """Write ``link`` and claim its ChartMogul task in one transaction.

        ``release`` names a ChartMogul task UUID whose claim is dropped in the same
        transaction (the task was deleted or replaced).
        """
        self._ahead.drop(link.close_task_id)
        written = replace(link, rev=(previous.rev + 1) if previous else 1)
        condition = self._condition(previous)
        put: dict[str, Any] = {"TableName": self.table_name, "Item": _to_item(written), **condition}
        items: list[dict[str, Any]] = [{"Put": put}]
        if written.cm_task_uuid:
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {
                            **_claim_key(written.cm_task_uuid),
                            "close_task_id": {"S": written.close_task_id},
                        },
                        "ConditionExpression": "attribute_not_exists(pk) OR close_task_id = :me",
                        "ExpressionAttributeValues": {":me": {"S": written.close_task_id}},
                    }
                }
            )
        if release and release != written.cm_task_uuid:
            items.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": _claim_key(release),
                        "ConditionExpression": "attribute_not_exists(pk) OR close_task_id = :me",
                        "ExpressionAttributeValues": {":me": {"S": written.close_task_id}},
                    }
                }
            )
        self.writes += 1
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise ConcurrentUpdate(f"task link {link.close_task_id} or its claim changed underneath us") from None
            raise
        return written

    # ------------------------------------------------------------------ completion hints
    # `activity.task_completed` tells us *when* a task was completed. It may arrive before or
    # after the task's own event, so it is kept in its own small item (30-day TTL, the length
    # of Close's event log) and read when a completed task is pushed.
    def completion_hint(self, close_task_id: str) -> str | None:
        self.reads += 1
        answer = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": f"completion#{close_task_id}"}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return str(item["completed_at"]["S"]) if item else None

    def note_completion(self, close_task_id: str, completed_at: str, activity_date: str, expires_at: int) -> bool:
        """Record a completion time; an older activity never overwrites a newer one."""
        self.writes += 1
        return condition_held(
            lambda: self.client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": f"completion#{close_task_id}"},
                    "completed_at": {"S": completed_at},
                    "activity_date": {"S": activity_date},
                    "expires_at": {"N": str(expires_at)},
                },
                ConditionExpression="attribute_not_exists(pk) OR activity_date <= :d",
                ExpressionAttributeValues={":d": {"S": activity_date}},
            )
        )

    def forget_completion(self, close_task_id: str, activity_date: str) -> None:
        """Drop the hint when its activity is deleted (task reopened), unless a newer one exists."""
        self.writes += 1
        condition_held(
            lambda: self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"completion#{close_task_id}"}},
                ConditionExpression="attribute_not_exists(pk) OR activity_date <= :d",
                ExpressionAttributeValues={":d": {"S": activity_date}},
            )
        )

    # ------------------------------------------------------------------ batch read (reconciler)
    def applied_marks(self, close_task_ids: list[str], completion_task_ids: list[str]) -> AppliedMarks:
        """The links and completion hints of up to 50 + 50 tasks in one BatchGetItem.

        Eventually consistent on purpose: the reconciler only uses this to skip events the worker
        has already applied, and a stale answer merely lets an event through that the worker then
        skips itself. Keys DynamoDB leaves unprocessed (throttling) are asked for again, a few
        times; whatever is still missing after that reads as "no link" (safe, as above).
        """
        keys = [_key(task_id) for task_id in dict.fromkeys(close_task_ids)]
        keys += [{"pk": {"S": f"completion#{task_id}"}} for task_id in dict.fromkeys(completion_task_ids)]
        if len(keys) > _BATCH_GET_MAX_KEYS:
            raise ValueError(f"at most {_BATCH_GET_MAX_KEYS} keys per BatchGetItem, got {len(keys)}")
        items, read_units, _ = self._batch_get(keys, consistent=False)
        marks = AppliedMarks(links={}, completions={}, read_units=read_units)
        for item in items:
            pk = str(item["pk"]["S"])
            if pk.startswith("task#"):
                link = _from_item(item)
                marks.links[link.close_task_id] = link
            elif pk.startswith("completion#") and "activity_date" in item:
                marks.completions[pk[len("completion#") :]] = str(item["activity_date"]["S"])
        return marks

    def _batch_get(
        self, keys: list[dict[str, Any]], *, consistent: bool, attempts: int = 3
    ) -> tuple[list[dict[str, Any]], float, list[dict[str, Any]]]:
        """The items of ``keys`` (absent ones are left out), the read units spent, and the keys
        DynamoDB still left unprocessed (throttling) after ``attempts`` requests."""
        items: list[dict[str, Any]] = []
        read_units = 0.0
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": consistent}}
        for _ in range(attempts):
            if not keys:
                break
            self.reads += 1
            answer = self.client.batch_get_item(RequestItems=request, ReturnConsumedCapacity="TOTAL")
            read_units += sum(float(c.get("CapacityUnits", 0.0)) for c in answer.get("ConsumedCapacity", []))
            items += answer.get("Responses", {}).get(self.table_name, [])
            request = dict(answer.get("UnprocessedKeys") or {})
            keys = request.get(self.table_name, {}).get("Keys", [])
        return items, read_units, keys


# One BatchGetItem takes at most 100 keys: a 50-event page's tasks plus their completion hints.
_BATCH_GET_MAX_KEYS = 100


__all__ = ["AppliedMarks", "LinkState", "LinksReadAhead", "TaskLink", "TaskLinkStore"]
