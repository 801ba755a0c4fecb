"""What the local runner reads from the environment, and the environment it gives the app.

The handlers read their configuration from os.environ, as in Lambda. The runner builds that
environment from three layers, later ones winning:
1. local defaults that make retries visible within seconds (unless the user set them);
2. the user's own settings (ASSIGNEE_MAP, TASK_TYPES, ...), passed through unchanged;
3. the wiring, which always points at this run's local resources: tables, queues, endpoints,
   fake AWS credentials, and in sandbox mode the simulators and their keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tasksync.config import SyncSettings
from tasksync.errors import InvalidInput
from tasksync.receiver_settings import VARIABLES as RECEIVER_VARIABLES
from tasksync_dev.local.state import local_dir

DEFAULT_PORT = 3000
LOCAL_REGION = "us-east-1"
DEFAULT_VISIBILITY_SECONDS = 10

# Lambda's timings are made for a deployed, concurrent system; locally a failed record should
# come back within seconds so that a flaky API is seen being retried.
LOCAL_TIMING_DEFAULTS: dict[str, str] = {
    "RECONCILE_INTERVAL_SECONDS": "30",
    "RETRY_BASE_SECONDS": "1",
    "RETRY_MAX_SECONDS": "5",
    # Held only while one ChartMogul create is in flight, so it must outlast one call
    # (HTTP_CONNECT_TIMEOUT + HTTP_READ_TIMEOUT); it is released on every failure.
    "CREATE_LEASE_SECONDS": "15",
    "PARK_RETRY_BASE_SECONDS": "10",
    "PARK_RETRY_MAX_SECONDS": "300",
}

# The fake credentials and endpoints every AWS client of the run uses. AWS_ENDPOINT_URL also
# catches any service we did not list, so nothing can ever reach a real AWS account.
FAKE_AWS_CREDENTIALS: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_SECURITY_TOKEN": "local",
    "AWS_REGION": LOCAL_REGION,
    "AWS_DEFAULT_REGION": LOCAL_REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
# Variables that would make boto3 look elsewhere; removed for the run.
AWS_VARIABLES_TO_CLEAR = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")

Mode = Literal["sandbox", "real"]
DynamoDBChoice = Literal["auto", "dynamodb-local", "moto"]


def _int_variable(environ: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidInput(name, f"must be a whole number from {low} to {high}")
    return int(text)


@dataclass(frozen=True)
class LocalOptions:
    port: int
    mode: Mode
    local_dir: Path
    reconcile_interval_seconds: int
    visibility_timeout_seconds: int
    log_format: Literal["concise", "json"]
    dynamodb: DynamoDBChoice
    # Sandbox only: the share of ChartMogul writes the simulator answers with a 5xx, to watch retries.
    chartmogul_error_rate: float = 0.0
    region: str = LOCAL_REGION

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalOptions:
        has_close = bool(environ.get("CLOSE_API_KEY", "").strip())
        has_chartmogul = bool(environ.get("CHARTMOGUL_API_KEY", "").strip())
        if has_close != has_chartmogul:
            missing = "CHARTMOGUL_API_KEY" if has_close else "CLOSE_API_KEY"
            raise InvalidInput(
                missing, "is not set: set both API keys to use the real APIs, or neither for the sandbox"
            )
        log_format = environ.get("TASKSYNC_LOG_FORMAT", "concise").strip().lower() or "concise"
        if log_format not in ("concise", "json"):
            raise InvalidInput("TASKSYNC_LOG_FORMAT", "must be 'concise' or 'json'")
        dynamodb = environ.get("TASKSYNC_LOCAL_DYNAMODB", "auto").strip().lower() or "auto"
        if dynamodb not in ("auto", "dynamodb-local", "moto"):
            raise InvalidInput("TASKSYNC_LOCAL_DYNAMODB", "must be 'auto', 'dynamodb-local' or 'moto'")
        interval_default = int(LOCAL_TIMING_DEFAULTS["RECONCILE_INTERVAL_SECONDS"])
        error_rate_text = environ.get("TASKSYNC_SANDBOX_CHARTMOGUL_ERROR_RATE", "").strip() or "0"
        try:
            error_rate = float(error_rate_text)
        except ValueError:
            error_rate = -1.0
        if not 0.0 <= error_rate <= 1.0:
            raise InvalidInput("TASKSYNC_SANDBOX_CHARTMOGUL_ERROR_RATE", "must be a number from 0 to 1")
        return cls(
            port=_int_variable(environ, "PORT", DEFAULT_PORT, low=0, high=65535),
            mode="real" if has_close else "sandbox",
            local_dir=local_dir(environ),
            reconcile_interval_seconds=_int_variable(
                environ, "RECONCILE_INTERVAL_SECONDS", interval_default, low=1, high=86400
            ),
            visibility_timeout_seconds=_int_variable(
                environ, "LOCAL_QUEUE_VISIBILITY_SECONDS", DEFAULT_VISIBILITY_SECONDS, low=1, high=43200
            ),
            log_format="json" if log_format == "json" else "concise",
            dynamodb="moto" if dynamodb == "moto" else "dynamodb-local" if dynamodb == "dynamodb-local" else "auto",
            chartmogul_error_rate=error_rate,
        )


def settings_variables() -> frozenset[str]:
    """Every variable SyncSettings or the receiver's settings read."""
    return frozenset(field.alias for field in SyncSettings.model_fields.values() if field.alias) | RECEIVER_VARIABLES


def app_environment(user: Mapping[str, str], wiring: Mapping[str, str]) -> dict[str, str]:
    """The settings the handlers see: local timing defaults < the user's settings < the wiring.

    Only SyncSettings' variables come from ``user``; everything else the app needs (AWS,
    Powertools) is in ``wiring``.
    """
    names = settings_variables()
    environment = {name: value for name, value in LOCAL_TIMING_DEFAULTS.items() if name in names}
    environment.update({name: value for name, value in user.items() if name in names})
    environment.update(wiring)
    return environment


class ProcessEnvironment:
    """os.environ as the handlers must see it while a stack runs, and back as it was afterwards.

    The handlers read os.environ as in Lambda, so a running stack owns the process environment:
    every variable the app reads is either the stack's or absent, never left over from the shell.
    """

    def __init__(self) -> None:
        self._saved: dict[str, str | None] | None = None

    def apply(self, environment: Mapping[str, str]) -> None:
        managed = settings_variables() | set(environment) | set(AWS_VARIABLES_TO_CLEAR)
        self._saved = {name: os.environ.get(name) for name in managed}
        for name in managed:
            if name in environment:
                os.environ[name] = environment[name]
            else:
                os.environ.pop(name, None)

    def restore(self) -> None:
        saved, self._saved = self._saved, None
        for name, value in (saved or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
