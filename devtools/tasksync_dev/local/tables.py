"""The template's DynamoDB tables, created for local use, kept across restarts, or deleted.

Apart from template.py's queues and secrets because tables are the one resource a local run keeps:
`make run` reuses them (DynamoDB Local's data directory), so creating one means first checking
that a kept table still has the keys and indexes the template declares now.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tasksync_dev.local.template import TableDefinition, local_table_name, table_definitions

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Table creation is near-instant on DynamoDB Local; the deadline only guards against a hang.
TABLE_ACTIVE_DEADLINE_SECONDS = 30.0


def _poll_until(condition: Callable[[], bool], *, deadline_seconds: float, what: str) -> None:
    deadline = time.monotonic() + deadline_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {deadline_seconds:.0f}s")
        time.sleep(0.05)


def create_tables(
    dynamodb_client: DynamoDBClient,
    prefix: str,
    template: Mapping[str, Any] | None = None,
    *,
    keep_existing: bool = False,
) -> dict[str, str]:
    """Create every table of the template as f"{prefix}-{logical_id}"; return logical id -> table name.

    With ``keep_existing`` a table of that name that is already there is kept, data and all (a
    restarted `make run`), provided its keys and indexes are still the template's.
    """
    names: dict[str, str] = {}
    for logical_id, definition in table_definitions(template).items():
        name = local_table_name(prefix, logical_id)
        names[logical_id] = name
        if keep_existing and _kept(dynamodb_client, name, definition):
            continue
        dynamodb_client.create_table(TableName=name, **definition["create_table"])

        def is_active(table_name: str = name) -> bool:
            table = dynamodb_client.describe_table(TableName=table_name)["Table"]
            indexes = table.get("GlobalSecondaryIndexes", [])
            return table.get("TableStatus") == "ACTIVE" and all(i.get("IndexStatus") == "ACTIVE" for i in indexes)

        _poll_until(is_active, deadline_seconds=TABLE_ACTIVE_DEADLINE_SECONDS, what=f"table {name} becoming ACTIVE")
        if definition["ttl_attribute"]:
            dynamodb_client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": definition["ttl_attribute"], "Enabled": True},
            )
    return names


def delete_tables(dynamodb_client: DynamoDBClient, prefix: str, template: Mapping[str, Any] | None = None) -> None:
    """Delete the template's tables under ``prefix`` that exist (DynamoDB Local deletes at once)."""
    for logical_id in table_definitions(template):
        with contextlib.suppress(dynamodb_client.exceptions.ResourceNotFoundException):
            dynamodb_client.delete_table(TableName=local_table_name(prefix, logical_id))


class TableMismatch(ValueError):
    """A kept table no longer has the template's keys or indexes."""


def _kept(dynamodb_client: DynamoDBClient, name: str, definition: TableDefinition) -> bool:
    """True when the table exists with the template's key schema and index names."""
    try:
        table = dynamodb_client.describe_table(TableName=name)["Table"]
    except dynamodb_client.exceptions.ResourceNotFoundException:
        return False
    wanted = definition["create_table"]

    def shape(source: Mapping[str, Any]) -> tuple[Any, ...]:
        keys = sorted((k["AttributeName"], k["KeyType"]) for k in source.get("KeySchema", []))
        indexes = sorted(i["IndexName"] for i in source.get("GlobalSecondaryIndexes", []))
        return (keys, indexes)

    if shape(table) != shape(wanted):
        raise TableMismatch(
            f"the kept table {name} has other keys or indexes than template.yaml declares now: "
            "start with `make run FRESH=1` to rebuild it (this forgets the local links and checkpoints)"
        )
    return True
