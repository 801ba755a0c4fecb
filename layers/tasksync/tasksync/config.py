"""The configuration models, read from the environment: one per function, and one of everything.

Every name here is part of the public contract documented in the README's configuration
table. Secrets are ``SecretStr`` so that they never show up in a repr, a log line or a
validation error. In Lambda the API keys are not in the environment at all: the functions
get only the Secrets Manager ARNs (``*_SECRET_ARN``) and resolve them at cold start.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from tasksync.errors import InvalidInput

DEFAULT_CLOSE_API_URL = "https://api.close.com/api/v1"
DEFAULT_CHARTMOGUL_API_URL = "https://api.chartmogul.com/v1"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Close's task `_type`s: the eight its Tasks reference lists, plus outgoing_call, which its API
# schema accepts on create (see docs/upstream-apis.md). Close has no endpoint that lists them, so
# a type missing here would be refused until it is added; template.yaml's TaskTypes pattern
# repeats this list for CloudFormation.
CLOSE_TASK_TYPES = frozenset(
    {
        "lead",
        "incoming_email",
        "email_followup",
        "missed_call",
        "answered_detached_call",
        "voicemail",
        "opportunity_due",
        "incoming_sms",
        "outgoing_call",
    }
)


class _EnvironmentSettings(BaseModel):
    """Shared by every settings model: parsing rules per variable and `from_env`.

    The validators name fields that only some subclasses have (check_fields=False)."""

    # defer_build: a model's validator is built when it first validates, so a function builds
    # only its own settings model at cold start, not the other functions' and SyncSettings.
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    @field_validator("task_types", mode="before", check_fields=False)
    @classmethod
    def _split_task_types(cls, value: Any) -> Any:
        if isinstance(value, str):
            types = frozenset(part.strip() for part in value.split(",") if part.strip())
            if not types:
                raise ValueError("expected comma-separated Close task types, e.g. 'lead' or 'lead,outgoing_call'")
            unknown = types - CLOSE_TASK_TYPES
            if unknown:
                # A typo ("leads") would otherwise subscribe to nothing and mirror nothing, silently.
                # The names are not echoed (a key pasted here must not reach a log); the list shows
                # what was meant.
                raise ValueError(
                    f"{len(unknown)} of the {len(types)} names are not Close task types; "
                    f"expected some of: {', '.join(sorted(CLOSE_TASK_TYPES))}"
                )
            return types
        return value

    @field_validator("assignee_map", mode="before", check_fields=False)
    @classmethod
    def _parse_assignee_map(cls, value: Any) -> Any:
        parsed = value
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON object of Close email to ChartMogul email ({exc.msg})") from None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise ValueError("must be a JSON object of Close email to ChartMogul email")
        # Close emails compare case-insensitively, however the map was given.
        return {k.strip().lower(): v.strip() for k, v in parsed.items()}

    @field_validator(
        "default_assignee",
        "close_customer_field",
        "chartmogul_data_source_uuid",
        "close_api_key",
        "chartmogul_api_key",
        "queue_url",
        "dlq_url",
        "close_api_key_secret_arn",
        "chartmogul_api_key_secret_arn",
        "signature_keys_secret_arn",
        mode="before",
        check_fields=False,
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("close_api_url", "chartmogul_api_url", check_fields=False)
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        # The API key travels in every request's Authorization header: plain http only to this
        # machine (the local runner's and the tests' simulators).
        parts = urlsplit(value)
        if not parts.hostname or parts.username or parts.password:
            raise ValueError("must be an https:// URL with a host and no credentials")
        if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname)):
            raise ValueError("must be an https:// URL (http:// only for a loopback host)")
        return value.rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Read this model's variables (and no others) from the environment; raise InvalidInput
        naming the variable."""
        aliases = {field.alias for field in cls.model_fields.values() if field.alias}
        try:
            return cls.model_validate({name: environ[name] for name in aliases if name in environ})
        except ValidationError as exc:
            first = exc.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else "configuration"
            # Never echo the input value: it may be a secret.
            raise InvalidInput(name, _expected_form(first)) from None

    @classmethod
    def variables(cls) -> frozenset[str]:
        """The environment variables this model reads."""
        return frozenset(field.alias for field in cls.model_fields.values() if field.alias)


