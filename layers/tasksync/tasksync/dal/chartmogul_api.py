"""ChartMogul REST client: the `ChartMogulApi` port over HTTP.

How answers are classified (docs/upstream-apis.md, "ChartMogul tasks" and "ChartMogul errors and rate limits"):
- PATCH answered 304 means nothing changed: ``update_task`` returns None.
- 429, 503 (too many parallel connections), other 5xx and timeouts are retryable; a 429
  becomes RateLimited carrying Retry-After when the server sent one.
- A POST that times out after sending, or gets 500/502/504, raises OutcomeUnknown: tasks have
  no idempotency key, so the caller must look for the task before creating it again.
- Any other 4xx is a PermanentApiError carrying the raw body. ChartMogul answers errors in at
  least four shapes, so the predicates at the bottom of this module read the body rather than
  parse one assumed structure; `classify` uses them to raise AssigneeRejected and
  CustomerUnknown, which is all the engine needs to know.

Writes are never retried here (the queue retries them, with the engine's duplicate checks).
A GET that meets a 429 gets one retry after a short wait (at most 2 s); anything longer is
the queue's job.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Unpack

import requests
import requests.adapters

from tasksync.config import ChartMogulApiSettings
from tasksync.dal._http import HttpOptions, JsonApiClient
from tasksync.dal.pacing import Pacer, SharedPacer
from tasksync.dal.path_ids import uuid_id
from tasksync.dal.schedule import MemorySchedule
from tasksync.errors import (
    ApiError,
    AssigneeRejected,
    CustomerUnknown,
    InvalidInput,
    NotFound,
    PermanentApiError,
    RateLimited,
    RetryableApiError,
)
from tasksync.models._parsing import parse_model
from tasksync.models.chartmogul import ChartMogulCustomer, ChartMogulTask, TaskFields, TaskFilters, TaskPage

MAX_PER_PAGE = 200


class _OnTime(requests.adapters.HTTPAdapter):
    """The transport's last step before a request leaves: the pacer confirms the slot is still
    current (a thread descheduled after ``acquire`` takes a new one instead of sending late)."""

    def __init__(self, pacer: Pacer) -> None:
        super().__init__()
        self._pacer = pacer

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self._pacer.confirm(request.method or "-", request.path_url)
        return super().send(request, *args, **kwargs)


class ChartMogulClient(JsonApiClient):
    """Tasks and customers of one ChartMogul account."""

    api_name = "chartmogul"
    # Used when a 429 carries no Retry-After (UNVERIFIED whether ChartMogul sends one): the
    # server's window is one second long.
    default_rate_limit_wait = 1.0

    def __init__(
        self, *, base_url: str, api_key: str, pacer: Pacer | None = None, **options: Unpack[HttpOptions]
    ) -> None:
        super().__init__(base_url=base_url, api_key=api_key, **options)
        self.pacer = pacer
        if pacer is not None:
            self.session.mount(self.base_url, _OnTime(pacer))

    @classmethod
    def from_settings(
        cls, settings: ChartMogulApiSettings, api_key: str, pacer: Pacer | None = None
    ) -> ChartMogulClient:
        """``pacer`` is the account-wide one (wiring builds it on the state table); without it the
        client paces only its own process at the account's rate."""
        return cls(
            base_url=settings.chartmogul_api_url,
            api_key=api_key,
            connect_timeout=settings.http_connect_timeout,
            read_timeout=settings.http_read_timeout,
            pacer=pacer or SharedPacer(MemorySchedule(), settings.chartmogul_requests_per_second),
        )

    # ----------------------------------------------------------------- transport
    def before_send(self, method: str, path: str) -> None:
        if self.pacer is not None:
            self.pacer.acquire(method, path)

    def classify(self, method: str, path: str, response: requests.Response) -> ApiError:
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        if response.status_code == 429:
            if self.pacer is not None:
                # The whole account is over the limit, not only this process: hold everyone.
                self.pacer.hold(retry_after if retry_after is not None else self.default_rate_limit_wait)
            return RateLimited(self.api_name, method, path, 429, response.text, retry_after=retry_after)
        error = super().classify(method, path, response)
        if isinstance(error, RetryableApiError) and retry_after is not None:
            error.retry_after = retry_after
        if type(error) is PermanentApiError:
            return _refusal(error)
        return error

    # ----------------------------------------------------------------- tasks
    def create_task(self, *, customer_uuid: str, fields: TaskFields) -> ChartMogulTask:
        payload: dict[str, Any] = {"customer_uuid": customer_uuid, **fields.as_payload()}
        if payload.get("completed_at") is None:
            # An open task: leave the field out rather than send null on create.
            payload.pop("completed_at", None)
        response = self.request("POST", "/tasks", json_body=payload, ok=(200, 201))
        return _task(self.json(response, "/tasks"))

    def get_task(self, task_uuid: str) -> ChartMogulTask:
        path = _task_path(task_uuid)
        return _task(self.json(self.request("GET", path), path))

    def list_tasks(self, *, cursor: str | None = None, **filters: Unpack[TaskFilters]) -> TaskPage:
        completed = filters.get("completed")
        params: dict[str, Any] = {
            **filters,
            "completed": None if completed is None else ("true" if completed else "false"),
            "cursor": cursor,
            "per_page": filters.get("per_page", MAX_PER_PAGE),
        }
        params = {key: value for key, value in params.items() if value is not None}
        data = self.json(self.request("GET", "/tasks", params=params), "/tasks")
        entries = _entries(data, "/tasks")
        return TaskPage(
            entries=[_task(entry) for entry in entries],
            cursor=data.get("cursor") or None,
            has_more=bool(data.get("has_more")),
        )

    def iter_tasks(self, **filters: Unpack[TaskFilters]) -> Iterator[ChartMogulTask]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = self.list_tasks(cursor=cursor, **filters)
            yield from page.entries
            if not page.has_more or page.cursor is None or page.cursor in seen:
                return
            seen.add(page.cursor)
            cursor = page.cursor

    def update_task(self, task_uuid: str, changes: dict[str, Any]) -> ChartMogulTask | None:
        if not changes:
            return None  # ChartMogul would answer 304 anyway; save the call.
        path = _task_path(task_uuid)
        # A None value is sent as JSON null: that is how a completed task is re-opened
        # (UNVERIFIED upstream; the engine verifies the echo).
        response = self.request("PATCH", path, json_body=changes, ok=(200, 304))
        if response.status_code == 304:
            return None
        return _task(self.json(response, path))

    def delete_task(self, task_uuid: str) -> bool:
        try:
            self.request("DELETE", _task_path(task_uuid), ok=(200, 202, 204))
        except NotFound:
            return False
        return True

    # ----------------------------------------------------------------- customers
    def search_customers_by_email(self, email: str) -> list[ChartMogulCustomer]:
        try:
            entries = self._all_entries("/customers/search", {"email": email})
        except NotFound:
            return []  # recorded: the search answers 404 when nothing matches
        return [_customer(entry) for entry in entries]

    def list_customers(self, *, external_id: str, data_source_uuid: str) -> list[ChartMogulCustomer]:
        entries = self._all_entries("/customers", {"external_id": external_id, "data_source_uuid": data_source_uuid})
        # An external_id is unique only within a data source; keep the filter on our side too
        # so that a server that ignored one of the parameters cannot hand us a stranger.
        return [
            _customer(entry)
            for entry in entries
            if _has(entry, "external_id", "external_ids", external_id)
            and _has(entry, "data_source_uuid", "data_source_uuids", data_source_uuid)
        ]

    def create_customer(
        self, *, data_source_uuid: str, external_id: str, name: str, email: str | None
    ) -> ChartMogulCustomer:
        payload: dict[str, Any] = {"data_source_uuid": data_source_uuid, "external_id": external_id, "name": name}
        if email:
            payload["email"] = email
        response = self.request("POST", "/customers", json_body=payload, ok=(200, 201))
        return _customer(self.json(response, "/customers"))

    def _all_entries(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page_params = {**params, "per_page": MAX_PER_PAGE, **({"cursor": cursor} if cursor else {})}
            data = self.json(self.request("GET", path, params=page_params), path)
            entries.extend(_entries(data, path))
            cursor = data.get("cursor") or None
            if not data.get("has_more") or cursor is None or cursor in seen:
                return entries
            seen.add(cursor)


# --------------------------------------------------------------------- error predicates
class _AssigneeAndCustomerRejected(AssigneeRejected, CustomerUnknown):
    """A refusal whose body names both: the engine tries each remedy in turn."""


def _refusal(error: PermanentApiError) -> PermanentApiError:
    """The typed refusal the engine acts on, or ``error`` itself."""
    kinds: list[type[PermanentApiError]] = []
    if assignee_rejected(error):
        kinds.append(AssigneeRejected)
    if customer_unknown(error):
        kinds.append(CustomerUnknown)
    if not kinds:
        return error
    kind = _AssigneeAndCustomerRejected if len(kinds) == 2 else kinds[0]
    return kind(error.api, error.method, error.path, error.status, error.body)


def customer_unknown(error: PermanentApiError) -> bool:
    """True for a 422 that names the customer: it was most likely deleted in ChartMogul.

    Not the 422 for a customer's taken external_id, which is about creating one.
    """
    return error.status == 422 and "customer" in error.body.lower() and not external_id_taken(error)


def assignee_rejected(error: PermanentApiError) -> bool:
    """True when ChartMogul refused the request because of the assignee.

    The rejection's body is UNVERIFIED, so every known error shape counts: ``param:
    "assignee"``, ``errors.assignee``, ``error_details[].param == "assignee"``, a Rails-style
    ``assignee`` key, or the word "assignee" in a message. 400 is accepted beside the
    expected 422 because the real status is not documented either.
    """
    return error.status in (400, 422) and _body_mentions(error.body, "assignee")


def external_id_taken(error: PermanentApiError) -> bool:
    """True for the 422 ChartMogul answers when a customer's external_id already exists."""
    text = error.body.lower()
    return (
        error.status == 422
        and _body_mentions(error.body, "external_id")
        and ("already exists" in text or "already been taken" in text)
    )


def _body_mentions(body: str, field: str) -> bool:
    # "external_id" should also match "external ID" in a message.
    word = re.compile(r"\b" + field.replace("_", r"[_ ]") + r"\b", re.IGNORECASE)
    try:
        data = json.loads(body)
    except ValueError:
        return word.search(body) is not None
    return _mentions(data, field, word)


def _mentions(node: Any, field: str, word: re.Pattern[str]) -> bool:
    if isinstance(node, dict):
        return any(key.lower() == field or _mentions(value, field, word) for key, value in node.items())
    if isinstance(node, list):
        return any(_mentions(item, field, word) for item in node)
    if isinstance(node, str):
        return word.search(node) is not None
    return False


# --------------------------------------------------------------------- parsing helpers
def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _task_path(task_uuid: str) -> str:
    return f"/tasks/{uuid_id(task_uuid, 'chartmogul.task_uuid')}"


def _task(data: Any) -> ChartMogulTask:
    return parse_model(ChartMogulTask, data, "chartmogul.task")


def _customer(data: Any) -> ChartMogulCustomer:
    return parse_model(ChartMogulCustomer, data, "chartmogul.customer")


def _entries(data: Any, path: str) -> list[dict[str, Any]]:
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise InvalidInput(f"chartmogul{path}.entries", "must be a list of objects")
    return entries


def _has(entry: dict[str, Any], single: str, plural: str, wanted: str) -> bool:
    values = entry.get(plural)
    return entry.get(single) == wanted or (isinstance(values, list) and wanted in values)
