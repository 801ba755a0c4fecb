"""Reconciler checkpoints in the StateTable: how far Close's event log has been replayed.

One item per (object_type, action), pk `checkpoint#<object_type>#<action>`, holding the
`date_updated` up to which events were applied, as a canonical UTC string
(`tasksync.models._parsing.format_utc`). Those strings sort in time order, so DynamoDB can
compare them in a condition: `advance` only ever moves a checkpoint forward, and two
reconciler runs that overlap (a slow one and the next scheduled one) cannot drag it back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tasksync.dal.aws import condition_held
from tasksync.models._parsing import format_utc

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CHECKPOINT_PREFIX = "checkpoint#"
_CANONICAL_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def checkpoint_pk(object_type: str, action: str) -> str:
    return f"{CHECKPOINT_PREFIX}{object_type}#{action}"


def _parse(text: str) -> datetime:
    return datetime.strptime(text, _CANONICAL_FORMAT).replace(tzinfo=UTC)


class CheckpointStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def get(self, object_type: str, action: str) -> datetime | None:
        """The checkpoint (aware, UTC), or None before the first run."""
        # Strongly consistent: a run must start from where the previous one stopped.
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": checkpoint_pk(object_type, action)}},
            ProjectionExpression="#checkpoint",
            ExpressionAttributeNames={"#checkpoint": "checkpoint"},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item or "checkpoint" not in item:
            return None
        return _parse(item["checkpoint"]["S"])

    def advance(self, object_type: str, action: str, to: datetime) -> bool:
        """Move the checkpoint to ``to`` if that is later than the stored one; True if it moved.

        A naive ``to`` is taken as UTC, like every Close timestamp.
        """
        new = format_utc(to)
        return condition_held(
            lambda: self.client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": checkpoint_pk(object_type, action)},
                    "object_type": {"S": object_type},
                    "action": {"S": action},
                    "checkpoint": {"S": new},
                    "updated_at": {"S": format_utc(datetime.now(UTC))},
                },
                ConditionExpression="attribute_not_exists(pk) OR #checkpoint < :new",
                ExpressionAttributeNames={"#checkpoint": "checkpoint"},
                ExpressionAttributeValues={":new": {"S": new}},
            )
        )

    def record_run(self, summary: dict[str, Any], finished_at: datetime) -> None:
        """Keep what a run did for `tasksync status` (see `RunRecord`)."""
        RunRecord(self.client, self.table_name).record(summary, finished_at)

    def all(self) -> dict[tuple[str, str], datetime]:
        """Every checkpoint, keyed by (object_type, action), for the CLI's status.

        A filtered Scan reads the whole table (task links included). That is fine for an
        occasional operator command, and avoids keeping a second index item in step with
        every advance; the reconciler itself only ever uses `get`.
        """
        found: dict[tuple[str, str], datetime] = {}
        paginator = self.client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.table_name,
            FilterExpression="begins_with(pk, :prefix)",
            ProjectionExpression="#object_type, #action, #checkpoint",
            ExpressionAttributeNames={"#object_type": "object_type", "#action": "action", "#checkpoint": "checkpoint"},
            ExpressionAttributeValues={":prefix": {"S": CHECKPOINT_PREFIX}},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                found[(item["object_type"]["S"], item["action"]["S"])] = _parse(item["checkpoint"]["S"])
        return found


RUN_RECORD_PK = "run#reconcile"


class RunRecord:
    """The last reconciler run (`tasksync status`), plus running totals since the first run.

    One item, `run#reconcile`: ``last`` is overwritten by every run, the ``total_*`` counters are
    added to atomically (ADD), so two overlapping runs never lose each other's counts.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def record(self, summary: dict[str, Any], finished_at: datetime) -> None:
        counters = {
            name: value for name, value in summary.items() if isinstance(value, int) and not isinstance(value, bool)
        }
        names = {"#last": "last", "#runs": "runs", **{f"#t{i}": f"total_{name}" for i, name in enumerate(counters)}}
        values: dict[str, Any] = {
            ":last": {"S": json.dumps({**summary, "finished_at": format_utc(finished_at)}, sort_keys=True)},
            ":one": {"N": "1"},
            **{f":t{i}": {"N": str(value)} for i, value in enumerate(counters.values())},
        }
        adds = ", ".join(["#runs :one", *(f"#t{i} :t{i}" for i in range(len(counters)))])
        self.client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": RUN_RECORD_PK}},
            UpdateExpression=f"SET #last = :last ADD {adds}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def read(self) -> dict[str, Any] | None:
        """``{"last": {...}, "runs": n, "totals": {counter: n}}``, or None before the first run."""
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": RUN_RECORD_PK}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        totals = {name[len("total_") :]: int(value["N"]) for name, value in item.items() if name.startswith("total_")}
        last = json.loads(item["last"]["S"]) if "last" in item else {}
        return {"last": last, "runs": int(item.get("runs", {}).get("N", "0")), "totals": totals}


class RunLock:
    """One reconciler run at a time: a lease item `lock#<name>` that expires on its own.

    A scheduled run may still be going when the next one starts (the function's timeout can
    equal the interval). Overlapping runs would be harmless, since enqueues deduplicate and
    checkpoints only move forward, but they double Close's event-log reads for nothing.
    """

    def __init__(self, client: DynamoDBClient, table_name: str, name: str, clock: Callable[[], float] = time.time):
        self.client = client
        self.table_name = table_name
        self.key = {"pk": {"S": f"lock#{name}"}}
        self.clock = clock

    def acquire(self, owner: str, seconds: float) -> bool:
        now = self.clock()
        return condition_held(
            lambda: self.client.put_item(
                TableName=self.table_name,
                Item={
                    **self.key,
                    "owner": {"S": owner},
                    "lease_until": {"N": f"{now + seconds:.3f}"},
                    "expires_at": {"N": str(int(now + seconds) + 3600)},
                },
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
            )
        )

    def release(self, owner: str) -> None:
        condition_held(
            lambda: self.client.delete_item(
                TableName=self.table_name,
                Key=self.key,
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        )