class HttpSettings(_EnvironmentSettings):
    http_connect_timeout: float = Field(default=3.05, gt=0, alias="HTTP_CONNECT_TIMEOUT")
    http_read_timeout: float = Field(default=10.0, gt=0, alias="HTTP_READ_TIMEOUT")


class CloseApiSettings(HttpSettings):
    """The Close client, and which Close task types to mirror (others are ignored and counted)."""

    close_api_key: SecretStr | None = Field(default=None, alias="CLOSE_API_KEY")
    close_api_key_secret_arn: str | None = Field(default=None, alias="CLOSE_API_KEY_SECRET_ARN")
    close_api_url: str = Field(default=DEFAULT_CLOSE_API_URL, alias="CLOSE_API_URL")
    task_types: frozenset[str] = Field(default=frozenset({"lead"}), alias="TASK_TYPES")


class ChartMogulApiSettings(HttpSettings):
    chartmogul_api_key: SecretStr | None = Field(default=None, alias="CHARTMOGUL_API_KEY")
    chartmogul_api_key_secret_arn: str | None = Field(default=None, alias="CHARTMOGUL_API_KEY_SECRET_ARN")
    chartmogul_api_url: str = Field(default=DEFAULT_CHARTMOGUL_API_URL, alias="CHARTMOGUL_API_URL")
    # The whole account's budget, shared by every worker and the reconciler (ChartMogul allows 40).
    chartmogul_requests_per_second: float = Field(default=38.0, gt=0, alias="CHARTMOGUL_REQUESTS_PER_SECOND")


class StateTableSettings(_EnvironmentSettings):
    state_table: str = Field(default="tasksync-state", alias="STATE_TABLE")


class ApiSettings(CloseApiSettings, ChartMogulApiSettings, StateTableSettings):
    """Both APIs and the state table: what the engine and the reconciler have in common."""


class EngineSettings(ApiSettings):
    """What the engine (TaskSync and its resolvers) reads."""

    # Close user email -> ChartMogul user email.
    assignee_map: dict[str, str] = Field(default_factory=dict, alias="ASSIGNEE_MAP")
    default_assignee: str | None = Field(default=None, alias="DEFAULT_ASSIGNEE")
    close_customer_field: str | None = Field(default=None, alias="CLOSE_CUSTOMER_FIELD")
    chartmogul_data_source_uuid: str | None = Field(default=None, alias="CHARTMOGUL_DATA_SOURCE_UUID")
    create_missing_customers: bool = Field(default=False, alias="CREATE_MISSING_CUSTOMERS")
    customer_cache_ttl_seconds: int = Field(default=86400, ge=0, alias="CUSTOMER_CACHE_TTL_SECONDS")
    create_lease_seconds: int = Field(default=120, ge=1, alias="CREATE_LEASE_SECONDS")
    # Parked tasks are retried with capped exponential backoff: base * 2^(attempts-1), at most max.
    park_retry_base_seconds: int = Field(default=60, ge=1, alias="PARK_RETRY_BASE_SECONDS")
    park_retry_max_seconds: int = Field(default=6 * 3600, ge=1, alias="PARK_RETRY_MAX_SECONDS")
    # A change to a task written to ChartMogul less than this long ago waits until then (once
    # per queue message), so that a burst of edits goes out as one call; 0 writes at once.
    settle_seconds: int = Field(default=10, ge=0, le=300, alias="SETTLE_SECONDS")

    def chartmogul_assignee_for(self, close_email: str | None) -> str | None:
        """The ChartMogul assignee to try first for a Close user's email (the assignee rule).

        1. ASSIGNEE_MAP[close_email], compared case-insensitively;
        2. otherwise the Close email itself: most teams use the same email in both tools, and
           that must work with no configuration at all;
        3. DEFAULT_ASSIGNEE only for a task with no assignee (``None`` here). The other
           fallbacks (the Close user cannot be read, ChartMogul refuses the email) are decided
           by `AssigneeResolver`, which sees those answers.
        """
        if not close_email or not close_email.strip():
            return self.default_assignee
        return self.assignee_map.get(close_email.strip().lower()) or close_email.strip()


