"""boto3 clients with explicit timeouts and retries, cached for the life of the process.

Lambda keeps a process warm between invocations, so a client (and its connection pool) built
once at first use serves every later invocation. Endpoints come from the argument, else from
boto3's own `AWS_ENDPOINT_URL_<SERVICE>` / `AWS_ENDPOINT_URL` handling (the local runner and
tests point clients at DynamoDB Local and moto that way).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# Short timeouts: a hung DynamoDB or SQS call must fail well inside the Lambda timeout so that
# the message goes back to the queue instead of the whole batch timing out. "standard" retry
# mode backs off with jitter and retries throttling and transient errors: 3 attempts in all
# (botocore's `max_attempts` key would count retries only, i.e. 4 attempts).
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 3},
)

_clients: dict[tuple[str, ...], Any] = {}
_clients_lock = threading.Lock()


def _environment_key() -> tuple[str, ...]:
    # The endpoint and region boto3 would pick from the environment are part of the cache key,
    # so that changing them (a test, the local runner) never hands out a client for the old ones.
    return tuple(
        sorted(
            f"{name}={value}"
            for name, value in os.environ.items()
            if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_REGION", "AWS_DEFAULT_REGION")
        )
    )


@overload
def aws_client(service: Literal["dynamodb"], endpoint_url: str | None = None) -> DynamoDBClient: ...
@overload
def aws_client(service: Literal["sqs"], endpoint_url: str | None = None) -> SQSClient: ...
@overload
def aws_client(service: Literal["secretsmanager"], endpoint_url: str | None = None) -> SecretsManagerClient: ...
def aws_client(service: str, endpoint_url: str | None = None) -> Any:
    """The process-wide client for ``service`` (and ``endpoint_url``, when given)."""
    key = (service, endpoint_url or "", *_environment_key())
    client = _clients.get(key)
    if client is None:
        # boto3's default session is not thread-safe while it builds clients.
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = boto3.client(service, endpoint_url=endpoint_url, config=CLIENT_CONFIG)  # type: ignore[call-overload]
                _clients[key] = client
    return client


def forget_clients() -> None:
    """Drop every cached client (the next call builds new ones)."""
    with _clients_lock:
        _clients.clear()


def refused(exc: ClientError) -> bool:
    """Whether DynamoDB refused a conditional write because its condition did not hold."""
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def condition_held(write: Callable[[], object]) -> bool:
    """Make one conditional DynamoDB write; False when its condition did not hold (any other
    error propagates). A refusal is an answer here, not a failure: someone else got there first."""
    try:
        write()
    except ClientError as exc:
        if refused(exc):
            return False
        raise
    return True
