"""The whole app on this machine: `LocalStack().start()` ... `stop()`.

What runs, all on 127.0.0.1:
- AWS (tasksync_dev.local.resources): DynamoDB Local when java and .tools/dynamodb are there,
  otherwise moto; SQS and Secrets Manager on a moto server. Tables, queues and secrets come from
  template.yaml's own definitions. With the real APIs (and with `make run` in sandbox mode) the
  tables are kept in .local/ under fixed names across restarts; otherwise they live in memory
  under a prefix unique to the run (tasksync_dev.local.persistence says what is kept and why).
- The three Lambda handlers, loaded from their files: the receiver behind a local HTTP API
  (`POST /webhooks/close`), the worker fed by an SQS poller with Lambda's partial-batch rules,
  the reconciler on a fixed-rate schedule.
- Sandbox mode (no API keys, tasksync_dev.local.simulators): the Close and ChartMogul simulators,
  seeded with demo data (or resumed from what the last clean stop saved), and a Close webhook
  subscription whose signature key the receiver verifies with.

The handlers read os.environ as in Lambda, so a running stack owns the process environment:
only one LocalStack runs per process at a time, and stop() puts the environment back.
"""

from __future__ import annotations

import errno
import functools
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tasksync.config import SyncSettings
from tasksync.dal.aws import forget_clients
from tasksync_dev.local.child_process import stop_orphans
from tasksync_dev.local.functions import RECEIVER, RECONCILER, WORKER, Functions
from tasksync_dev.local.http_api import WEBHOOK_ROUTE, HttpApi
from tasksync_dev.local.logs import runner_logger
from tasksync_dev.local.options import LocalOptions, ProcessEnvironment, app_environment
from tasksync_dev.local.persistence import Persistence
from tasksync_dev.local.preflight import PreflightFailed, check_api_keys
from tasksync_dev.local.resources import EVENT_DLQ, EVENT_QUEUE, SIGNATURE_KEYS_SECRET, AwsResources, LocalStackError
from tasksync_dev.local.schedule import FixedRateSchedule
from tasksync_dev.local.simulators import Simulators
from tasksync_dev.local.sqs_source import Invoke as WorkerInvoke
from tasksync_dev.local.sqs_source import SqsEventSource
from tasksync_dev.local.state import STATE_FILE_NAME, describe, other_owner, remove_state, write_state
from tasksync_dev.local.template import REPO_ROOT, function_definitions, load_template

if TYPE_CHECKING:
    import subprocess

    from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
    from tasksync_dev.sandbox.close import CloseSimulator

__all__ = ["THREAD_PREFIX", "LocalStack", "LocalStackError"]

