"""The ids of the stack's Close webhook subscriptions, kept in the StateTable without their keys.

The reconciler watches each subscription (paused? resume it?) and needs only the ids. They used
to come from the signature-keys secret, which made the reconciler read every signing key. The
CLI that writes the secret (`tasksync webhook register`/`delete`) now writes the ids here too,
one item with pk `subscriptions#close`, so the reconciler reads them with its ordinary GetItem
and holds no grant on the secret at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SUBSCRIPTIONS_PK = "subscriptions#close"


class SubscriptionDirectory:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def subscription_ids(self) -> list[str]:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": SUBSCRIPTIONS_PK}}, ConsistentRead=True
        ).get("Item")
        return sorted(item["ids"]["SS"]) if item and "ids" in item else []

    def replace(self, subscription_ids: Iterable[str]) -> None:
        """Store exactly these ids (the secret's, after each write of it)."""
        ids = sorted(set(subscription_ids))
        item = {"pk": {"S": SUBSCRIPTIONS_PK}}
        # A DynamoDB string set cannot be empty: no ids is an item without the attribute.
        self.client.put_item(TableName=self.table_name, Item={**item, "ids": {"SS": ids}} if ids else item)
