"""The one configuration model, read from the environment.

Every name here is part of the public contract documented in the README's configuration
table. Secrets are ``SecretStr`` so that they never show up in a repr, a log line or a
validation error. In Lambda the API keys are not in the environment at all: the functions
get only the Secrets Manager ARNs (``*_SECRET_ARN``) and resolve them at cold start.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any
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


class SyncSettings(BaseModel):
    """Settings for the receiver, worker, reconciler, local runner and CLI."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    close_api_key: SecretStr | None = Field(default=None, alias="CLOSE_API_KEY")
    close_api_url: str = Field(default=DEFAULT_CLOSE_API_URL, alias="CLOSE_API_URL")
    close_webhook_signature_key: SecretStr | None = Field(default=None, alias="CLOSE_WEBHOOK_SIGNATURE_KEY")
    chartmogul_api_key: SecretStr | None = Field(default=None, alias="CHARTMOGUL_API_KEY")
    chartmogul_api_url: str = Field(default=DEFAULT_CHARTMOGUL_API_URL, alias="CHARTMOGUL_API_URL")

    # Close task `_type`s to mirror; others are ignored and counted.
    task_types: frozenset[str] = Field(default=frozenset({"lead"}), alias="TASK_TYPES")
    # Close user email -> ChartMogul user email.
    assignee_map: dict[str, str] = Field(default_factory=dict, alias="ASSIGNEE_MAP")
    default_assignee: str | None = Field(default=None, alias="DEFAULT_ASSIGNEE")

    close_customer_field: str | None = Field(default=None, alias="CLOSE_CUSTOMER_FIELD")
    chartmogul_data_source_uuid: str | None = Field(default=None, alias="CHARTMOGUL_DATA_SOURCE_UUID")
    create_missing_customers: bool = Field(default=False, alias="CREATE_MISSING_CUSTOMERS")

    signature_tolerance_seconds: int = Field(default=300, ge=0, alias="SIGNATURE_TOLERANCE_SECONDS")
    reconcile_interval_seconds: int = Field(default=300, ge=1, alias="RECONCILE_INTERVAL_SECONDS")
    auto_resume_webhook: bool = Field(default=False, alias="AUTO_RESUME_WEBHOOK")
    # Sync-back: a completion or reopening done in ChartMogul is written back to Close, checked
    # by every SYNC_BACK_EVERY_PASSES-th reconciler pass. Off by default (one-way sync).
    sync_completion_back: bool = Field(default=False, alias="SYNC_COMPLETION_BACK")
    sync_back_every_passes: int = Field(default=1, ge=1, le=1000, alias="SYNC_BACK_EVERY_PASSES")

    # Deployment wiring (set by template.yaml or the local runner, not by users).
    state_table: str = Field(default="tasksync-state", alias="STATE_TABLE")
    idempotency_table: str = Field(default="tasksync-idempotency", alias="IDEMPOTENCY_TABLE")
    queue_url: str | None = Field(default=None, alias="QUEUE_URL")
    dlq_url: str | None = Field(default=None, alias="DLQ_URL")
    close_api_key_secret_arn: str | None = Field(default=None, alias="CLOSE_API_KEY_SECRET_ARN")
    chartmogul_api_key_secret_arn: str | None = Field(default=None, alias="CHARTMOGUL_API_KEY_SECRET_ARN")
    signature_keys_secret_arn: str | None = Field(default=None, alias="SIGNATURE_KEYS_SECRET_ARN")

    # Tuning.
    customer_cache_ttl_seconds: int = Field(default=86400, ge=0, alias="CUSTOMER_CACHE_TTL_SECONDS")
    create_lease_seconds: int = Field(default=120, ge=1, alias="CREATE_LEASE_SECONDS")
    http_connect_timeout: float = Field(default=3.05, gt=0, alias="HTTP_CONNECT_TIMEOUT")
    http_read_timeout: float = Field(default=10.0, gt=0, alias="HTTP_READ_TIMEOUT")
    chartmogul_requests_per_second: float = Field(default=36.0, gt=0, alias="CHARTMOGUL_REQUESTS_PER_SECOND")
    # Parked tasks are retried with capped exponential backoff: base * 2^(attempts-1), at most max.
    park_retry_base_seconds: int = Field(default=60, ge=1, alias="PARK_RETRY_BASE_SECONDS")
    park_retry_max_seconds: int = Field(default=6 * 3600, ge=1, alias="PARK_RETRY_MAX_SECONDS")
    # A failed SQS record becomes visible again after a capped exponential backoff with jitter.
    retry_base_seconds: int = Field(default=5, ge=0, alias="RETRY_BASE_SECONDS")
    retry_max_seconds: int = Field(default=900, ge=0, le=43200, alias="RETRY_MAX_SECONDS")
    # Longest a reconciler pass may run (local runner, CLI); in Lambda the function's remaining
    # time, less a margin, bounds it as well.
    reconcile_budget_seconds: float | None = Field(default=None, gt=0, alias="RECONCILE_BUDGET_SECONDS")

    @field_validator("task_types", mode="before")
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

    @field_validator("assignee_map", mode="before")
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
        "close_webhook_signature_key",
        "queue_url",
        "dlq_url",
        "close_api_key_secret_arn",
        "chartmogul_api_key_secret_arn",
        "signature_keys_secret_arn",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("close_api_url", "chartmogul_api_url")
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
    def from_env(cls, environ: Mapping[str, str]) -> SyncSettings:
        """Build settings from environment variables; raise InvalidInput naming the variable."""
        aliases = {field.alias for field in cls.model_fields.values() if field.alias}
        try:
            return cls.model_validate({name: environ[name] for name in aliases if name in environ})
        except ValidationError as exc:
            first = exc.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else "configuration"
            # Never echo the input value: it may be a secret.
            raise InvalidInput(name, _expected_form(first)) from None

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
