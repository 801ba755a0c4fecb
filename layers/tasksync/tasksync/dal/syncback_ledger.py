"""The sync-back's ledger in the StateTable: its pass counter and its last pass's report.

Two small items: `syncback#passes` (a counter in the table, so that "every N passes" holds across
Lambda instances) and `syncback#last` (the last pass's report as JSON, for `tasksync status`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from tasksync.logic.syncback import SyncBackReport

PASSES_KEY = {"pk": {"S": "syncback#passes"}}
LAST_KEY = {"pk": {"S": "syncback#last"}}


class SyncBackLedger:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def count_pass(self) -> int:
        # A plain read and write, not an atomic ADD: reconciler passes never overlap (RunLock),
        # and a lost count only moves the sync-back by one pass. GetItem and PutItem are what
        # the reconciler is granted on the table anyway.
        answer = self.client.get_item(TableName=self.table_name, Key=PASSES_KEY, ConsistentRead=True)
        item = answer.get("Item")
        passes = (int(item["passes"]["N"]) if item else 0) + 1
        self.client.put_item(TableName=self.table_name, Item={**PASSES_KEY, "passes": {"N": str(passes)}})
        return passes

    def record(self, report: SyncBackReport) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={**LAST_KEY, "report": {"S": json.dumps(report.as_dict(), sort_keys=True)}},
        )

    def last(self) -> dict[str, Any] | None:
        """The last pass's report (`SyncBackReport.as_dict()`), or None before the first pass."""
        answer = self.client.get_item(TableName=self.table_name, Key=LAST_KEY, ConsistentRead=True)
        item = answer.get("Item")
        if not item:
            return None
        report: dict[str, Any] = json.loads(item["report"]["S"])
        return report
