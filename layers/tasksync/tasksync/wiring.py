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
from typing import TYPE_CHECKING

from tasksync.config import SyncSettings
from tasksync.dal.api_keys import chartmogul_api_key, close_api_key, read_secret
from tasksync.dal.aws import aws_client
from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync.dal.close_api import CloseClient
from tasksync.dal.links import TaskLinkStore
from tasksync.dal.pacing import RequestPacer
from tasksync.dal.state_cache import StateCache
from tasksync.logic.assignees import AssigneeResolver
from tasksync.logic.customers import CustomerResolver
from tasksync.logic.sync import TaskSync

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True)
class ApiKeys:
    close: str
    chartmogul: str


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
    close_key, chartmogul_key = close_api_key(settings, read_secret), chartmogul_api_key(settings, read_secret)
    keys = ApiKeys(close=close_key.value(), chartmogul=chartmogul_key.value())
    services = build_services(settings, dynamodb=aws_client("dynamodb"), keys=keys)
    services.close.key_refresh = close_key.refresh
    services.chartmogul.key_refresh = chartmogul_key.refresh
    return services


@dataclass
class ReconcilerServices:
    """What the reconciler uses: Close and the link store, and ChartMogul only for the sync-back.

    Without SYNC_COMPLETION_BACK it never reads the ChartMogul key (nor holds a grant on it).
    """

    settings: SyncSettings
    close: CloseClient
    links: TaskLinkStore
    chartmogul: ChartMogulClient | None


def reconciler_services_from_environment(environ: Mapping[str, str]) -> ReconcilerServices:
    settings = SyncSettings.from_env(environ)
    key = close_api_key(settings, read_secret)
    close = CloseClient.from_settings(settings, key.value())
    close.key_refresh = key.refresh
    chartmogul = None
    if settings.sync_completion_back:
        chartmogul_key = chartmogul_api_key(settings, read_secret)
        chartmogul = ChartMogulClient.from_settings(settings, chartmogul_key.value())
        chartmogul.key_refresh = chartmogul_key.refresh
    links = TaskLinkStore(aws_client("dynamodb"), settings.state_table)
    return ReconcilerServices(settings, close, links, chartmogul)
