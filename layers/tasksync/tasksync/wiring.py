"""Assemble each function from its settings: one place that knows which concrete class plays which port.

Each handler calls one builder here at its first invocation: `receiver`, `worker` or
`reconciler`. A builder reads that function's settings model from the environment (validated
there and then: a missing or bad variable raises InvalidInput naming it) and builds only the
clients that function uses. Only boto3, which all three use, is imported at the top; the
builders import their object graphs inside: every handler imports this module, and none should
pay for another function's imports (the receiver never loads the engine, the reconciler never
loads the ChartMogul client).

API keys come from the environment when set (local runs), otherwise from Secrets Manager by ARN
(Lambda): their values never travel through template parameters or environment variables in AWS.
"""

# ruff: noqa: PLC0415 - imports inside the builders are the point of this module (see above)

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from tasksync.dal.aws import aws_client
from tasksync.errors import InvalidInput

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from tasksync.catch_up import Budget
    from tasksync.config import (
        ApiSettings,
        EngineSettings,
        ReconcilerSettings,
    )
    from tasksync.dal.api_keys import ApiKey
    from tasksync.dal.chartmogul_api import ChartMogulClient
    from tasksync.dal.checkpoints import RunLock
    from tasksync.dal.close_api import CloseClient
    from tasksync.dal.links import TaskLinkStore
    from tasksync.dal.pacing import Pacer
    from tasksync.dal.state_cache import StateCache
    from tasksync.logic.ports import ChartMogulApi, CloseApi, EngineCache, LinkStore, SignatureKeys
    from tasksync.logic.sync import TaskSync
    from tasksync.logic.syncback import SyncBack
    from tasksync.receiver import Receiver
    from tasksync.reconciler import Reconciler
    from tasksync.worker import OutcomeSink, Worker


@dataclass(frozen=True)
class ApiKeys:
    close: str
    chartmogul: str


def _keyed(client: CloseClient | ChartMogulClient, key: ApiKey) -> None:
    """Let a client read its key's secret again after a 401 (a rotated key; see dal.api_keys)."""
    client.key_refresh = key.refresh


@dataclass
class SyncServices:
    """The engine and the clients it runs on (the worker's, the local runner's and the tests')."""

    settings: EngineSettings
    close: CloseClient
    chartmogul: ChartMogulClient
    links: TaskLinkStore
    cache: StateCache
    engine: TaskSync


def build_services(
    settings: EngineSettings,
    *,
    dynamodb: DynamoDBClient,
    keys: ApiKeys,
    clock: Callable[[], float] = time.time,
    pacer: Pacer | None = None,
) -> SyncServices:
    from tasksync.dal.chartmogul_api import ChartMogulClient
    from tasksync.dal.close_api import CloseClient
    from tasksync.dal.links import TaskLinkStore
    from tasksync.dal.state_cache import StateCache

    close = CloseClient.from_settings(settings, keys.close)
    chartmogul = ChartMogulClient.from_settings(settings, keys.chartmogul, pacer or shared_pacer(settings, dynamodb))
    links = TaskLinkStore(dynamodb, settings.state_table)
    cache = StateCache(dynamodb, settings.state_table, clock=clock)
    engine = assemble_engine(settings, close=close, chartmogul=chartmogul, links=links, cache=cache, clock=clock)
    return SyncServices(settings, close, chartmogul, links, cache, engine)


def assemble_engine(
    settings: EngineSettings,
    *,
    close: CloseApi,
    chartmogul: ChartMogulApi,
    links: LinkStore,
    cache: EngineCache,
    clock: Callable[[], float] = time.time,
) -> TaskSync:
    """The engine on any implementation of its ports: the concrete clients here, in-memory fakes
    in the fast test tier."""
    from tasksync.logic.assignees import AssigneeResolver
    from tasksync.logic.customers import CustomerResolver
    from tasksync.logic.sync import TaskSync

    return TaskSync(
        settings=settings,
        close=close,
        chartmogul=chartmogul,
        links=links,
        customers=CustomerResolver(settings, close, chartmogul, cache),
        assignees=AssigneeResolver(settings, close, cache, refusals=cache),
        clock=clock,
    )


def receiver(environ: Mapping[str, str]) -> Receiver:
    """The receiver function: signature keys and the event queue, nothing else (and no pydantic:
    its settings are read by hand, see tasksync.receiver_settings).

    The keys are CLOSE_WEBHOOK_SIGNATURE_KEY when set (local runs), else the per-subscription
    keys in the SIGNATURE_KEYS_SECRET_ARN secret."""
    from tasksync.dal.event_message import WebhookQueue
    from tasksync.dal.signature_keys import SecretSignatureKeys, SingleSignatureKey
    from tasksync.receiver import Receiver
    from tasksync.receiver_settings import ReceiverSettings

    # Close waits for our answer and the function times out after 5 s: fail fast and answer 503
    # (Close retries) rather than let the invocation time out.
    config = Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "max_attempts": 2})
    settings = ReceiverSettings.from_env(environ)
    keys: SignatureKeys
    if settings.close_webhook_signature_key is not None:
        keys = SingleSignatureKey(settings.close_webhook_signature_key)
    elif settings.signature_keys_secret_arn:
        keys = SecretSignatureKeys(
            settings.signature_keys_secret_arn, secrets_client=boto3.client("secretsmanager", config=config)
        )
    else:
        raise InvalidInput("SIGNATURE_KEYS_SECRET_ARN", "is not set (nor CLOSE_WEBHOOK_SIGNATURE_KEY)")
    return Receiver(
        keys=keys,
        queue=WebhookQueue(boto3.client("sqs", config=config), settings.queue_url),
        tolerance_seconds=settings.signature_tolerance_seconds,
    )