THREAD_PREFIX = "tasksync-local-"
STOP_TIMEOUT_SECONDS = 30.0
IDLE_POLL_SECONDS = 0.1


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
        self.prefix = self.persistence.table_prefix()
        self.state_path = self.options.local_dir / STATE_FILE_NAME
        self.started_at: datetime | None = None
        self.environment: dict[str, str] = {}
        self._aws = AwsResources(self.options, repo_root=repo_root, prefix=self.prefix, log=self.log)
        self._simulators: Simulators | None = None
        self._http_api: HttpApi | None = None
        self._event_source: SqsEventSource | None = None
        self._schedule: FixedRateSchedule | None = None
        self._functions = Functions()
        self._process_environment = ProcessEnvironment()
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

    # The AWS side's coordinates, empty until the start creates them.
    @property
    def dynamodb_engine(self) -> str:
        return self._aws.dynamodb_engine

    @property
    def endpoints(self) -> dict[str, str]:
        return self._aws.endpoints

    @property
    def tables(self) -> dict[str, str]:
        return self._aws.tables

    @property
    def queues(self) -> dict[str, str]:
        return self._aws.queues

    @property
    def secret_arns(self) -> dict[str, str]:
        return self._aws.secret_arns

    @property
    def dynamodb_process(self) -> subprocess.Popen[bytes] | None:
        """The DynamoDB Local child process (None on moto)."""
        return self._aws.dynamodb_process

    # Sandbox mode's simulators and demo ids; None and empty with the real APIs.
    @property
    def close_simulator(self) -> CloseSimulator | None:
        return self._simulators.close if self._simulators is not None else None

    @property
    def chartmogul_simulator(self) -> ChartMogulSimulator | None:
        return self._simulators.chartmogul if self._simulators is not None else None

    @property
    def sandbox_ids(self) -> dict[str, str]:
        return self._simulators.ids if self._simulators is not None else {}

    @property
    def subscription_id(self) -> str | None:
        return self._simulators.subscription_id if self._simulators is not None else None

    @property
    def reconcile_runs(self) -> int:
        """Reconciler runs finished so far."""
        return self._schedule.runs if self._schedule is not None else 0

    @property
    def webhook_requests(self) -> int:
        """HTTP requests the receiver's API has answered so far."""
        return self._http_api.requests_served if self._http_api is not None else 0

    @property
    def signature_key(self) -> str | None:
        """The sandbox subscription's signature key (None with the real APIs: it is the user's)."""
        return self._simulators.signature_key if self._simulators is not None else None

    def state(self) -> dict[str, Any]:
        """What `.local/stack.json` holds (see tasksync_dev.local.state for the layout)."""
        return describe(self)

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
        self.persistence = self._aws.launch(self.persistence)
        sqs, secrets_manager = self._aws.connect()
        self._aws.create_queues_and_secrets(template, sqs, secrets_manager)
        self._http_api = self._bind_http_api()
        if self.options.mode == "sandbox":
            self._simulators = Simulators.launch(chartmogul_error_rate=self.options.chartmogul_error_rate)
            task_types = SyncSettings.from_env(app_environment(self.user_environ, {})).task_types
            self._simulators.seed_or_resume(
                receiver_url=self.receiver_url, task_types=task_types, persistence=self.persistence
            )
            # What `tasksync webhook register` does in AWS: the subscription's key, by id.
            secrets_manager.put_secret_value(
                SecretId=self.secret_arns[SIGNATURE_KEYS_SECRET], SecretString=self._simulators.signature_keys()
            )
        self._create_tables(template)
        self.environment = self._app_environment()
        SyncSettings.from_env(self.environment)  # a bad setting fails here, before anything runs
        self._process_environment.apply(self.environment)
        forget_clients()
        self._load_functions(template)
        self._http_api.start(THREAD_PREFIX + "receiver")
        self._event_source = SqsEventSource(
            sqs=sqs,
            queue_url=self.event_queue_url,
            invoke=functools.partial(self._functions.invoke, WORKER),
            region=self.options.region,
            on_batch_error=self._worker_failed,
            on_poll_error=lambda exc: self.log.warning("polling the event queue failed: %s", exc),
        )
        self._event_source.start(THREAD_PREFIX + "worker")
        self._schedule = FixedRateSchedule(
            invoke=functools.partial(self._functions.invoke, RECONCILER),
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
        if self._simulators is not None:
            if self._running and self.persistence.keeps_tables:
                # A clean stop: the next `make run` resumes from what the simulators hold.
                self._simulators.save(self.persistence, SyncSettings.from_env(self.environment).task_types)
            self._simulators.stop()
        self._aws.stop()
        if self._running:
            remove_state(self.state_path, owner_pid=os.getpid())
        self._running = False
        self._functions.unload()
        self._process_environment.restore()
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
        if not self._running:
            raise LocalStackError("the local stack is not running")
        busy = self._busy_components()
        if busy:
            return busy
        busy = self._aws.event_queue_backlog()
        # Looked at again: a batch may have been received between the two looks.
        return busy or self._busy_components()

    def _busy_components(self) -> list[str]:
        parts = [("receiver", self._http_api), ("worker", self._event_source), ("reconciler", self._schedule)]
        return [name for name, part in parts if part is not None and part.busy]

    # ------------------------------------------------------------------ start-up steps
    def _refuse_if_another_stack_runs(self) -> None:
        pid = other_owner(self.state_path)
        if pid is not None:
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

    def _create_tables(self, template: dict[str, Any]) -> None:
        resumed = self._simulators is not None and self._simulators.resumed
        fresh_sandbox = self.persistence.sandbox and not resumed
        # FRESH; or the simulators start from the sample data, which a killed run's tables would not match.
        empty_first = self.persistence.keeps_tables and (self.fresh or fresh_sandbox)
        self._aws.create_tables(template, keep_existing=self.persistence.keeps_tables, empty_first=empty_first)
        if empty_first and self.fresh:
            self.log.info("FRESH: the kept %s-* tables were emptied", self.prefix)

    def _bind_http_api(self) -> HttpApi:
        try:
            return HttpApi(self._invoke_receiver, port=self.options.port, on_error=self._receiver_failed)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LocalStackError(
                    f"port {self.options.port} is in use: set PORT to another port (or 0 for any free one)"
                ) from None
            raise

    def _app_environment(self) -> dict[str, str]:
        wiring: dict[str, str] = {
            **self._aws.wiring(),
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
        if self._simulators is not None:
            self._simulators.configure(environment)
        return environment

    def _load_functions(self, template: dict[str, Any]) -> None:
        definitions = function_definitions(template)
        for logical_id in (RECEIVER, WORKER, RECONCILER):
            if logical_id not in definitions:
                raise LocalStackError(f"template.yaml has no {logical_id} with a local CodeUri")
        self._functions.load(
            definitions,
            repo_root=self.repo_root,
            prefix=self.prefix,
            region=self.options.region,
            concise_logs=self.options.log_format == "concise",
        )

    # ------------------------------------------------------------------ callbacks
    def _invoke_receiver(self, event: dict[str, Any]) -> Any:
        return self._functions.invoke(RECEIVER, event)

    def _receiver_failed(self, exc: BaseException) -> None:
        self.log.error("the receiver invocation failed (answered 500)", exc_info=exc)

    def _worker_failed(self, exc: BaseException, size: int) -> None:
        if _batch_failed_everything(exc):
            self.log.info("no record of a batch of %d succeeded; all stay queued for their retry", size)
        else:
            self.log.error("the worker invocation failed; its batch of %d stays queued", size, exc_info=exc)
