"""An HTTP simulator of the parts of the ChartMogul API that tasksync uses.

It follows docs/upstream-apis.md (the ChartMogul sections): tasks (create, retrieve, list with cursor
paging, patch with 304, delete), customers (search by email, list by external id, create),
ping, and the documented limits (40 requests/s -> 429, 20 parallel requests -> 503).

Where the real API's behaviour is not documented, the simulator can play both possibilities,
chosen by constructor flags, so the client and the engine are tested against each:
``reopen_via_null``, ``delete_missing_status``, ``echo_due_date_as_timestamp`` and
``retry_after_header``. Error bodies deliberately use the API's several shapes ("ChartMogul
errors and rate limits") so that nothing downstream can get away with parsing only one of them.

This module is the HTTP half; the stores and the Python control API are in chartmogul_state.
"""

from __future__ import annotations

import base64
import binascii
import operator
import uuid as uuid_module
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from tasksync.models.chartmogul import TASK_DETAILS_MAX, UPDATABLE_TASK_FIELDS
from tasksync_dev.sandbox._server import Request, Response
from tasksync_dev.sandbox.chartmogul_state import ChartMogulState, iso_ms

MAX_PER_PAGE = 200


class _InvalidDate(ValueError):
    pass


def _parse_when(text: Any) -> tuple[datetime, bool]:
    """Parse an ISO date or datetime; return (UTC datetime, was_date_only)."""
    if not isinstance(text, str) or len(text.strip()) < 10:
        raise _InvalidDate(text)
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _InvalidDate(text) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC), False


def _code_error(status: int, message: str, param: str | None = None) -> Response:
    # Shape recorded on 401/404 (upstream-apis.md, "ChartMogul errors"): {"code", "message", "param"}.
    return Response(status, {"code": status, "message": message, "param": param})


def _rails_error(details: list[tuple[str, str, str]]) -> Response:
    # Rails-style 422 seen on plan groups: per-field message lists plus `error_details`.
    body: dict[str, Any] = {}
    for param, _code, message in details:
        body.setdefault(param, []).append(message)
    body["error_details"] = [{"param": p, "code": c, "message": m} for p, c, m in details]
    return Response(422, body)


def _legacy_errors(errors: dict[str, str]) -> Response:
    # Legacy import-API 422 shape: {"errors": {field: message}}.
    return Response(422, {"errors": errors})


