"""The operator CLI's test harness: a local stack state file pointing at real parts, and `main()` run in-process.

The target is a local stack state file (the layout `tasksync_dev.local.state` writes) pointing at
the moto server (SQS, Secrets Manager), DynamoDB Local and the Close simulator. `cli(...)` runs
`main()` in-process and returns what it printed. A test module uses the fixtures by importing
`cli` and `stack` and naming them in its `__all__`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasksync.dal.links import LinkState, TaskLink, TaskLinkStore
from tasksync_dev.cli import main
from tasksync_dev.local.state import write_state
from tasksync_dev.sandbox.close import CloseSimulator
from tests.support.aws import Queues, Secrets
from tests.support.dynamodb import StateTables

RECEIVER_URL = "http://127.0.0.1:9/webhooks/close"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"expected one error line, got: {self.err!r}"
        return lines[0]


@dataclass
class LocalStack:
    path: Path
    queues: Queues
    tables: StateTables
    secrets: Secrets
    arns: dict[str, str]
    close: CloseSimulator

    @property
    def signature_keys(self) -> dict[str, str]:
        value = self.secrets.client.get_secret_value(SecretId=self.arns["SignatureKeysSecret"])["SecretString"]
        keys: dict[str, str] = json.loads(value)
        return keys

    def links(self) -> TaskLinkStore:
        return TaskLinkStore(self.tables.client, self.tables.state)


Cli = Callable[..., Outcome]


@pytest.fixture
def stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    queues: Queues,
    secrets: Secrets,
    state_tables: StateTables,
    close_sim: CloseSimulator,
    dynamodb_local: str,
    moto_server: str,
) -> LocalStack:
    """A local stack state file in a fresh TASKSYNC_LOCAL_DIR, as `make run` would write it."""
    arns = secrets.from_template({})
    state = {
        "version": 1,
        "pid": os.getpid(),
        "mode": "sandbox",
        "region": "us-east-1",
        "receiver_url": RECEIVER_URL,
        "endpoints": {"dynamodb": dynamodb_local, "sqs": moto_server, "secretsmanager": moto_server},
        "tables": state_tables.names,
        "queues": queues.urls,
        "secrets": arns,
        "close": {"api_url": f"{close_sim.url}/api/v1", "api_key": close_sim.api_key, "simulator_url": close_sim.url},
        "chartmogul": {"api_url": "http://127.0.0.1:9/v1", "api_key": None, "simulator_url": None},
        "environment": {"TASK_TYPES": "lead"},
    }
    local_dir = tmp_path / "local-stack"
    write_state(local_dir / "stack.json", state)
    monkeypatch.setenv("TASKSYNC_LOCAL_DIR", str(local_dir))
    for name in ("CLOSE_API_KEY", "CLOSE_API_URL", "TASK_TYPES"):
        monkeypatch.delenv(name, raising=False)
    return LocalStack(local_dir / "stack.json", queues, state_tables, secrets, arns, close_sim)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> Outcome:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Outcome(code, captured.out, captured.err)

    return run


def drain(queues: Queues, url: str) -> list[dict[str, Any]]:
    """Receive and delete every message (short polls until one comes back empty)."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = queues.client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            queues.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            messages.append({"body": json.loads(message["Body"]), "group": message["Attributes"]["MessageGroupId"]})


def visible(queues: Queues, url: str) -> int:
    attributes = queues.client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def seed_links(links: TaskLinkStore) -> None:
    """Links in every state, parked ones with their reasons and retry times (`status`, `parked`)."""
    for task_id, state, reason, attempts, retry_at in (
        ("task_a", LinkState.ACTIVE, None, 0, None),
        ("task_b", LinkState.ACTIVE, None, 0, None),
        ("task_c", LinkState.PARKED, "no ChartMogul customer", 2, 1_900_000_000.0),
        ("task_d", LinkState.PARKED, "no ChartMogul customer", 1, 1_800_000_000.0),
        ("task_e", LinkState.PARKED, "ChartMogul refused the assignee", 4, 1_850_000_000.0),
        ("task_f", LinkState.DELETED, None, 0, None),
        ("task_g", LinkState.CREATING, None, 0, None),
    ):
        link = TaskLink(
            close_task_id=task_id,
            state=state,
            parked_reason=reason,
            attempts=attempts,
            retry_at=retry_at,
            lead_id="lead_x",
            task_type="lead",
            updated_at=1_700_000_000.0,
        )
        links.save(None, link)
