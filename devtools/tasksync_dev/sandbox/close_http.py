"""The Close simulator's HTTP routes: the calls tasksync's Close client makes, under ``/api/v1``.

Tasks, users, leads, task-completed activities, the event log and webhook subscriptions, with
Close's paging, filters, errors and `RateLimit` header, over the stores of close_state; the query
parameters are parsed by close_query.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

from tasksync_dev.sandbox._server import RateWindow, Request, Response
from tasksync_dev.sandbox.close_event_log import BASE_PATH, bad_request, event_time, parse_time
from tasksync_dev.sandbox.close_query import (
    EVENT_FILTER_KEYS,
    SUPPORTED_EVENT_FILTERS,
    BadQuery,
    decode_event_cursor,
    encode_event_cursor,
    int_param,
    time_filters,
)
from tasksync_dev.sandbox.close_state import CloseState

EVENT_PAGE_MAX = 50  # "capped at and defaulting to 50" (upstream-apis.md, "Close event log")
TASK_PAGE_MAX = 100  # `_limit` default 100; above it Close answers 400 (upstream-apis.md)
PRIVATE_DATA_SECONDS = 3600  # non-admins see event `data` for one hour only (upstream-apis.md)
NOMINAL_RATE_LIMIT = 100.0  # what the RateLimit header advertises when no limit is configured


class CloseRateWindow(RateWindow):
    """The base sliding window, plus what Close's `RateLimit` header reports about it."""

    def state(self) -> tuple[float, float, float]:
        """(limit, remaining, seconds until a slot frees up) for the `RateLimit` header."""
        limit = self.limit if self.limit is not None else NOMINAL_RATE_LIMIT
        now = time.monotonic()
        with self._lock:
            live = [stamp for stamp in self._stamps if now - stamp < 1.0]
        reset = 1.0 - (now - live[0]) if live else 1.0
        return limit, max(0.0, limit - len(live)), max(0.001, reset)


