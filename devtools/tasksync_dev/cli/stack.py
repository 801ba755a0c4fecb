"""A resolved stack: its target, the settings for it, and clients for its resources.

Settings are the same `SyncSettings` the functions use (read from the environment), with the
stack's own resources (tables, queues, secrets, and for a local stack the simulators' URLs)
laid over them, so the CLI runs the engine's code against exactly what the stack runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError, NoRegionError, ProfileNotFound

from tasksync.config import SyncSettings
from tasksync.dal.api_keys import PLACEHOLDER_SECRET
from tasksync.dal.aws import CLIENT_CONFIG
from tasksync.dal.checkpoints import CheckpointStore
from tasksync.dal.close_api import CloseClient
from tasksync.dal.links import TaskLinkStore
from tasksync.dal.queue import EventQueue
from tasksync.dal.state_cache import StateCache
from tasksync.dal.subscriptions import SubscriptionDirectory
from tasksync_dev.cli.output import CommandFailed, UsageError
from tasksync_dev.cli.signature_secret import SignatureKeySecret
from tasksync_dev.cli.target import StackTarget
from tasksync_dev.local.state import state_path

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# A local stack runs on DynamoDB Local and moto, which accept any credentials; fixed dummy ones
# make sure an operator's real AWS credentials are never used (or signed with) against them.
LOCAL_ACCESS_KEY = "local"


@dataclass(frozen=True)
class TargetChoice:
    """What the command line says about the target (exactly one of the three is set)."""

    stack_name: str | None = None
    local: bool = False
    stack_file: Path | None = None
    region: str | None = None
    profile: str | None = None


def _session(choice: TargetChoice, region: str | None, *, local: bool) -> boto3.session.Session:
    try:
        if local:
            return boto3.session.Session(
                aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_ACCESS_KEY, region_name=region
            )
        return boto3.session.Session(profile_name=choice.profile, region_name=region)
    except ProfileNotFound:
        raise UsageError(f"no AWS profile named {choice.profile}") from None


def _stack_outputs(session: boto3.session.Session, stack_name: str) -> dict[str, str]:
    try:
        cloudformation = session.client("cloudformation", config=CLIENT_CONFIG)
    except NoRegionError:
        raise UsageError("no AWS region: pass --region or set AWS_REGION") from None
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            raise UsageError(f"no CloudFormation stack {stack_name} in {session.region_name}") from None
        raise
    if not stacks:
        raise UsageError(f"no CloudFormation stack {stack_name} in {session.region_name}")
    return {
        output["OutputKey"]: output["OutputValue"]
        for output in stacks[0].get("Outputs", [])
        if "OutputKey" in output and "OutputValue" in output
    }


def resolve_target(choice: TargetChoice, environ: Mapping[str, str]) -> tuple[StackTarget, boto3.session.Session]:
    chosen = [choice.stack_name is not None, choice.local, choice.stack_file is not None]
    if sum(chosen) != 1:
        raise UsageError("choose one target: --stack NAME (deployed), --local (make run) or --stack-file PATH")
    if choice.stack_name is not None:
        session = _session(choice, choice.region, local=False)
        target = StackTarget.from_outputs(
            choice.stack_name, session.region_name or "", _stack_outputs(session, choice.stack_name)
        )
        return target, session
    target = StackTarget.from_local_state(choice.stack_file or state_path(environ))
    region = choice.region or target.region
    return target, _session(choice, region, local=target.is_local)


def settings_for(target: StackTarget, environ: Mapping[str, str]) -> SyncSettings:
    """The environment's settings (a local stack's own environment first), then its resources."""
    base = SyncSettings.from_env({**environ, **target.environment})
    overrides: dict[str, Any] = {
        "state_table": target.state_table,
        "idempotency_table": target.idempotency_table,
        "queue_url": target.queue_url,
        "dlq_url": target.dlq_url,
    }
    optional = {
        "signature_keys_secret_arn": target.signature_keys_secret_arn,
        "close_api_key_secret_arn": target.close_api_key_secret_arn,
        "chartmogul_api_key_secret_arn": target.chartmogul_api_key_secret_arn,
        "close_api_url": target.close_api_url,
        "chartmogul_api_url": target.chartmogul_api_url,
    }
    overrides.update({name: value for name, value in optional.items() if value})
    return SyncSettings.model_validate({**base.model_dump(), **overrides})


class Stack:
    """One target's resources, with clients built on first use."""

    def __init__(self, target: StackTarget, settings: SyncSettings, session: boto3.session.Session) -> None:
        self.target = target
        self.settings = settings
        self.session = session
        self._close: CloseClient | None = None

    def _client(self, service: str) -> Any:
        try:
            return self.session.client(  # type: ignore[call-overload]
                service, endpoint_url=self.target.endpoints.get(service), config=CLIENT_CONFIG
            )
        except NoRegionError:
            raise UsageError("no AWS region: pass --region or set AWS_REGION") from None

    @cached_property
    def sqs(self) -> SQSClient:
        client: SQSClient = self._client("sqs")
        return client

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb")
        return client

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        client: SecretsManagerClient = self._client("secretsmanager")
        return client

    @cached_property
    def links(self) -> TaskLinkStore:
        return TaskLinkStore(self.dynamodb, self.settings.state_table)

    @cached_property
    def cache(self) -> StateCache:
        return StateCache(self.dynamodb, self.settings.state_table)

    @cached_property
    def checkpoints(self) -> CheckpointStore:
        return CheckpointStore(self.dynamodb, self.settings.state_table)

    @property
    def queue_url(self) -> str:
        return self.target.queue_url

    @property
    def dlq_url(self) -> str:
        return self.target.dlq_url

    def event_queue(self) -> EventQueue:
        return EventQueue(self.sqs, self.queue_url)

    @property
    def signature_keys(self) -> SignatureKeySecret:
        if not self.settings.signature_keys_secret_arn:
            raise UsageError(f"stack {self.target.name} has no signature-keys secret (SignatureKeysSecretArn)")
        return SignatureKeySecret(
            self.secretsmanager,
            self.settings.signature_keys_secret_arn,
            SubscriptionDirectory(self.dynamodb, self.settings.state_table),
        )

    def signature_keys_if_any(self) -> SignatureKeySecret | None:
        return self.signature_keys if self.settings.signature_keys_secret_arn else None

    @property
    def close(self) -> CloseClient:
        if self._close is None:
            self._close = CloseClient.from_settings(self.settings, self._close_api_key())
        return self._close

    def _close_api_key(self) -> str:
        """The simulator's key of a local stack, else CLOSE_API_KEY, else the stack's secret."""
        if self.target.close_api_key:
            return self.target.close_api_key
        if self.settings.close_api_key is not None:
            return self.settings.close_api_key.get_secret_value()
        arn = self.settings.close_api_key_secret_arn
        if not arn:
            raise UsageError("no Close API key: set CLOSE_API_KEY (the stack names no Close key secret)")
        value = self.secretsmanager.get_secret_value(SecretId=arn).get("SecretString", "").strip()
        if not value or value == PLACEHOLDER_SECRET:
            raise CommandFailed(f"the secret {arn} holds no Close API key yet: put it there, or set CLOSE_API_KEY")
        return value

    def shutdown(self) -> None:
        if self._close is not None:
            self._close.close()


def open_stack(choice: TargetChoice, environ: Mapping[str, str]) -> Stack:
    target, session = resolve_target(choice, environ)
    return Stack(target, settings_for(target, environ), session)