class WorkerSettings(EngineSettings):
    """The worker function: the engine, plus its queues and idempotency table."""

    idempotency_table: str = Field(default="tasksync-idempotency", alias="IDEMPOTENCY_TABLE")
    queue_url: str | None = Field(default=None, alias="QUEUE_URL")
    dlq_url: str | None = Field(default=None, alias="DLQ_URL")
    # A failed SQS record becomes visible again after a capped exponential backoff with jitter.
    retry_base_seconds: int = Field(default=5, ge=0, alias="RETRY_BASE_SECONDS")
    retry_max_seconds: int = Field(default=900, ge=0, le=43200, alias="RETRY_MAX_SECONDS")
    # How many Close tasks (message groups) of one batch are applied at the same time; a task's
    # own events stay in order. A worker mostly waits on ChartMogul, so one Lambda keeps several
    # requests in flight; the shared ChartMogul schedule still bounds the account's rate.
    parallel_tasks: int = Field(default=5, ge=1, le=10, alias="PARALLEL_TASKS")


class ReconcilerSettings(ApiSettings):
    """The reconciler function: Close's event log and subscriptions, the state table, the queue,
    and ChartMogul for the sync-back only (the worker applies the events the reconciler queues)."""

    queue_url: str | None = Field(default=None, alias="QUEUE_URL")
    # The event-log entries that can never be enqueued (poison events) go to the DLQ.
    dlq_url: str | None = Field(default=None, alias="DLQ_URL")
    auto_resume_webhook: bool = Field(default=False, alias="AUTO_RESUME_WEBHOOK")
    # The schedule's period (the template sets it from the same parameter as the schedule; the
    # local runner schedules passes by it).
    reconcile_interval_seconds: int = Field(default=300, ge=1, alias="RECONCILE_INTERVAL_SECONDS")
    # Longest a reconciler pass may run (local runner, CLI); in Lambda the function's remaining
    # time, less a margin, bounds it as well.
    reconcile_budget_seconds: float | None = Field(default=None, gt=0, alias="RECONCILE_BUDGET_SECONDS")
    # Sync-back: a completion or reopening done in ChartMogul is written back to Close, checked
    # by every SYNC_BACK_EVERY_PASSES-th reconciler pass. Off by default (one-way sync).
    sync_completion_back: bool = Field(default=False, alias="SYNC_COMPLETION_BACK")
    sync_back_every_passes: int = Field(default=1, ge=1, le=1000, alias="SYNC_BACK_EVERY_PASSES")


class SyncSettings(WorkerSettings, ReconcilerSettings):
    """What the local runner and the CLI read (they play all three functions). The receiver's
    own variables are read without pydantic: tasksync.receiver_settings (its VARIABLES)."""

    # The CLI writes signature keys (`tasksync webhook register`); the reconciler never reads
    # them: it watches the subscription ids kept in the state table (tasksync.dal.subscriptions).
    signature_keys_secret_arn: str | None = Field(default=None, alias="SIGNATURE_KEYS_SECRET_ARN")


# pydantic's error types -> the form a variable expects, in our words ("Input should be a valid
# boolean" means nothing to someone setting an environment variable).
_EXPECTED_FORMS = {
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
}
_BOUNDS = {"ge": "a number of at least {}", "gt": "a number above {}", "le": "a number of at most {}"}


def _expected_form(error: Any) -> str:
    """One pydantic error, worded as what the variable expects."""
    context = error.get("ctx") or {}
    if error["type"] == "value_error" and "error" in context:
        return str(context["error"])  # our own validators' words
    if error["type"] in _EXPECTED_FORMS:
        return _EXPECTED_FORMS[error["type"]]
    for bound, form in _BOUNDS.items():
        if bound in context:
            limit = context[bound]
            return "expected " + form.format(f"{limit:g}" if isinstance(limit, float) else limit)
    return "has a value of the wrong form"
