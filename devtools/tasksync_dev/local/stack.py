"""The whole app on this machine: `LocalStack().start()` ... `stop()`.

What runs, all on 127.0.0.1:
- AWS: DynamoDB Local when java and .tools/dynamodb are there, otherwise moto; SQS and Secrets
  Manager on a moto server. Both are child processes, so their work does not hold this
  process's GIL. Tables, queues and secrets come from template.yaml's own
  definitions. With the real APIs (and with `make run` in sandbox mode) the tables are kept in
  .local/ under fixed names across restarts; otherwise they live in memory under a prefix
  unique to the run (tasksync_dev.local.persistence says what is kept and why).
- The three Lambda handlers, loaded from their files: the receiver behind a local HTTP API
  (`POST /webhooks/close`), the worker fed by an SQS poller with Lambda's partial-batch rules,
  the reconciler on a fixed-rate schedule.
- Sandbox mode (no API keys): the Close and ChartMogul simulators, seeded with demo data (or
  resumed from what the last clean stop saved), and a Close webhook subscription whose
  signature key the receiver verifies with.

The handlers read os.environ as in Lambda, so a running stack owns the process environment:
only one LocalStack runs per process at a time, and stop() puts the environment back.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import boto3
from aws_lambda_powertools import Logger, Metrics
from botocore.config import Config

from tasksync.config import SyncSettings
from tasksync.dal.aws import forget_clients
from tasksync.reconciler import subscribed_pairs
from tasksync_dev.local.child_process import stop_orphans
from tasksync_dev.local.dynamodb import DynamoDBLocal
from tasksync_dev.local.http_api import WEBHOOK_ROUTE, HttpApi
from tasksync_dev.local.lambda_runtime import LocalFunction
from tasksync_dev.local.logs import (
    quiet_metrics,
    runner_logger,
    suppress_cold_start_metric,
    use_concise_format,
)
from tasksync_dev.local.moto_server import MotoServer
from tasksync_dev.local.options import (
    AWS_VARIABLES_TO_CLEAR,
    FAKE_AWS_CREDENTIALS,
    LocalOptions,
    app_environment,
    settings_variables,
)
from tasksync_dev.local.persistence import Persistence
from tasksync_dev.local.preflight import PreflightFailed, check_api_keys
from tasksync_dev.local.schedule import FixedRateSchedule
from tasksync_dev.local.sqs_source import Invoke as WorkerInvoke
from tasksync_dev.local.sqs_source import SqsEventSource
from tasksync_dev.local.state import STATE_FILE_NAME, STATE_VERSION, process_alive, remove_state, write_state
from tasksync_dev.local.template import (
    REPO_ROOT,
    TableMismatch,
    create_queues,
    create_secrets,
    create_tables,
    delete_tables,
    function_definitions,
    load_template,
)

if TYPE_CHECKING:
    import subprocess

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

    from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
    from tasksync_dev.sandbox.close import CloseSimulator

THREAD_PREFIX = "tasksync-local-"
# The template's logical ids the runner wires by name.
STATE_TABLE, IDEMPOTENCY_TABLE = "StateTable", "IdempotencyTable"
EVENT_QUEUE, EVENT_DLQ = "EventQueue", "EventDLQ"
SIGNATURE_KEYS_SECRET = "SignatureKeysSecret"  # noqa: S105 - a logical id, not a secret
RECEIVER, WORKER, RECONCILER = "ReceiverFunction", "WorkerFunction", "ReconcilerFunction"
# Powertools service names: one logger (and log column) per function.
SERVICE_NAMES = {RECEIVER: "receiver", WORKER: "worker", RECONCILER: "reconciler"}
# Demo assignees: the sandbox Close reps exist in the sandbox ChartMogul under the same emails;
# a task with no assignee goes to the success team's address.
SANDBOX_ASSIGNEE_MAP = '{"alice@sales.example": "alice@sales.example", "bob@sales.example": "bob@sales.example"}'
SANDBOX_DEFAULT_ASSIGNEE = "success@example.com"
STOP_TIMEOUT_SECONDS = 30.0
IDLE_POLL_SECONDS = 0.1

_AWS_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 3})


class LocalStackError(RuntimeError):
    """The local stack cannot start (port taken, another stack running, template missing...)."""


def _batch_failed_everything(exc: BaseException) -> bool:
    # Powertools raises this when every record of a batch failed; each failure is already
    # logged by the worker, so the runner adds one line rather than a traceback.
    return type(exc).__name__ == "BatchProcessingError"


class LocalStack:
    """Start, inspect and stop the local app. Not re-entrant: one running stack per process."""

    _active: ClassVar[LocalStack | None] = None
    _active_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        repo_root: Path = REPO_ROOT,
        fresh: bool = False,
        keep_sandbox: bool = False,
    ) -> None:
        self.user_environ: dict[str, str] = dict(os.environ if environ is None else environ)
        self.options = LocalOptions.from_env(self.user_environ)  # raises InvalidInput
        # The app's own settings, checked before anything starts (TASK_TYPES, ASSIGNEE_MAP, ...).
        SyncSettings.from_env(app_environment(self.user_environ, {}))
        self.repo_root = repo_root
        self.log = runner_logger()
        self.fresh = fresh
        # Real APIs: always kept (a lost link is a duplicate task). Sandbox: when asked (`make run`).
        sandbox = self.options.mode == "sandbox"
        self.persistence = Persistence(
            self.options.local_dir,
            keeps_tables=self.options.dynamodb != "moto" and (keep_sandbox or not sandbox),
            sandbox=sandbox,
        )
        self._sandbox_resumed = False
        self.prefix = self.persistence.table_prefix()
        self.state_path = self.options.local_dir / STATE_FILE_NAME
        self.started_at: datetime | None = None
        self.dynamodb_engine = ""
        self.endpoints: dict[str, str] = {}
        self.tables: dict[str, str] = {}
        self.queues: dict[str, str] = {}
        self.secret_arns: dict[str, str] = {}
        self.environment: dict[str, str] = {}
        self.close_simulator: CloseSimulator | None = None
        self.chartmogul_simulator: ChartMogulSimulator | None = None
        self.sandbox_ids: dict[str, str] = {}
        self.subscription_id: str | None = None
        self._signature_key: str | None = None
        self._moto: MotoServer | None = None
        self._dynamodb_local: DynamoDBLocal | None = None
        self._sqs: SQSClient | None = None
        self._http_api: HttpApi | None = None
        self._event_source: SqsEventSource | None = None
        self._schedule: FixedRateSchedule | None = None
        self._functions: dict[str, LocalFunction] = {}
        self._loggers: list[Logger] = []
        self._metrics: list[Metrics] = []
        self._saved_environ: dict[str, str | None] | None = None
        self._running = False

    # ------------------------------------------------------------------ coordinates
    @property
    def running(self) -> bool:
        return self._running

    @property
    def port(self) -> int:
        if self._http_api is None:
            raise LocalStackError("the local stack is not running")
        return self._http_api.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def receiver_url(self) -> str:
        return self.base_url + WEBHOOK_ROUTE[1]

    @property
    def event_queue_url(self) -> str:
        return self.queues[EVENT_QUEUE]

    @property
    def dead_letter_queue_url(self) -> str:
        return self.queues[EVENT_DLQ]

    @property
    def dynamodb_process(self) -> subprocess.Popen[bytes] | None:
        """The DynamoDB Local child process (None on moto)."""
        return self._dynamodb_local.process if self._dynamodb_local is not None else None

    @property
    def reconcile_runs(self) -> int:
        """Reconciler runs finished so far."""
        return self._schedule.runs if self._schedule is not None else 0

    @property
    def webhook_requests(self) -> int:
        """HTTP requests the receiver's API has answered so far."""
        return self._http_api.requests_served if self._http_api is not None else 0

    def state(self) -> dict[str, Any]:
        """What `.local/stack.json` holds (see tasksync_dev.local.state for the layout)."""
        sandbox = self.options.mode == "sandbox"
        settings = SyncSettings.from_env(self.environment)
        shared = {
            name: value
            for name, value in self.environment.items()
            if sandbox or name not in ("CLOSE_API_KEY", "CHARTMOGUL_API_KEY", "CLOSE_WEBHOOK_SIGNATURE_KEY")
        }
        return {
            "version": STATE_VERSION,
            "pid": os.getpid(),
            "mode": self.options.mode,
            "started_at": (self.started_at or datetime.now(UTC)).isoformat(),
            "region": self.options.region,
            "port": self.port,
            "receiver_url": self.receiver_url,
            "dynamodb_engine": self.dynamodb_engine,
            "kept_tables": self.persistence.keeps_tables,
            "endpoints": dict(self.endpoints),
            "tables": dict(self.tables),
            "queues": dict(self.queues),
            "secrets": dict(self.secret_arns),
            "close": {
                "api_url": settings.close_api_url,
                "api_key": self.close_simulator.api_key if self.close_simulator else None,
                "simulator_url": self.close_simulator.url if self.close_simulator else None,
            },
            "chartmogul": {
                "api_url": settings.chartmogul_api_url,
                "api_key": self.chartmogul_simulator.api_key if self.chartmogul_simulator else None,
                "simulator_url": self.chartmogul_simulator.url if self.chartmogul_simulator else None,
            },
            "webhook": {
                "subscription_id": self.subscription_id,
                "signature_key": self._signature_key if sandbox else None,
            },
            "sandbox": dict(self.sandbox_ids),
            "environment": shared,
        }

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalStack:
        if self.started_at is not None:
            raise LocalStackError("a LocalStack starts once; make a new one to start again")
        with LocalStack._active_lock:
            if LocalStack._active is not None:
                raise LocalStackError("another LocalStack is running in this process; stop it first")
            LocalStack._active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._refuse_if_another_stack_runs()
        if self.options.mode == "real":
            try:
                check_api_keys(SyncSettings.from_env(app_environment(self.user_environ, {})))
            except PreflightFailed as exc:
                raise LocalStackError(str(exc)) from None
        for orphan in stop_orphans(self.persistence.pid_dir):
            self.log.warning("stopped %s, left running by a local stack that was killed", orphan)
        if self.fresh:
            self.persistence.forget_sandbox()
        self.started_at = datetime.now(UTC)
        template = self._template()
        # DynamoDB Local's JVM and moto's interpreter boot side by side.
        self._moto = MotoServer(
            self.options.local_dir / "moto-server.log", pid_path=self.persistence.pid_dir / "moto-server.pid"
        )
        self._moto.launch()
        self._launch_dynamodb_local()
        sqs, secrets_manager = self._start_moto(self._moto)
        self._create_queues_and_secrets(template, sqs, secrets_manager)
        self._http_api = self._bind_http_api()
        if self.options.mode == "sandbox":
            self._start_sandbox()
            self._store_sandbox_signature_key(secrets_manager)
        self._create_tables(template)
        self.environment = self._app_environment()
        SyncSettings.from_env(self.environment)  # a bad setting fails here, before anything runs
        self._apply_environment()
        self._load_functions(template)
        self._http_api.start(THREAD_PREFIX + "receiver")
        self._event_source = SqsEventSource(
            sqs=sqs,
            queue_url=self.event_queue_url,
            invoke=self._functions[WORKER].invoke,
            region=self.options.region,
            on_batch_error=self._worker_failed,
            on_poll_error=lambda exc: self.log.warning("polling the event queue failed: %s", exc),
        )
        self._event_source.start(THREAD_PREFIX + "worker")
        self._schedule = FixedRateSchedule(
            invoke=self._functions[RECONCILER].invoke,
            interval_seconds=self.options.reconcile_interval_seconds,
            on_error=lambda exc: self.log.error("reconcile run failed", exc_info=exc),
        )
        self._schedule.start(THREAD_PREFIX + "reconciler")
        self._running = True
        write_state(self.state_path, self.state())

    def stop(self) -> None:
        """Stop everything that was started, newest first. Safe to call more than once."""
        if self._http_api is not None:
            self._http_api.stop()
        for name, component in (("reconciler", self._schedule), ("worker", self._event_source)):
            if component is not None and not component.stop(STOP_TIMEOUT_SECONDS):
                self.log.warning("the %s did not finish within %.0fs; leaving it behind", name, STOP_TIMEOUT_SECONDS)
        self._schedule = None
        self._event_source = None
        self._save_sandbox()
        for simulator in (self.chartmogul_simulator, self.close_simulator):
            if simulator is not None:
                simulator.stop()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._dynamodb_local is not None:
            self._dynamodb_local.stop()
        if self._running:
            remove_state(self.state_path, owner_pid=os.getpid())
        self._running = False
        for function in self._functions.values():
            function.unload()
        self._functions = {}
        self._restore_environment()
        forget_clients()
        with LocalStack._active_lock:
            if LocalStack._active is self:
                LocalStack._active = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wrap_worker(self, wrapper: Callable[[WorkerInvoke], WorkerInvoke]) -> None:
        """Put ``wrapper`` around every later worker invocation (fault injection in tests)."""
        if self._event_source is None:
            raise LocalStackError("the local stack is not running")
        self._event_source.wrap_invoke(wrapper)

    def wait_until_idle(self, timeout: float = 30.0) -> None:
        """Return once nothing is queued, in flight or running; raise TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            busy = self._busy_parts()
            if not busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the local stack was still busy after {timeout:.0f}s: {', '.join(busy)}")
            time.sleep(IDLE_POLL_SECONDS)  # polling a real condition (queue depth), with a deadline

    def _busy_parts(self) -> list[str]:
        if not self._running or self._sqs is None:
            raise LocalStackError("the local stack is not running")
        busy = self._busy_components()
        if busy:
            return busy
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.event_queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        busy = [f"{name}={value}" for name, value in attributes.items() if value != "0"]
        # Looked at again: a batch may have been received between the two looks.
        return busy or self._busy_components()

    def _busy_components(self) -> list[str]:
        parts = [("receiver", self._http_api), ("worker", self._event_source), ("reconciler", self._schedule)]
        return [name for name, part in parts if part is not None and part.busy]

    # ------------------------------------------------------------------ start-up steps
    def _refuse_if_another_stack_runs(self) -> None:
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            pid = int(json.loads(text).get("pid", 0))
        except (ValueError, TypeError, AttributeError):
            return
        if pid and pid != os.getpid() and process_alive(pid):
            raise LocalStackError(
                f"another local stack (pid {pid}) is running with {self.state_path}; "
                "stop it first, or set TASKSYNC_LOCAL_DIR to run a second one"
            )

    def _template(self) -> dict[str, Any]:
        path = self.repo_root / "template.yaml"
        try:
            return load_template(path)
        except FileNotFoundError as exc:
            raise LocalStackError(str(exc)) from None

    def _aws_client(self, service: str, endpoint: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=endpoint,
            region_name=self.options.region,
            aws_access_key_id=FAKE_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_AWS_CREDENTIALS["AWS_SESSION_TOKEN"],
            config=_AWS_CLIENT_CONFIG,
        )

    def _launch_dynamodb_local(self) -> None:
        if self.options.dynamodb == "moto":
            return
        local = DynamoDBLocal(
            self.repo_root / ".tools" / "dynamodb",
            self.options.local_dir / "dynamodb-local.log",
            data_dir=self.persistence.data_dir if self.persistence.keeps_tables else None,
            pid_path=self.persistence.pid_dir / "dynamodb-local.pid",
        )
        if local.installed():
            local.launch()
            self._dynamodb_local = local
        elif self.options.dynamodb == "dynamodb-local":
            raise LocalStackError(f"DynamoDB Local needs java and {local.jar} (run `make setup`)")
        else:
            self.log.warning("java or %s is missing: DynamoDB runs on moto, and a restart forgets it", local.jar)
            self.persistence = Persistence(self.options.local_dir, keeps_tables=False, sandbox=self.persistence.sandbox)

    def _start_moto(self, moto: MotoServer) -> tuple[SQSClient, SecretsManagerClient]:
        moto_url = moto.wait_until_ready()
        self.endpoints = {"dynamodb": moto_url, "sqs": moto_url, "secretsmanager": moto_url}
        self.dynamodb_engine = "moto"
        sqs: SQSClient = self._aws_client("sqs", moto_url)
        secrets_manager: SecretsManagerClient = self._aws_client("secretsmanager", moto_url)
        self._sqs = sqs
        return sqs, secrets_manager

    def _create_queues_and_secrets(
        self, template: dict[str, Any], sqs: SQSClient, secrets_manager: SecretsManagerClient
    ) -> None:
        self.queues = create_queues(sqs, self.prefix, template)
        self.secret_arns = create_secrets(secrets_manager, self.prefix, {}, template)
        self._require((EVENT_QUEUE, self.queues), (EVENT_DLQ, self.queues), (SIGNATURE_KEYS_SECRET, self.secret_arns))
        # Lambda's 180 s (6 x the worker timeout) would hold a skipped FIFO group for minutes;
        # locally a batch takes milliseconds.
        sqs.set_queue_attributes(
            QueueUrl=self.event_queue_url,
            Attributes={"VisibilityTimeout": str(self.options.visibility_timeout_seconds)},
        )

    def _create_tables(self, template: dict[str, Any]) -> None:
        if self._dynamodb_local is not None:
            self.endpoints["dynamodb"] = self._dynamodb_local.wait_until_ready()
            self.dynamodb_engine = "dynamodb-local"
        dynamodb: DynamoDBClient = self._aws_client("dynamodb", self.endpoints["dynamodb"])
        fresh_sandbox = self.persistence.sandbox and not self._sandbox_resumed
        if self.persistence.keeps_tables and (self.fresh or fresh_sandbox):
            # FRESH; or the simulators start from the sample data, which a killed run's tables
            # would not match.
            delete_tables(dynamodb, self.prefix, template)
            if self.fresh:
                self.log.info("FRESH: the kept %s-* tables were emptied", self.prefix)
        try:
            self.tables = create_tables(dynamodb, self.prefix, template, keep_existing=self.persistence.keeps_tables)
        except TableMismatch as exc:
            raise LocalStackError(str(exc)) from None
        self._require((STATE_TABLE, self.tables), (IDEMPOTENCY_TABLE, self.tables))

    @staticmethod
    def _require(*wanted: tuple[str, Mapping[str, str]]) -> None:
        missing = [name for name, found in wanted if name not in found]
        if missing:
            raise LocalStackError(f"template.yaml has no {', '.join(missing)}: the local runner wires them by name")

    def _bind_http_api(self) -> HttpApi:
        try:
            return HttpApi(self._invoke_receiver, port=self.options.port, on_error=self._receiver_failed)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LocalStackError(
                    f"port {self.options.port} is in use: set PORT to another port (or 0 for any free one)"
                ) from None
            raise

    def _start_sandbox(self) -> None:
        from tasksync_dev.sandbox._server import FaultPlan  # noqa: PLC0415
        from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator  # noqa: PLC0415
        from tasksync_dev.sandbox.close import CloseSimulator  # noqa: PLC0415
        from tasksync_dev.sandbox.webhooks import loopback_sender  # noqa: PLC0415

        close = CloseSimulator()
        close.start()
        self.close_simulator = close
        chartmogul = ChartMogulSimulator()
        chartmogul.start()
        self.chartmogul_simulator = chartmogul
        if self.options.chartmogul_error_rate:
            writes = frozenset({"POST", "PATCH", "DELETE"})
            chartmogul.inject(FaultPlan(error_rate=self.options.chartmogul_error_rate, methods=writes))
        task_types = SyncSettings.from_env(app_environment(self.user_environ, {})).task_types
        saved = self.persistence.take_sandbox() if self.persistence.keeps_tables else None
        if saved is not None and saved.get("task_types") == sorted(task_types):
            close.restore(saved["close"])
            chartmogul.restore(saved["chartmogul"])
            self.sandbox_ids = dict(saved["sandbox_ids"])
            self.subscription_id, self._signature_key = saved["subscription_id"], saved["signature_key"]
            self._sandbox_resumed = True
            return
        self.sandbox_ids = close.seed_demo()
        chartmogul_demo = chartmogul.seed_demo()
        self.sandbox_ids["data_source"] = chartmogul_demo["data_source_uuid"]
        subscription = close.create_subscription(
            self.receiver_url,
            [{"object_type": object_type, "action": action} for object_type, action in subscribed_pairs(task_types)],
        )
        self.subscription_id = str(subscription["id"])
        self._signature_key = str(subscription["signature_key"])
        close.webhook_sender = loopback_sender(close)  # the sync-back's writes come back as webhooks

    def _save_sandbox(self) -> None:
        """At a clean stop: what the simulators hold, for the next `make run` to resume."""
        close, chartmogul = self.close_simulator, self.chartmogul_simulator
        if not (self._running and self.persistence.keeps_tables and close and chartmogul):
            return
        task_types = SyncSettings.from_env(self.environment).task_types
        self.persistence.save_sandbox(
            {
                "task_types": sorted(task_types),
                "close": close.snapshot(),
                "chartmogul": chartmogul.snapshot(),
                "sandbox_ids": dict(self.sandbox_ids),
                "subscription_id": self.subscription_id,
                "signature_key": self._signature_key,
            }
        )

    def _store_sandbox_signature_key(self, secrets_manager: SecretsManagerClient) -> None:
        """What `tasksync webhook register` does in AWS: the subscription's key, by id."""
        secrets_manager.put_secret_value(
            SecretId=self.secret_arns[SIGNATURE_KEYS_SECRET],
            SecretString=json.dumps({self.subscription_id: self._signature_key}),
        )

    def _app_environment(self) -> dict[str, str]:
        wiring: dict[str, str] = {
            **FAKE_AWS_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoints["sqs"],
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoints["dynamodb"],
            "AWS_ENDPOINT_URL_SQS": self.endpoints["sqs"],
            # boto3 derives the variable from the service id "Secrets Manager".
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.endpoints["secretsmanager"],
            "STATE_TABLE": self.tables[STATE_TABLE],
            "IDEMPOTENCY_TABLE": self.tables[IDEMPOTENCY_TABLE],
            "QUEUE_URL": self.event_queue_url,
            "DLQ_URL": self.dead_letter_queue_url,
            "SIGNATURE_KEYS_SECRET_ARN": self.secret_arns[SIGNATURE_KEYS_SECRET],
            # The API keys come from the environment locally; never from an ARN in the user's shell.
            "CLOSE_API_KEY_SECRET_ARN": "",
            "CHARTMOGUL_API_KEY_SECRET_ARN": "",
            "RECONCILE_INTERVAL_SECONDS": str(self.options.reconcile_interval_seconds),
            "POWERTOOLS_METRICS_NAMESPACE": "TaskSync",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": self.user_environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
            "POWERTOOLS_DEV": self.user_environ.get("POWERTOOLS_DEV", "false"),
        }
        environment = app_environment(self.user_environ, wiring)
        if self.close_simulator is not None and self.chartmogul_simulator is not None:
            from tasksync_dev.sandbox.close import BASE_PATH  # noqa: PLC0415

            environment.setdefault("ASSIGNEE_MAP", SANDBOX_ASSIGNEE_MAP)
            environment.setdefault("DEFAULT_ASSIGNEE", SANDBOX_DEFAULT_ASSIGNEE)
            environment.setdefault("CHARTMOGUL_DATA_SOURCE_UUID", self.sandbox_ids["data_source"])
            environment.update(
                {
                    "CLOSE_API_URL": self.close_simulator.url + BASE_PATH,
                    "CLOSE_API_KEY": self.close_simulator.api_key,
                    "CHARTMOGUL_API_URL": self.chartmogul_simulator.url + "/v1",
                    "CHARTMOGUL_API_KEY": self.chartmogul_simulator.api_key,
                    "CLOSE_WEBHOOK_SIGNATURE_KEY": self._signature_key or "",
                }
            )
        return environment

    def _apply_environment(self) -> None:
        """Make os.environ what the handlers must see; the previous values come back on stop()."""
        managed = settings_variables() | set(self.environment) | set(AWS_VARIABLES_TO_CLEAR)
        self._saved_environ = {name: os.environ.get(name) for name in managed}
        for name in managed:
            if name in self.environment:
                os.environ[name] = self.environment[name]
            else:
                os.environ.pop(name, None)
        forget_clients()

    def _restore_environment(self) -> None:
        saved, self._saved_environ = self._saved_environ, None
        for name, value in (saved or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _load_functions(self, template: dict[str, Any]) -> None:
        definitions = function_definitions(template)
        for logical_id in (RECEIVER, WORKER, RECONCILER):
            if logical_id not in definitions:
                raise LocalStackError(f"template.yaml has no {logical_id} with a local CodeUri")
            self._functions[logical_id] = LocalFunction(
                logical_id=logical_id,
                definition=definitions[logical_id],
                repo_root=self.repo_root,
                function_name=f"{self.prefix}-{logical_id}",
                service_name=SERVICE_NAMES[logical_id],
                region=self.options.region,
                after_invoke=self._after_invoke,
            )
        modules = [function.load() for function in self._functions.values()]
        suppress_cold_start_metric()
        # Each handler module has its Powertools `logger` and `metrics` at module level.
        self._loggers = [m.logger for m in modules if isinstance(getattr(m, "logger", None), Logger)]
        self._metrics = [m.metrics for m in modules if isinstance(getattr(m, "metrics", None), Metrics)]
        if self.options.log_format == "concise":
            use_concise_format(self._loggers)

    # ------------------------------------------------------------------ callbacks
    def _invoke_receiver(self, event: dict[str, Any]) -> Any:
        return self._functions[RECEIVER].invoke(event)

    def _after_invoke(self) -> None:
        quiet_metrics(self._metrics)

    def _receiver_failed(self, exc: BaseException) -> None:
        self.log.error("the receiver invocation failed (answered 500)", exc_info=exc)

    def _worker_failed(self, exc: BaseException, size: int) -> None:
        if _batch_failed_everything(exc):
            self.log.info("no record of a batch of %d succeeded; all stay queued for their retry", size)
        else:
            self.log.error("the worker invocation failed; its batch of %d stays queued", size, exc_info=exc)
