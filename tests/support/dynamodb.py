"""DynamoDB Local (the real AWS engine, a Java jar) started once per test session.

Each pytest-xdist worker runs its own session and so its own instance, on its own port.
DynamoDB Local has no bind-address option and listens on every interface; we only ever talk
to it on 127.0.0.1, and it runs in memory with telemetry off.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config

from tasksync_dev.local.dynamodb import DynamoDBLocal
from tests.support.child_servers import serving
from tests.support.template import REPO_ROOT, create_tables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DYNAMODB_LOCAL_DIR = REPO_ROOT / ".tools" / "dynamodb"
REGION = "us-east-1"


@dataclass(frozen=True)
class StateTables:
    """Fresh tables from template.yaml for one test."""

    client: DynamoDBClient
    names: dict[str, str]  # logical id -> table name

    @property
    def state(self) -> str:
        return self.names["StateTable"]

    @property
    def idempotency(self) -> str:
        return self.names["IdempotencyTable"]


def dynamodb_client_for(endpoint: str, *, retries: int = 3) -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "max_attempts": retries}),
    )


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint (http://127.0.0.1:<port>) of a DynamoDB Local running for this session."""
    server = DynamoDBLocal(DYNAMODB_LOCAL_DIR, tmp_path_factory.mktemp("dynamodb-local") / "dynamodb-local.log")
    if not server.installed():
        pytest.fail(
            f"DynamoDB Local is not installed ({server.jar} or java is missing): run `make setup` first.", pytrace=False
        )
    yield from serving(server)


@pytest.fixture(scope="session")
def dynamodb_client(dynamodb_local: str) -> DynamoDBClient:
    """A boto3 DynamoDB client for DynamoDB Local (clients are thread-safe; one per session)."""
    return dynamodb_client_for(dynamodb_local)


@pytest.fixture
def state_tables(dynamodb_client: DynamoDBClient) -> Iterator[StateTables]:
    """Every table of template.yaml, freshly created under a prefix unique to this test."""
    names = create_tables(dynamodb_client, f"t{uuid.uuid4().hex[:12]}")
    yield StateTables(client=dynamodb_client, names=names)
    # The engine runs in memory: dropping the tables keeps a long session small.
    for name in names.values():
        dynamodb_client.delete_table(TableName=name)