def _encode_cursor(key: tuple[str, str]) -> str:
    # Real cursors decode to "<created_at with ns>&<id>"; clients must treat them as opaque.
    return base64.b64encode(f"{key[0]}&{key[1]}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str] | None:
    try:
        created, _, ident = base64.b64decode(cursor, validate=True).decode().partition("&")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (created, ident) if created and ident else None


class ChartMogulSimulator(ChartMogulState):
    """ChartMogul tasks and customers over HTTP, with a thread-safe Python control API (ChartMogulState)."""

    name = "chartmogul-simulator"

    def __init__(
        self,
        *,
        api_key: str = "chartmogul-sandbox-key",
        rate_limit_per_second: float | None = 40.0,
        max_parallel: int | None = 20,
        reopen_via_null: bool = True,
        delete_missing_status: int = 404,
        echo_due_date_as_timestamp: bool = True,
        retry_after_header: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if delete_missing_status not in (200, 404):
            raise ValueError("delete_missing_status must be 200 or 404")
        super().__init__(
            api_key=api_key,
            host=host,
            port=port,
            rate_limit_per_second=rate_limit_per_second,
            max_parallel=max_parallel,
        )
        self.reopen_via_null = reopen_via_null
        self.delete_missing_status = delete_missing_status
        self.echo_due_date_as_timestamp = echo_due_date_as_timestamp
        self.retry_after_header = retry_after_header
        self._register_routes()

    # ----------------------------------------------------------------- hooks: ChartMogul's bodies
    def unauthorized(self) -> Response:
        return _code_error(401, "No valid API key provided")

    def rate_limited(self) -> Response:
        # The message is documented; the body shape and Retry-After are UNVERIFIED (no 429 was
        # ever recorded), hence the switch.
        response = _code_error(429, "Your request rate has exceeded our rate limit.")
        if self.retry_after_header:
            response.headers["Retry-After"] = "1"
        return response

    def too_many_parallel(self) -> Response:
        return _code_error(503, "Too many parallel connections. Please don't exceed 20 parallel connections.")

    def not_found(self) -> Response:
        # Legacy shape, as recorded for unknown data sources (upstream-apis.md, "ChartMogul errors").
        return Response(404, {"error": "Not found"})

    # ----------------------------------------------------------------- routing
    def _register_routes(self) -> None:
        task = r"/v1/tasks/(?P<task_uuid>[^/]+)"
        self.route("GET", r"/v1/ping", lambda _r: Response(200, {"data": "pong!"}))
        self.route("POST", r"/v1/tasks", self._create_task)
        self.route("GET", r"/v1/tasks", self._list_tasks)
        self.route("GET", task, self._get_task)
        self.route("PATCH", task, self._patch_task)
        self.route("DELETE", task, self._delete_task)
        self.route("GET", r"/v1/customers/search", self._search_customers)
        self.route("GET", r"/v1/customers", self._list_customers)
        self.route("POST", r"/v1/customers", self._create_customer)

    # ----------------------------------------------------------------- paging and validation (lock held)
    def _page(
        self, items: Iterable[dict[str, Any]], ident: Callable[[dict[str, Any]], str], query: dict[str, str]
    ) -> Response:
        """Newest first, ``per_page`` at a time, continuing strictly after ``cursor``."""
        raw_per_page = query.get("per_page", "")
        try:
            per_page = int(raw_per_page) if raw_per_page else MAX_PER_PAGE
        except ValueError:
            return _code_error(400, "per_page must be a positive integer", "per_page")
        if per_page < 1:
            return _code_error(400, "per_page must be a positive integer", "per_page")
        per_page = min(per_page, MAX_PER_PAGE)  # documented: higher values clamp to 200
        ordered = sorted(items, key=lambda item: self._sort_keys[ident(item)], reverse=True)
        if query.get("cursor"):
            after = _decode_cursor(query["cursor"])
            if after is None:
                return _code_error(400, "Invalid cursor", "cursor")
            ordered = [item for item in ordered if self._sort_keys[ident(item)] < after]
        page = ordered[:per_page]
        has_more = len(ordered) > per_page
        cursor = _encode_cursor(self._sort_keys[ident(page[-1])]) if page and has_more else None
        return Response(
            200,
            {
                "entries": [dict(item) for item in page],
                "cursor": cursor,
                "has_more": has_more,
                "per_page": per_page,
            },
        )

    def _echo_when(self, text: str) -> str:
        """How ChartMogul echoes a due_date/completed_at it accepted."""
        if not self.echo_due_date_as_timestamp:
            return text  # what the docs examples show
        moment, _ = _parse_when(text)
        return iso_ms(moment)  # what the recorded traffic shows: "2025-04-30T00:00:00.000Z"

    def _validate_task_fields(self, body: dict[str, Any], *, creating: bool) -> Response | dict[str, Any]:
        """Check the task fields present in ``body``; return the echo values or an error."""
        details: list[tuple[str, str, str]] = []
        values: dict[str, Any] = {}
        if "task_details" in body or creating:
            text = body.get("task_details")
            if not isinstance(text, str) or not text.strip():
                details.append(("task_details", "blank", "Task details can't be blank"))
            elif len(text) > TASK_DETAILS_MAX:
                message = f"Task details is too long (maximum is {TASK_DETAILS_MAX} characters)"
                details.append(("task_details", "too_long", message))
            else:
                values["task_details"] = text
        self._check_dates(body, creating, details, values)
        for field, label in (("customer_uuid", "Customer uuid"), ("assignee", "Assignee")):
            if (field in body or creating) and not (isinstance(body.get(field), str) and body[field]):
                details.append((field, "blank", f"{label} can't be blank"))
        if details:
            return _rails_error(details)
        if creating and body["customer_uuid"] not in self.customers:
            # UNVERIFIED: no recorded body for an unknown customer.
            return _code_error(422, "Customer not found", "customer_uuid")
        if "assignee" in body:
            if body["assignee"].strip().lower() not in self.users:
                # UNVERIFIED: no recorded body for an assignee who is not a ChartMogul user.
                return _code_error(422, "Assignee is not a valid user", "assignee")
            values["assignee"] = body["assignee"]
        return values

    def _check_dates(
        self, body: dict[str, Any], creating: bool, details: list[tuple[str, str, str]], values: dict[str, Any]
    ) -> None:
        for field, label, required in (("due_date", "Due date", True), ("completed_at", "Completed at", False)):
            if field not in body and not (creating and required):
                continue
            raw = body.get(field)
            if raw is None:
                if required:
                    details.append((field, "blank", f"{label} can't be blank"))
                else:
                    values[field] = None
                continue
            try:
                values[field] = self._echo_when(raw)
            except _InvalidDate:
                details.append((field, "invalid", f"{label} is not a valid ISO 8601 date"))

    # ----------------------------------------------------------------- task handlers
    def _create_task(self, request: Request) -> Response:
        if not isinstance(request.body, dict):
            return _code_error(400, "The request body must be a JSON object")
        checked = self._validate_task_fields(request.body, creating=True)
        if isinstance(checked, Response):
            return checked
        created = self._next_created()
        stamp = iso_ms(created)
        task_uuid = str(uuid_module.uuid4())
        task = {
            "task_uuid": task_uuid,
            "customer_uuid": request.body["customer_uuid"],
            "task_details": checked["task_details"],
            "assignee": checked["assignee"],
            "due_date": checked["due_date"],
            "completed_at": checked.get("completed_at"),
            "created_at": stamp,
            "updated_at": stamp,
        }
        self.tasks[task_uuid] = task
        self._sort_keys[task_uuid] = (created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), task_uuid)
        return Response(201, dict(task))

    def _get_task(self, request: Request) -> Response:
        task = self.tasks.get(request.match["task_uuid"])
        if task is None:
            return _code_error(404, "Task not found")
        return Response(200, dict(task))

    def _list_tasks(self, request: Request) -> Response:
        query = request.query
        tasks: Iterable[dict[str, Any]] = self.tasks.values()
        if query.get("customer_uuid"):
            tasks = [t for t in tasks if t["customer_uuid"] == query["customer_uuid"]]
        if query.get("assignee"):
            wanted = query["assignee"].strip().lower()
            tasks = [t for t in tasks if (t["assignee"] or "").lower() == wanted]
        for param, keep_if in (("due_date_on_or_after", operator.ge), ("due_date_on_or_before", operator.le)):
            if not query.get(param):
                continue
            try:
                bound, date_only = _parse_when(query[param])
            except _InvalidDate:
                return _code_error(400, f"{param} must be an ISO 8601 date", param)
            tasks = [t for t in tasks if keep_if(*self._comparable_due(t, bound, date_only=date_only))]
        if query.get("completed"):
            flag = query["completed"].lower()
            if flag not in ("true", "false"):
                return _code_error(400, "completed must be true or false", "completed")
            tasks = [t for t in tasks if (t["completed_at"] is not None) == (flag == "true")]
        response = self._page(tasks, lambda t: str(t["task_uuid"]), query)
        if isinstance(response.body, dict):
            response.body.pop("per_page", None)  # the tasks list answers only entries/cursor/has_more
        return response

    @staticmethod
    def _comparable_due(task: dict[str, Any], bound: datetime, *, date_only: bool) -> tuple[Any, Any]:
        # A date-only bound compares by calendar date (UTC), so "on or before 2025-04-30"
        # includes a task due at 15:00 that day; a datetime bound compares instants.
        # The real API's rule is not documented; this is the reading that loses no task.
        due, _ = _parse_when(task["due_date"])
        if date_only:
            return due.date(), bound.date()
        return due, bound

    def _patch_task(self, request: Request) -> Response:
        task = self.tasks.get(request.match["task_uuid"])
        if task is None:
            return _code_error(404, "Task not found")
        body = request.body if isinstance(request.body, dict) else {}
        present = {k: v for k, v in body.items() if k in UPDATABLE_TASK_FIELDS}
        if "completed_at" in present and present["completed_at"] is None and not self.reopen_via_null:
            # UNVERIFIED upstream whether a JSON null re-opens a task; this mode ignores it.
            del present["completed_at"]
        if not present:
            return Response(304)  # documented by the SDKs: no updatable field -> 304, empty body
        checked = self._validate_task_fields(present, creating=False)
        if isinstance(checked, Response):
            return checked
        if all(task[name] == value for name, value in checked.items()):
            return Response(304)
        task.update(checked)
        task["updated_at"] = iso_ms(self._next_created())
        return Response(200, dict(task))

    def _delete_task(self, request: Request) -> Response:
        task_uuid = request.match["task_uuid"]
        if self.tasks.pop(task_uuid, None) is None:
            # UNVERIFIED upstream: a second DELETE may answer 404 or 200.
            if self.delete_missing_status == 404:
                return _code_error(404, "Task not found")
            return Response(200, {})
        self.deleted_task_uuids.add(task_uuid)
        return Response(200, {})

    # ----------------------------------------------------------------- customer handlers
    def _search_customers(self, request: Request) -> Response:
        email = request.query.get("email", "")
        if not email:
            return _code_error(400, "email is required", "email")
        matches = [c for c in self.customers.values() if c["email"] and c["email"].lower() == email.strip().lower()]
        if not matches:
            # Recorded: the search answers 404, not an empty list.
            return _code_error(404, f'Can\'t find any customers with email: "{email}"', "email")
        return self._page(matches, lambda c: str(c["uuid"]), request.query)

    def _list_customers(self, request: Request) -> Response:
        query = request.query
        matches = self._customers_matching(query.get("external_id") or None, query.get("data_source_uuid") or None)
        # Recorded: no match is 200 with empty entries; several data sources may share an external_id.
        return self._page(matches, lambda c: str(c["uuid"]), query)

    def _create_customer(self, request: Request) -> Response:
        body = request.body if isinstance(request.body, dict) else {}
        missing = {
            field: message
            for field, message in (
                ("data_source_uuid", "A data source is required for each customer."),
                ("external_id", "An external ID is required for each customer."),
                ("name", "A name is required for each customer."),
            )
            if not (isinstance(body.get(field), str) and body[field].strip())
        }
        if missing:
            return _legacy_errors(missing)
        if body["data_source_uuid"] not in self.data_sources:
            return _legacy_errors({"data_source_uuid": "The data source could not be found."})
        if self._customers_matching(body["external_id"], body["data_source_uuid"]):
            # Recorded wording (Go SDK error constants).
            return _legacy_errors({"external_id": "The external ID for this customer already exists in our system."})
        customer = self._insert_customer(
            uuid=None,
            name=body["name"],
            email=body.get("email") if isinstance(body.get("email"), str) else None,
            external_id=body["external_id"],
            data_source_uuid=body["data_source_uuid"],
        )
        if isinstance(body.get("lead_created_at"), str):
            customer["lead_created_at"] = body["lead_created_at"]
        return Response(201, dict(customer))
