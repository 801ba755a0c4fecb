"""Assemble the engine from settings: one place that knows which concrete class plays which port.

Handlers, the local runner, the CLI and the tests all build their objects here, so they run
the same code paths. API keys come from the environment when set (local runs), otherwise from
Secrets Manager by ARN (Lambda): their values never travel through template parameters or
environment variables in AWS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasksync.config import SyncSettings
from tasksync.dal.aws import aws_client
from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync.dal.close_api import CloseClient
from tasksync.dal.links import TaskLinkStore
from tasksync.dal.pacing import RequestPacer
from tasksync.dal.state_cache import StateCache
from tasksync.errors import InvalidInput
from tasksync.logic.assignees import AssigneeResolver
from tasksync.logic.customers import CustomerResolver
from tasksync.logic.sync import TaskSync

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SecretReader = Callable[[str], str]
# What template.yaml puts in the API-key secrets until the operator stores the real key.
PLACEHOLDER_SECRET = "REPLACE_ME"  # noqa: S105 - a placeholder, not a credential


@dataclass(frozen=True)
class ApiKeys:
    close: str
    chartmogul: str


def api_keys(settings: SyncSettings, read_secret: SecretReader | None = None) -> ApiKeys:
    """The two API keys: from the environment when set, else from their secrets."""

    def one(value: Any, arn: str | None, name: str) -> str:
        if value is not None:
            return str(value.get_secret_value())
        if arn and read_secret is not None:
            secret = read_secret(arn).strip()
            if secret and secret != PLACEHOLDER_SECRET:
                return secret
            raise InvalidInput(name, f"the secret {arn} holds no API key yet (put it with `aws secretsmanager`)")
        raise InvalidInput(name, "is not set (and no secret ARN is configured)")

    return ApiKeys(
        close=one(settings.close_api_key, settings.close_api_key_secret_arn, "CLOSE_API_KEY"),
        chartmogul=one(settings.chartmogul_api_key, settings.chartmogul_api_key_secret_arn, "CHARTMOGUL_API_KEY"),
    )


def read_secret(arn: str) -> str:
    """A secret's value through Powertools Parameters (cached for 5 minutes per process)."""
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415 - only Lambda reads secrets

    return str(parameters.get_secret(arn, max_age=300))


@dataclass
class SyncServices:
    """Everything the worker and reconciler use, built once per process (cold start)."""

    settings: SyncSettings
    close: CloseClient
    chartmogul: ChartMogulClient
    links: TaskLinkStore
    cache: StateCache
    engine: TaskSync


def build_services(
    settings: SyncSettings,
    *,
    dynamodb: DynamoDBClient,
    keys: ApiKeys,
    clock: Callable[[], float] = time.time,
    pacer: RequestPacer | None = None,
) -> SyncServices:
    close = CloseClient.from_settings(settings, keys.close)
    chartmogul = ChartMogulClient.from_settings(settings, keys.chartmogul)
    if pacer is not None:
        chartmogul.pacer = pacer
    links = TaskLinkStore(dynamodb, settings.state_table)
    cache = StateCache(dynamodb, settings.state_table, clock=clock)
    engine = TaskSync(
        settings=settings,
        close=close,
        chartmogul=chartmogul,
        links=links,
        customers=CustomerResolver(settings, close, chartmogul, cache),
        assignees=AssigneeResolver(settings, close, cache, refusals=cache),
        clock=clock,
    )
    return SyncServices(settings, close, chartmogul, links, cache, engine)


def services_from_environment(environ: Mapping[str, str]) -> SyncServices:
    """Build everything from the process environment (Lambda cold start, local runner, CLI)."""
    settings = SyncSettings.from_env(environ)
    return build_services(settings, dynamodb=aws_client("dynamodb"), keys=api_keys(settings, read_secret))
