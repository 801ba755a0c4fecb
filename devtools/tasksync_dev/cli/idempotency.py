"""The worker's idempotency records, found the way Powertools finds them.

The worker (`tasksync.worker.Worker`) applies each event once per key
f"{IDEMPOTENCY_KEY_PREFIX}#<md5 of [id, date_updated]>" in the IdempotencyTable. To replay
an event we delete that record, so we let Powertools' own persistence layer build the key from
the raw event rather than rebuild its hashing here. EVENT_KEY_JMESPATH must stay equal to the
worker's `event_key_jmespath` (tests/integration/test_cli.py runs the real worker to prove it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

from tasksync.worker import IDEMPOTENCY_EVENT_KEY, IDEMPOTENCY_KEY_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

EVENT_KEY_JMESPATH = IDEMPOTENCY_EVENT_KEY


class EventIdempotencyRecords:
    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table_name = table_name
        self._layer = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb)
        self._layer.configure(
            IdempotencyConfig(event_key_jmespath=EVENT_KEY_JMESPATH, raise_on_no_idempotency_key=True),
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )

    def forget(self, raw_event: Mapping[str, Any]) -> bool:
        """Delete the record of this event version; False when there was none."""
        try:
            record = self._layer.get_record(dict(raw_event))
        except IdempotencyItemNotFoundError:
            return False
        if record is None:
            return False
        self._dynamodb.delete_item(
            TableName=self._table_name, Key={self._layer.key_attr: {"S": record.idempotency_key}}
        )
        return True