def worker(environ: Mapping[str, str], *, sink: OutcomeSink) -> Worker:
    """The worker function: the engine (Close, ChartMogul, the state table) and its queues."""
    from tasksync.config import WorkerSettings
    from tasksync.dal.api_keys import chartmogul_api_key, close_api_key, read_secret
    from tasksync.worker import Worker

    settings = WorkerSettings.from_env(environ)
    dynamodb = aws_client("dynamodb")
    close_key, chartmogul_key = close_api_key(settings, read_secret), chartmogul_api_key(settings, read_secret)
    keys = ApiKeys(close=close_key.value(), chartmogul=chartmogul_key.value())
    pacer = shared_pacer(settings, dynamodb)
    services = build_services(settings, dynamodb=dynamodb, keys=keys, pacer=pacer)
    _keyed(services.close, close_key)
    _keyed(services.chartmogul, chartmogul_key)
    return Worker(
        settings=settings,
        engine=services.engine,
        sqs=aws_client("sqs"),
        dynamodb=dynamodb,
        sink=sink,
        batch_starts=pacer.resume,
    )


@dataclass(frozen=True)
class ScheduledReconciler:
    """The reconciler and the lease that keeps its scheduled passes one at a time."""

    reconciler: Reconciler
    lock: RunLock

    def budget(self, remaining_millis: int) -> Budget:
        """How long this pass may run: the invocation's time left, less a margin (and at most
        RECONCILE_BUDGET_SECONDS)."""
        from tasksync.catch_up import Budget

        return Budget.for_lambda(remaining_millis, cap=self.reconciler.settings.reconcile_budget_seconds)


def shared_pacer(settings: ApiSettings, dynamodb: DynamoDBClient) -> Pacer:
    """One ChartMogul budget for the account: every worker and the reconciler share the schedule."""
    from tasksync.dal.pacing import SharedPacer
    from tasksync.dal.schedule import DynamoDBSchedule

    return SharedPacer(DynamoDBSchedule(dynamodb, settings.state_table), settings.chartmogul_requests_per_second)


def _sync_back(
    settings: ReconcilerSettings, close: CloseClient, links: TaskLinkStore, dynamodb: DynamoDBClient
) -> SyncBack:
    """The reconciler's sync-back phase, the only part of it that calls ChartMogul."""
    from tasksync.dal.api_keys import chartmogul_api_key, read_secret
    from tasksync.dal.chartmogul_api import ChartMogulClient
    from tasksync.dal.syncback_ledger import SyncBackLedger
    from tasksync.logic.syncback import SyncBack

    # Only here does the reconciler read the ChartMogul key (and hold a grant on its secret).
    key = chartmogul_api_key(settings, read_secret)
    chartmogul = ChartMogulClient.from_settings(settings, key.value(), shared_pacer(settings, dynamodb))
    _keyed(chartmogul, key)
    return SyncBack(
        close=close,
        chartmogul=chartmogul,
        links=links,
        ledger=SyncBackLedger(dynamodb, settings.state_table),
        every_passes=settings.sync_back_every_passes,
    )


def reconciler(environ: Mapping[str, str]) -> ScheduledReconciler:
    """The reconciler function: Close, the state table, the queue, (optionally) the
    subscriptions' keys, and ChartMogul only when the sync-back is on."""
    from tasksync.config import ReconcilerSettings
    from tasksync.dal.api_keys import close_api_key, read_secret
    from tasksync.dal.checkpoints import CheckpointStore, RunLock
    from tasksync.dal.close_api import CloseClient
    from tasksync.dal.dead_letters import DeadLetterQueue
    from tasksync.dal.links import TaskLinkStore
    from tasksync.dal.queue import EventQueue
    from tasksync.dal.subscriptions import SubscriptionDirectory
    from tasksync.reconciler import Reconciler

    settings = ReconcilerSettings.from_env(environ)
    if not settings.queue_url:
        raise InvalidInput("QUEUE_URL", "is not set")
    dynamodb = aws_client("dynamodb")
    close_key = close_api_key(settings, read_secret)
    close = CloseClient.from_settings(settings, close_key.value())
    _keyed(close, close_key)
    links = TaskLinkStore(dynamodb, settings.state_table)
    # The subscription ids alone, never the signature-keys secret: the reconciler has no grant on it.
    subscriptions = SubscriptionDirectory(dynamodb, settings.state_table)
    return ScheduledReconciler(
        reconciler=Reconciler(
            settings=settings,
            close=close,
            links=links,
            checkpoints=CheckpointStore(dynamodb, settings.state_table),
            queue=EventQueue(aws_client("sqs"), settings.queue_url),
            poison=DeadLetterQueue(aws_client("sqs"), settings.dlq_url) if settings.dlq_url else None,
            subscriptions=subscriptions,
            sync_back=_sync_back(settings, close, links, dynamodb) if settings.sync_completion_back else None,
        ),
        lock=RunLock(dynamodb, settings.state_table, "reconcile"),
    )
