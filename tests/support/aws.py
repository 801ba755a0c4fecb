"""moto in server mode for SQS and Secrets Manager, plus fake AWS credentials for the session.

Everything goes over HTTP to a moto server on 127.0.0.1: nothing patches boto3 in-process,
so the code under test uses its ordinary clients, pointed at the server by endpoint URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from tasksync_dev.local.moto_server import MotoServer
from tests.support.child_servers import serving
from tests.support.template import create_queues, create_secrets

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"

# Set for the whole session (every xdist worker too) before any test builds a client, so that
# a client created without explicit credentials can never sign a request for a real account.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    # Never read a developer's ~/.aws profiles.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def pytest_configure(config: pytest.Config) -> None:
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_DEFAULT_PROFILE", None)
    os.environ.update(FAKE_AWS_ENVIRONMENT)


@dataclass(frozen=True)
class Queues:
    """Fresh queues from template.yaml for one test, keyed by the template's logical ids."""

    client: SQSClient
    urls: dict[str, str]

    @property
    def events_url(self) -> str:
        return self.urls["EventQueue"]

    @property
    def dlq_url(self) -> str:
        return self.urls["EventDLQ"]


@dataclass
class Secrets:
    """Creates secrets in the moto server for one test, and deletes them afterwards."""

    client: SecretsManagerClient
    prefix: str
    arns: list[str] = field(default_factory=list)

    def from_template(self, values: dict[str, str], template: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Every secret template.yaml declares (values by logical id); return logical id -> ARN."""
        created = create_secrets(self.client, self.prefix, values, template)
        self.arns.extend(created.values())
        return created

    def put(self, name: str, value: str) -> str:
        """One ad-hoc secret named f"{prefix}/{name}"; return its ARN."""
        arn = self.client.create_secret(Name=f"{self.prefix}/{name}", SecretString=value)["ARN"]
        self.arns.append(arn)
        return arn


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of a moto server on 127.0.0.1, in a process of its own (as in `make run`)."""
    yield from serving(MotoServer(tmp_path_factory.mktemp("moto-server") / "moto-server.log"))


@pytest.fixture(scope="session")
def sqs_client(moto_server: str) -> SQSClient:
    return boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)


@pytest.fixture(scope="session")
def secrets_client(moto_server: str) -> SecretsManagerClient:
    return boto3.client("secretsmanager", endpoint_url=moto_server, region_name=REGION)


@pytest.fixture
def queues(sqs_client: SQSClient) -> Iterator[Queues]:
    """Every queue of template.yaml, freshly created under a prefix unique to this test."""
    urls = create_queues(sqs_client, f"t{uuid.uuid4().hex[:12]}")
    yield Queues(client=sqs_client, urls=urls)
    for url in urls.values():
        sqs_client.delete_queue(QueueUrl=url)


@pytest.fixture
def secrets(secrets_client: SecretsManagerClient) -> Iterator[Secrets]:
    helper = Secrets(client=secrets_client, prefix=f"t{uuid.uuid4().hex[:12]}")
    yield helper
    for arn in helper.arns:
        secrets_client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
