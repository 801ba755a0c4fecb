"""The Close API client (implements `tasksync.logic.ports.CloseApi`).

Facts it relies on are in docs/upstream-apis.md: Basic auth with the key as the user name, the
event log's cursor paging capped at 50, task paging with `_skip`/`_limit` capped at 100, and
the `RateLimit` / `retry-after` headers on a 429. Long waits belong to the queue: only a GET
that Close asks to wait at most two seconds is retried here, once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Unpack

import requests

from tasksync.config import CloseApiSettings
from tasksync.dal._http import JsonApiClient
from tasksync.dal.path_ids import close_id
from tasksync.errors import ApiError, InvalidInput, RateLimited
from tasksync.models._parsing import parse_model
from tasksync.models.close import (
    DEFAULT_RATE_LIMIT_WAIT,
    CloseEvent,
    CloseLead,
    CloseTask,
    CloseUser,
    CloseWebhookSubscription,
)
from tasksync.models.event_log import EventLogQuery, EventPage, LogEntry

EVENT_PAGE_MAX = 50
TASK_PAGE_MAX = 100
# One call gives the contacts' emails and every custom field (upstream-apis.md, "Close tasks, leads and users").
LEAD_FIELDS = "id,name,display_name,date_created,contacts,custom"

# `reset=` in `RateLimit: limit=100, remaining=0, reset=0.5`. Close sends decimals, which the
# official client's `reset=(\d+)` misses. `t=` is the same value in the newer IETF draft form
# (`RateLimit: "default";r=0;t=5`), accepted in case Close moves to it.
_RESET_PATTERN = re.compile(r"(?:^|[\s,;])(?:reset|t)\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None  # e.g. an HTTP-date in retry-after: legal, but not worth a clock comparison
    return value if math.isfinite(value) and value >= 0 else None


def parse_rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait after a 429: the larger of `RateLimit` reset and `retry-after`.

    Returns None when neither header carries a number. Header names compare
    case-insensitively, whatever mapping the caller passes.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    waits: list[float] = []
    rate_limit = lowered.get("ratelimit")
    if rate_limit:
        match = _RESET_PATTERN.search(rate_limit)
        if match:
            waits.append(float(match.group(1)))
    for name in ("retry-after", "ratelimit-reset"):
        value = _seconds(lowered.get(name))
        if value is not None:
            waits.append(value)
    return max(waits) if waits else None


def _iso(moment: datetime) -> str:
    # A naive datetime is taken as UTC, like Close's own naive event timestamps.
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat(timespec="microseconds")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(where, "must be a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(where, "must be a list")
    return value


def _log_entry(item: Any, where: str) -> LogEntry:
    try:
        return LogEntry(item, parse_model(CloseEvent, item, where))
    except InvalidInput as exc:
        return LogEntry(item, None, str(exc))


class CloseClient(JsonApiClient):
    """Close over HTTP. Methods raise the typed errors of `tasksync.errors`."""

    api_name = "close"
    default_rate_limit_wait = DEFAULT_RATE_LIMIT_WAIT

    @classmethod
    def from_settings(cls, settings: CloseApiSettings, api_key: str) -> CloseClient:
        return cls(
            base_url=settings.close_api_url,
            api_key=api_key,
            connect_timeout=settings.http_connect_timeout,
            read_timeout=settings.http_read_timeout,
        )

    # ----------------------------------------------------------------- HTTP
    def classify(self, method: str, path: str, response: requests.Response) -> ApiError:
        if response.status_code == 429:
            wait = parse_rate_limit_wait(response.headers)
            return RateLimited(
                self.api_name,
                method,
                path,
                429,
                response.text,
                retry_after=DEFAULT_RATE_LIMIT_WAIT if wait is None else wait,
            )
        return super().classify(method, path, response)

    def _get_object(self, path: str, where: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return _object(self.json(self.request("GET", path, params=params), path), where)

    # ----------------------------------------------------------------- tasks, users, leads
    def get_task(self, task_id: str) -> CloseTask:
        data = self._get_object(f"/task/{close_id(None, task_id, 'close.task.id')}/", "close.task")
        return parse_model(CloseTask, data, "close.task")

    def get_user(self, user_id: str) -> CloseUser:
        data = self._get_object(f"/user/{close_id('user', user_id, 'close.user.id')}/", "close.user")
        return parse_model(CloseUser, data, "close.user")

    def get_lead(self, lead_id: str) -> CloseLead:
        data = self._get_object(
            f"/lead/{close_id('lead', lead_id, 'close.lead.id')}/", "close.lead", {"_fields": LEAD_FIELDS}
        )
        return parse_model(CloseLead, data, "close.lead")

    def set_task_complete(self, task_id: str, is_complete: bool) -> CloseTask:
        """`PUT /task/{id}/` with `is_complete` only (Close patches), for the sync-back.

        Close answers with the whole task, its `date_updated` moved on; it logs the change and
        sends the webhook like any edit, which is how the sync-back's own write comes back.
        """
        path = f"/task/{close_id(None, task_id, 'close.task.id')}/"
        response = self.request("PUT", path, json_body={"is_complete": is_complete})
        return parse_model(CloseTask, _object(self.json(response, path), "close.task"), "close.task")

    def iter_tasks(
        self, *, task_types: frozenset[str], date_updated_gte: datetime | None = None, limit: int = 100
    ) -> Iterator[CloseTask]:
        if not task_types:
            return
        params: dict[str, Any] = {
            "_limit": min(max(limit, 1), TASK_PAGE_MAX),
            # A fixed order keeps `_skip` paging stable while tasks are being edited.
            "_order_by": "date_created",
        }
        if "all" in task_types:
            params["_type"] = "all"
        elif len(task_types) == 1:
            params["_type"] = next(iter(task_types))
        else:
            params["_type__in"] = ",".join(sorted(task_types))
        if date_updated_gte is not None:
            params["date_updated__gte"] = _iso(date_updated_gte)
        skip = 0
        while True:
            body = self._get_object("/task/", "close.tasks", {**params, "_skip": skip})
            page = _list(body.get("data"), "close.tasks.data")
            for index, item in enumerate(page):
                yield parse_model(CloseTask, item, f"close.tasks.data.{index}")
            if not body.get("has_more") or not page:
                return
            skip += len(page)

    # ----------------------------------------------------------------- event log
    def event_pages(self, **query: Unpack[EventLogQuery]) -> Iterator[EventPage]:
        """The event log between two `date_updated` bounds, one page per request, newest first.

        Each entry is parsed on its own: a malformed entry comes back as a `LogEntry` with its
        problem, so that one bad entry never hides the others. A page that is malformed as a
        whole (no `data` list, a bad cursor) raises InvalidInput; HTTP failures raise the typed
        errors of `tasksync.errors`, after the pages before them were yielded.
        """
        # Close: "you still need to supply any other filters (except for `date_updated`) that
        # were used in the previous query". We keep date_updated too: it is harmless and
        # bounds the scan should a cursor ever be ignored.
        params: dict[str, Any] = {
            "object_type": query["object_type"],
            "action": query["action"],
            "date_updated__gte": _iso(query["date_updated_gte"]),
            "_limit": min(max(query.get("limit", EVENT_PAGE_MAX), 1), EVENT_PAGE_MAX),
        }
        until = query.get("date_updated_lte")
        if until is not None:
            params["date_updated__lte"] = _iso(until)
        seen_cursors: set[str] = set()
        cursor: str | None = None
        number = 0
        while True:
            page_params = {**params, "_cursor": cursor} if cursor else params
            body = self._get_object("/event/", "close.events", page_params)
            page = _list(body.get("data"), "close.events.data")
            number += 1
            next_cursor = body.get("cursor_next")
            if next_cursor is not None and not isinstance(next_cursor, str):
                raise InvalidInput("close.events.cursor_next", "must be a string or null")
            more = bool(next_cursor and page)
            yield EventPage(number, [_log_entry(item, f"close.events.data.{i}") for i, item in enumerate(page)], more)
            if not next_cursor or not page:
                return
            if next_cursor in seen_cursors:
                # A cursor that comes back would page forever.
                raise InvalidInput("close.events.cursor_next", "repeats an earlier cursor")
            seen_cursors.add(next_cursor)
            cursor = next_cursor

    def get_event(self, event_id: str) -> dict[str, Any]:
        """One event-log entry, raw (`GET /event/{id}/`); raises NotFound once it has expired."""
        data = self._get_object(f"/event/{close_id('ev', event_id, 'close.event.id')}/", "close.event")
        parse_model(CloseEvent, data, "close.event")
        return data

    # ----------------------------------------------------------------- webhook subscriptions
    def create_webhook(self, *, url: str, events: list[dict[str, str]]) -> CloseWebhookSubscription:
        response = self.request("POST", "/webhook/", json_body={"url": url, "events": events}, ok=(200, 201))
        return parse_model(CloseWebhookSubscription, self.json(response, "/webhook/"), "close.webhook")

    def get_webhook(self, subscription_id: str) -> CloseWebhookSubscription:
        data = self._get_object(f"/webhook/{close_id('whsub', subscription_id, 'close.webhook.id')}/", "close.webhook")
        return parse_model(CloseWebhookSubscription, data, "close.webhook")

    def list_webhooks(self) -> list[CloseWebhookSubscription]:
        # At most 40 subscriptions per organization (upstream-apis.md): one page holds them all.
        page = _list(self._get_object("/webhook/", "close.webhooks").get("data"), "close.webhooks.data")
        return [
            parse_model(CloseWebhookSubscription, item, f"close.webhooks.data.{index}")
            for index, item in enumerate(page)
        ]

    def update_webhook(self, subscription_id: str, **changes: Any) -> CloseWebhookSubscription:
        """PUT only ``changes`` (`url`, `events`, `status`, `verify_ssl`); Close patches."""
        path = f"/webhook/{close_id('whsub', subscription_id, 'close.webhook.id')}/"
        response = self.request("PUT", path, json_body=changes)
        return parse_model(CloseWebhookSubscription, self.json(response, path), "close.webhook")

    def delete_webhook(self, subscription_id: str) -> None:
        """DELETE; raises NotFound when the subscription is already gone."""
        self.request("DELETE", f"/webhook/{close_id('whsub', subscription_id, 'close.webhook.id')}/", ok=(200, 204))


if TYPE_CHECKING:
    from tasksync.logic.ports import CloseApi

    def _implements_port(client: CloseClient) -> CloseApi:
        # mypy proves here that CloseClient satisfies the CloseApi Protocol.
        return client


__all__ = ["CloseClient", "parse_rate_limit_wait"]
