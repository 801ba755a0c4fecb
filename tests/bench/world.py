"""The engine's world for the benchmarks: simulators, DynamoDB Local and fresh tables."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from tasksync_dev.local.dynamodb import DynamoDBLocal
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.support.template import REPO_ROOT, create_tables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass
class Backends:
    dynamodb: DynamoDBClient
    close: CloseSimulator
    chartmogul: ChartMogulSimulator
    state_table: str
    idempotency_table: str


def dynamodb_client(endpoint: str, *, pool: int = 10) -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(
            connect_timeout=2,
            read_timeout=10,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=pool,
        ),
    )


@contextlib.contextmanager
def dynamodb_local() -> Iterator[str]:
    """A DynamoDB Local for the whole run (the JVM takes seconds to start)."""
    log = Path(tempfile.mkdtemp(prefix="tasksync-bench-")) / "dynamodb-local.log"
    engine = DynamoDBLocal(REPO_ROOT / ".tools" / "dynamodb", log)
    endpoint = engine.start()
    try:
        yield endpoint
    finally:
        engine.stop()


@contextlib.contextmanager
def backends(endpoint: str, *, pool: int = 10, **chartmogul_options: Any) -> Iterator[Backends]:
    """Started simulators and fresh tables from template.yaml; all torn down afterwards."""
    client = dynamodb_client(endpoint, pool=pool)
    tables = create_tables(client, f"b{uuid.uuid4().hex[:10]}")
    close = CloseSimulator()
    chartmogul = ChartMogulSimulator(**chartmogul_options)
    close.start()
    chartmogul.start()
    try:
        yield Backends(client, close, chartmogul, tables["StateTable"], tables["IdempotencyTable"])
    finally:
        close.stop()
        chartmogul.stop()
        for name in tables.values():
            client.delete_table(TableName=name)


class CapacityMeter:
    """Estimated DynamoDB capacity units of the requests a client makes (items under 1 KB).

    On-demand billing: a write of an item up to 1 KB is 1 WRU, 2 inside a transaction; a
    strongly consistent read up to 4 KB is 1 RRU, an eventually consistent one 0.5, 2 inside a
    transaction. A Query or Scan is counted as one read of up to 4 KB (ours return a few items).
    Registered as a botocore event hook: the requests themselves are untouched.
    """

    WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
    READS = frozenset({"GetItem", "Query", "Scan"})  # BatchGetItem: per key, below

    def __init__(self, client: DynamoDBClient) -> None:
        self.read_units = 0.0
        self.write_units = 0.0
        # The shared ChartMogul schedule's writes (item `pacing#...`), kept apart from the engine's.
        self.limiter_write_units = 0.0
        client.meta.events.register("provide-client-params.dynamodb", self._count)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        # provide-client-params hands over the API parameters as the caller passed them.
        name = model.name
        if name in self.WRITES and str(params.get("Key", {}).get("pk", {}).get("S", "")).startswith("pacing#"):
            self.limiter_write_units += 1
        elif name in self.WRITES:
            self.write_units += 1
        elif name in self.READS:
            self.read_units += 1 if params.get("ConsistentRead") else 0.5
        elif name == "BatchGetItem":
            for table in params.get("RequestItems", {}).values():
                self.read_units += len(table.get("Keys", [])) * (1 if table.get("ConsistentRead") else 0.5)
        elif name == "TransactWriteItems":
            self.write_units += 2 * len(params.get("TransactItems", []))
        elif name == "TransactGetItems":
            self.read_units += 2 * len(params.get("TransactItems", []))
        elif name == "BatchWriteItem":
            self.write_units += sum(len(items) for items in params.get("RequestItems", {}).values())
