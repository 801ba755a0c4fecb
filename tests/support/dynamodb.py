"""DynamoDB Local (the real AWS engine, a Java jar) started once per test session.

Each pytest-xdist worker runs its own session and so its own instance, on its own port.
DynamoDB Local has no bind-address option and listens on every interface; we only ever talk
to it on 127.0.0.1, and it runs in memory with telemetry off.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.template import REPO_ROOT, create_tables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DYNAMODB_LOCAL_DIR = REPO_ROOT / ".tools" / "dynamodb"
REGION = "us-east-1"
# A cold JVM on two busy cores can take several seconds; this only bounds a hang.
START_DEADLINE_SECONDS = 60.0
START_ATTEMPTS = 3


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


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _log_tail(log_path: Path) -> str:
    try:
        return log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
    except OSError:
        return ""


def _start(jar: Path, port: int, log_path: Path) -> subprocess.Popen[bytes] | None:
    """Start DynamoDB Local on ``port``; the process once it answers, None if it exited (port taken)."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                "java",
                f"-Djava.library.path={DYNAMODB_LOCAL_DIR / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jar),
                "-inMemory",
                "-sharedDb",
                "-disableTelemetry",
                "-port",
                str(port),
            ],
            cwd=DYNAMODB_LOCAL_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    probe = dynamodb_client_for(f"http://127.0.0.1:{port}", retries=1)
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        try:
            probe.list_tables(Limit=1)
        except (BotoCoreError, ClientError):
            time.sleep(0.1)
            continue
        return process
    process.kill()
    process.wait()
    raise RuntimeError(f"DynamoDB Local did not answer within {START_DEADLINE_SECONDS:.0f}s:\n{_log_tail(log_path)}")


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint (http://127.0.0.1:<port>) of a DynamoDB Local running for this session."""
    jar = DYNAMODB_LOCAL_DIR / "DynamoDBLocal.jar"
    if not jar.is_file():
        pytest.fail(f"DynamoDB Local is not installed ({jar} is missing): run `make setup` first.", pytrace=False)
    log_path = tmp_path_factory.mktemp("dynamodb-local") / "dynamodb-local.log"
    process = None
    for _ in range(START_ATTEMPTS):
        # The port is free when probed but could be taken before java binds it; then java exits
        # and we try another one.
        port = _free_loopback_port()
        process = _start(jar, port, log_path)
        if process is not None:
            break
    if process is None:
        pytest.fail(f"DynamoDB Local exited at start-up {START_ATTEMPTS} times:\n{_log_tail(log_path)}", pytrace=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
