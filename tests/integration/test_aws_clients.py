"""aws_client: one cached client per service and endpoint, endpoints from the environment honoured."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasksync.dal.api_keys import read_secret
from tasksync.dal.aws import aws_client, forget_clients
from tasksync.dal.signature_keys import SecretSignatureKeys
from tests.support.aws import Secrets
from tests.support.dynamodb import StateTables


@pytest.fixture(autouse=True)
def fresh_clients() -> None:
    forget_clients()


def test_endpoint_from_the_environment_reaches_dynamodb_local(
    state_tables: StateTables, dynamodb_local: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local)
    client = aws_client("dynamodb")
    assert state_tables.state in client.list_tables()["TableNames"]


def test_explicit_endpoint_reaches_dynamodb_local(state_tables: StateTables, dynamodb_local: str) -> None:
    assert state_tables.state in aws_client("dynamodb", dynamodb_local).list_tables()["TableNames"]


def test_clients_are_reused_per_service_and_endpoint(dynamodb_local: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = aws_client("dynamodb", dynamodb_local)
    assert aws_client("dynamodb", dynamodb_local) is first
    assert aws_client("dynamodb") is not first
    assert aws_client("sqs", dynamodb_local).meta.service_model.service_name == "sqs"
    # A changed endpoint in the environment gets a new client, never the old one.
    before = aws_client("dynamodb")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local)
    assert aws_client("dynamodb") is not before
    forget_clients()
    assert aws_client("dynamodb", dynamodb_local) is not first


def test_clients_time_out_and_retry_as_configured(dynamodb_local: str) -> None:
    # botocore-stubs do not declare Config's option attributes.
    config: Any = aws_client("dynamodb", dynamodb_local).meta.config
    assert config.connect_timeout == 2
    assert config.read_timeout == 5
    assert config.retries is not None
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] == 3


def test_secret_reads_go_through_the_short_timeout_client(
    moto_server: str, secrets: Secrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Powertools' default provider would build its own client with botocore's 60 s timeouts.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_server)
    api_key_arn = secrets.put("close-api-key", "a-close-key")
    keys_arn = secrets.put("signature-keys", json.dumps({"whsub_1": "ab" * 32}))
    sent: list[str] = []
    aws_client("secretsmanager").meta.events.register(
        "before-send.secrets-manager", lambda request, **_: sent.append(request.url)
    )
    assert read_secret(api_key_arn, True) == "a-close-key"
    assert SecretSignatureKeys(keys_arn).subscription_ids() == ["whsub_1"]
    assert len(sent) == 2