class CloseSimulator(CloseState):
    """Close over HTTP, plus a Python control API that records the events Close would log."""

    name = "close-simulator"

    def __init__(
        self,
        *,
        api_key: str = "close-sandbox-key",
        rate_limit_per_second: float | None = None,
        admin: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(
            api_key=api_key, rate_limit_per_second=rate_limit_per_second, admin=admin, host=host, port=port
        )
        self.rate_window: CloseRateWindow = CloseRateWindow(rate_limit_per_second)
        self._register_routes()

    # ================================================================= HTTP: gate overrides
    def unauthorized(self) -> Response:
        # Never echo the key that was sent.
        return Response(401, {"error": "The API key you provided is invalid."})

    def not_found(self) -> Response:
        return Response(404, {"error": "Not found"})

    def _rate_limit_header(self) -> str:
        limit, remaining, reset = self.rate_window.state()
        return f"limit={limit:g}, remaining={remaining:g}, reset={reset:.3g}"

    def rate_limited(self) -> Response:
        """429 with both headers Close guarantees (upstream-apis.md, "Close authentication and rate limits").

        ``reset`` is a decimal number of seconds; ``retry-after`` is whole seconds (RFC 7231).
        The body keeps the historic ``error.rate_reset`` shape old clients read.
        """
        limit, _remaining, reset = self.rate_window.state()
        header = f"limit={limit:g}, remaining=0, reset={reset:.3g}"
        body = {"error": {"message": "API call count exceeded for this period", "rate_reset": round(reset, 3)}}
        return Response(429, body, {"RateLimit": header, "retry-after": str(max(1, math.ceil(reset)))})

    # ================================================================= HTTP: routes
    def _register_routes(self) -> None:
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", "/task/", self._http_list_tasks),
            ("POST", "/task/", self._http_create_task),
            ("GET", "/task/(?P<id>[^/]+)/", self._http_get_task),
            ("PUT", "/task/(?P<id>[^/]+)/", self._http_update_task),
            ("DELETE", "/task/(?P<id>[^/]+)/", self._http_delete_task),
            ("GET", "/me/", self._http_me),
            ("GET", "/user/", self._http_list_users),
            ("GET", "/user/(?P<id>[^/]+)/", self._http_get_user),
            ("GET", "/lead/(?P<id>[^/]+)/", self._http_get_lead),
            ("GET", "/activity/task_completed/", self._http_list_activities),
            ("GET", "/event/", self._http_list_events),
            ("GET", "/event/(?P<id>[^/]+)/", self._http_get_event),
            ("GET", "/webhook/", self._http_list_webhooks),
            ("POST", "/webhook/", self._http_create_webhook),
            ("GET", "/webhook/(?P<id>[^/]+)/", self._http_get_webhook),
            ("PUT", "/webhook/(?P<id>[^/]+)/", self._http_update_webhook),
            ("DELETE", "/webhook/(?P<id>[^/]+)/", self._http_delete_webhook),
        ]
        for method, pattern, handler in routes:
            self.route(method, BASE_PATH + pattern, self._answering(handler))

    def _answering(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Wrap a handler: query errors become 400s, and every answer carries `RateLimit`."""

        def wrapped(request: Request) -> Response:
            try:
                response = handler(request)
            except BadQuery as exc:
                response = bad_request(exc.message, {exc.field: exc.message})
            response.headers.setdefault("RateLimit", self._rate_limit_header())
            return response

        return wrapped

    # ----------------------------------------------------------------- tasks
    def _http_get_task(self, request: Request) -> Response:
        task = self._tasks.get(request.match["id"])
        return Response(200, copy.deepcopy(task)) if task else self.not_found()

    def _http_list_tasks(self, request: Request) -> Response:
        query = request.query
        limit = int_param(query, "_limit", TASK_PAGE_MAX, TASK_PAGE_MAX)
        skip = int_param(query, "_skip", 0, 10**9)
        if "_type__in" in query:
            types: set[str] | None = {t.strip() for t in query["_type__in"].split(",") if t.strip()}
        else:
            # "When not filtering by `_type`, only `lead` tasks are returned." (Close tasks)
            wanted = query.get("_type", "lead")
            types = None if wanted == "all" else {wanted}
        created_checks = time_filters(query, "date_created")
        updated_checks = time_filters(query, "date_updated")
        is_complete = query.get("is_complete")
        matching = [
            task
            for task in self._tasks.values()
            if (types is None or task["_type"] in types)
            and ("lead_id" not in query or task["lead_id"] == query["lead_id"])
            and ("assigned_to" not in query or task["assigned_to"] == query["assigned_to"])
            and (is_complete is None or task["is_complete"] == (is_complete.lower() == "true"))
            and all(check(parse_time(task["date_created"])) for check in created_checks)
            and all(check(parse_time(task["date_updated"])) for check in updated_checks)
        ]
        matching.sort(key=lambda task: (task["date_created"], task["id"]))
        page = matching[skip : skip + limit]
        return Response(200, {"data": copy.deepcopy(page), "has_more": skip + limit < len(matching)})

    def _http_create_task(self, request: Request) -> Response:
        body = request.body
        if not isinstance(body, dict):
            return bad_request("Request body must be a JSON object")
        task_type = body.get("_type", "lead")
        errors = {name: "This field is required." for name in ("lead_id", "text") if not body.get(name)}
        if task_type not in ("lead", "outgoing_call"):
            errors["_type"] = "Only tasks of type lead and outgoing_call can be created."
        if body.get("lead_id") and body["lead_id"] not in self._leads:
            errors["lead_id"] = "Object does not exist."
        if body.get("assigned_to") and body["assigned_to"] not in self._users:
            errors["assigned_to"] = "Object does not exist."
        if errors:
            return bad_request("Invalid task", errors)
        task = self.create_task(
            lead_id=body["lead_id"],
            text=body["text"],
            assigned_to=body.get("assigned_to"),
            date=body.get("date"),
            task_type=task_type,
            is_complete=bool(body.get("is_complete", False)),
        )
        return Response(200, task)  # Close answers 200 (not 201) to a task create (Close's OpenAPI description)

    def _http_update_task(self, request: Request) -> Response:
        task_id = request.match["id"]
        if task_id not in self._tasks:
            return self.not_found()
        body = request.body
        allowed = {"assigned_to", "date", "is_complete", "text"}
        if not isinstance(body, dict) or set(body) - allowed:
            return bad_request("Only assigned_to, date, is_complete and text may be updated")
        logged = len(self._events)
        try:
            updated = self.update_task(task_id, **body)
        except KeyError as exc:
            return bad_request("Invalid task", {"assigned_to": f"Object does not exist: {exc}"})
        if self.webhook_sender is not None:
            self.webhook_sender(copy.deepcopy(self._events[logged:]))
        return Response(200, updated)

    def _http_delete_task(self, request: Request) -> Response:
        task_id = request.match["id"]
        if task_id not in self._tasks:
            return self.not_found()
        self.delete_task(task_id)
        return Response(200, {})

    # ----------------------------------------------------------------- users, leads, activities
    def _http_get_user(self, request: Request) -> Response:
        user = self._users.get(request.match["id"])
        return Response(200, copy.deepcopy(user)) if user else self.not_found()

    def _http_me(self, _request: Request) -> Response:
        """The key's own user, as Close's `GET /me/` (what `make run` checks a key with)."""
        return Response(200, {"id": "user_sandbox_api", "email": "api@sandbox.example", "organizations": []})

    def _http_list_users(self, request: Request) -> Response:
        limit = int_param(request.query, "_limit", 100, 100)
        skip = int_param(request.query, "_skip", 0, 10**9)
        users = sorted(self._users.values(), key=lambda u: (u["last_name"], u["first_name"], u["id"]))
        return Response(200, {"data": copy.deepcopy(users[skip : skip + limit]), "has_more": skip + limit < len(users)})

    def _http_get_lead(self, request: Request) -> Response:
        lead = self._leads.get(request.match["id"])
        if lead is None:
            return self.not_found()
        view = self._lead_view(lead)
        fields = [f.strip() for f in request.query.get("_fields", "").split(",") if f.strip()]
        if fields:
            # `custom` selects every `custom.cf_...` key; `custom.cf_x` selects one (Close leads).
            view = {
                key: value
                for key, value in view.items()
                if key in fields or ("custom" in fields and key.startswith("custom."))
            }
        return Response(200, view)

    def _http_list_activities(self, request: Request) -> Response:
        query = request.query
        limit = int_param(query, "_limit", 100, 100)
        skip = int_param(query, "_skip", 0, 10**9)
        created_checks = time_filters(query, "date_created")
        matching = [
            activity
            for activity in self._activities.values()
            if ("lead_id" not in query or activity["lead_id"] == query["lead_id"])
            and ("user_id" not in query or activity["user_id"] == query["user_id"])
            and all(check(parse_time(activity["date_created"])) for check in created_checks)
        ]
        matching.sort(key=lambda activity: (activity["date_created"], activity["id"]), reverse=True)
        page = matching[skip : skip + limit]
        return Response(200, {"data": copy.deepcopy(page), "has_more": skip + limit < len(matching)})

    # ----------------------------------------------------------------- event log
    def _event_view(self, index: int) -> dict[str, Any]:
        event = copy.deepcopy(self._events[index])
        age = (self._now() - self._event_times[index]).total_seconds()
        if not self.admin and age >= PRIVATE_DATA_SECONDS:
            # "For non-admins, this field is only returned for events less than one hour old."
            event["data"] = None
        return event

    def _http_get_event(self, request: Request) -> Response:
        for index, event in enumerate(self._events):
            if event["id"] == request.match["id"]:
                return Response(200, self._event_view(index))
        return self.not_found()

    def _http_list_events(self, request: Request) -> Response:
        query = request.query
        limit = int_param(query, "_limit", EVENT_PAGE_MAX, EVENT_PAGE_MAX)
        filters = {key: query[key] for key in EVENT_FILTER_KEYS if query.get(key)}
        if frozenset(filters) not in SUPPORTED_EVENT_FILTERS:
            return bad_request(
                f"Unsupported filter combination: {', '.join(sorted(filters))}",
                dict.fromkeys(filters, "Unsupported combination of filters."),
            )
        checks = time_filters(query, "date_updated")
        start = len(self._events) - 1
        if query.get("_cursor"):
            start = decode_event_cursor(query["_cursor"])
        page: list[dict[str, Any]] = []
        cursor_next: str | None = None
        # Newest first. Times strictly increase along the log, so index order is time order
        # and a cursor is simply the index to continue below.
        for index in range(min(start, len(self._events) - 1), -1, -1):
            event = self._events[index]
            if not all(event[key] == value for key, value in filters.items()):
                continue
            if not all(check(self._event_times[index]) for check in checks):
                continue
            if len(page) == limit:
                cursor_next = encode_event_cursor(index)
                break
            page.append(self._event_view(index))
        return Response(200, {"data": page, "cursor_next": cursor_next, "cursor_previous": None})

    # ----------------------------------------------------------------- webhooks
    def _http_list_webhooks(self, request: Request) -> Response:
        data = sorted(self._subscriptions.values(), key=lambda s: s["date_created"])
        return Response(200, {"data": copy.deepcopy(data), "has_more": False})

    def _http_create_webhook(self, request: Request) -> Response:
        return self._create_subscription(request.body)

    def _http_get_webhook(self, request: Request) -> Response:
        subscription = self._subscriptions.get(request.match["id"])
        return Response(200, copy.deepcopy(subscription)) if subscription else self.not_found()

    def _http_update_webhook(self, request: Request) -> Response:
        subscription = self._subscriptions.get(request.match["id"])
        if subscription is None:
            return self.not_found()
        problem = self._subscription_problem(request.body, creating=False)
        if problem:
            return problem
        changes: dict[str, Any] = dict(request.body)
        if "events" in changes:
            changes["events"] = [self._selector(item) for item in changes["events"]]
        if changes.get("status") == "paused" and subscription["status"] != "paused":
            changes["pause_reason"] = "api"  # a pause through the API (upstream-apis.md)
        elif changes.get("status") == "active":
            changes["pause_reason"] = None
        subscription.update(changes, date_updated=event_time(self._tick()))
        return Response(200, copy.deepcopy(subscription))

    def _http_delete_webhook(self, request: Request) -> Response:
        if self._subscriptions.pop(request.match["id"], None) is None:
            return self.not_found()
        return Response(200, {})
