"""The local stack's AWS side: the servers that stand in for AWS, and the template's resources in them.

SQS and Secrets Manager run on a moto server; DynamoDB on DynamoDB Local when java and
.tools/dynamodb are there, otherwise on the same moto server. Both are child processes, so their
work does not hold the runner's GIL. Queues, secrets and tables come from template.yaml's own
definitions (tasksync_dev.local.template, tasksync_dev.local.tables).

Apart from the stack so that the stack reads as its start-up order; everything about which server
holds which resource, and under which endpoint, is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from tasksync_dev.local.dynamodb import DynamoDBLocal
from tasksync_dev.local.moto_server import MotoServer
from tasksync_dev.local.options import FAKE_AWS_CREDENTIALS, LocalOptions
from tasksync_dev.local.persistence import Persistence
from tasksync_dev.local.tables import TableMismatch, create_tables, delete_tables
from tasksync_dev.local.template import create_queues, create_secrets

if TYPE_CHECKING:
    import logging
    import subprocess

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# The template's logical ids the runner wires by name.
STATE_TABLE, IDEMPOTENCY_TABLE = "StateTable", "IdempotencyTable"
EVENT_QUEUE, EVENT_DLQ = "EventQueue", "EventDLQ"
SIGNATURE_KEYS_SECRET = "SignatureKeysSecret"  # noqa: S105 - a logical id, not a secret

_AWS_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 3})


class LocalStackError(RuntimeError):
    """The local stack cannot start (port taken, another stack running, template missing...).

    Defined here, the first part of the start-up that can refuse; callers import it from the stack.
    """


def _require(*wanted: tuple[str, Mapping[str, str]]) -> None:
    missing = [name for name, found in wanted if name not in found]
    if missing:
        raise LocalStackError(f"template.yaml has no {', '.join(missing)}: the local runner wires them by name")


class AwsResources:
    """moto and DynamoDB Local for one stack, and the names, URLs and ARNs of what was created in them."""

    def __init__(self, options: LocalOptions, *, repo_root: Path, prefix: str, log: logging.Logger) -> None:
        self.options = options
        self.repo_root = repo_root
        self.prefix = prefix
        self.log = log
        self.dynamodb_engine = ""
        self.endpoints: dict[str, str] = {}
        self.tables: dict[str, str] = {}
        self.queues: dict[str, str] = {}
        self.secret_arns: dict[str, str] = {}
        self.sqs: SQSClient | None = None
        self._moto: MotoServer | None = None
        self._dynamodb_local: DynamoDBLocal | None = None

    @property
    def dynamodb_process(self) -> subprocess.Popen[bytes] | None:
        """The DynamoDB Local child process (None on moto)."""
        return self._dynamodb_local.process if self._dynamodb_local is not None else None

    def launch(self, persistence: Persistence) -> Persistence:
        """Start the servers; the persistence that holds, which keeps no table when DynamoDB fell back to moto."""
        # DynamoDB Local's JVM and moto's interpreter boot side by side.
        self._moto = MotoServer(
            self.options.local_dir / "moto-server.log", pid_path=persistence.pid_dir / "moto-server.pid"
        )
        self._moto.launch()
        if self.options.dynamodb == "moto":
            return persistence
        local = DynamoDBLocal(
            self.repo_root / ".tools" / "dynamodb",
            self.options.local_dir / "dynamodb-local.log",
            data_dir=persistence.data_dir if persistence.keeps_tables else None,
            pid_path=persistence.pid_dir / "dynamodb-local.pid",
        )
        if local.installed():
            local.launch()
            self._dynamodb_local = local
            return persistence
        if self.options.dynamodb == "dynamodb-local":
            raise LocalStackError(f"DynamoDB Local needs java and {local.jar} (run `make setup`)")
        self.log.warning("java or %s is missing: DynamoDB runs on moto, and a restart forgets it", local.jar)
        return Persistence(self.options.local_dir, keeps_tables=False, sandbox=persistence.sandbox)

    def connect(self) -> tuple[SQSClient, SecretsManagerClient]:
        """Wait for moto; clients of its SQS and Secrets Manager (DynamoDB is on moto until `create_tables`)."""
        if self._moto is None:
            raise LocalStackError("the local stack's servers were not launched")
        moto_url = self._moto.wait_until_ready()
        self.endpoints = {"dynamodb": moto_url, "sqs": moto_url, "secretsmanager": moto_url}
        self.dynamodb_engine = "moto"
        sqs: SQSClient = self.client("sqs", moto_url)
        secrets_manager: SecretsManagerClient = self.client("secretsmanager", moto_url)
        self.sqs = sqs
        return sqs, secrets_manager

    def client(self, service: str, endpoint: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=endpoint,
            region_name=self.options.region,
            aws_access_key_id=FAKE_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_AWS_CREDENTIALS["AWS_SESSION_TOKEN"],
            config=_AWS_CLIENT_CONFIG,
        )

    def create_queues_and_secrets(
        self, template: dict[str, Any], sqs: SQSClient, secrets_manager: SecretsManagerClient
    ) -> None:
        self.queues = create_queues(sqs, self.prefix, template)
        self.secret_arns = create_secrets(secrets_manager, self.prefix, {}, template)
        _require((EVENT_QUEUE, self.queues), (EVENT_DLQ, self.queues), (SIGNATURE_KEYS_SECRET, self.secret_arns))
        # Lambda's 180 s (6 x the worker timeout) would hold a skipped FIFO group for minutes;
        # locally a batch takes milliseconds.
        sqs.set_queue_attributes(
            QueueUrl=self.queues[EVENT_QUEUE],
            Attributes={"VisibilityTimeout": str(self.options.visibility_timeout_seconds)},
        )

    def create_tables(self, template: dict[str, Any], *, keep_existing: bool, empty_first: bool) -> None:
        """The template's tables; kept ones are reused unless ``empty_first`` deletes them before."""
        if self._dynamodb_local is not None:
            self.endpoints["dynamodb"] = self._dynamodb_local.wait_until_ready()
            self.dynamodb_engine = "dynamodb-local"
        dynamodb: DynamoDBClient = self.client("dynamodb", self.endpoints["dynamodb"])
        if empty_first:
            delete_tables(dynamodb, self.prefix, template)
        try:
            self.tables = create_tables(dynamodb, self.prefix, template, keep_existing=keep_existing)
        except TableMismatch as exc:
            raise LocalStackError(str(exc)) from None
        _require((STATE_TABLE, self.tables), (IDEMPOTENCY_TABLE, self.tables))

    def event_queue_backlog(self) -> list[str]:
        """The event queue's non-zero counts ("ApproximateNumberOfMessages=3", ...): empty when it is drained."""
        if self.sqs is None:
            raise LocalStackError("the local stack is not running")
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queues[EVENT_QUEUE],
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return [f"{name}={value}" for name, value in attributes.items() if value != "0"]

    def wiring(self) -> dict[str, str]:
        """Where the app finds these resources: fake credentials, endpoints, names, URLs and ARNs."""
        return {
            **FAKE_AWS_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoints["sqs"],
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoints["dynamodb"],
            "AWS_ENDPOINT_URL_SQS": self.endpoints["sqs"],
            # boto3 derives the variable from the service id "Secrets Manager".
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.endpoints["secretsmanager"],
            "STATE_TABLE": self.tables[STATE_TABLE],
            "IDEMPOTENCY_TABLE": self.tables[IDEMPOTENCY_TABLE],
            "QUEUE_URL": self.queues[EVENT_QUEUE],
            "DLQ_URL": self.queues[EVENT_DLQ],
            "SIGNATURE_KEYS_SECRET_ARN": self.secret_arns[SIGNATURE_KEYS_SECRET],
        }

    def stop(self) -> None:
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._dynamodb_local is not None:
            self._dynamodb_local.stop()
