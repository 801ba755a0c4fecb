"""An HTTP simulator of the parts of the Close API that tasksync uses.

It plays two roles. Over HTTP (under ``/api/v1``, trailing slashes like Close) it answers the
calls our client makes: tasks, users, leads, task-completed activities, the event log and
webhook subscriptions. In Python it is "a sales rep using Close": ``create_task``,
``complete_task``, ``delete_lead``... and every such change appends the events Close would
log (shared/research/close-api.md §2.5, §2.6, §5), so the reconciler and the webhook path see
the same event stream they would see in production.

Facts the research marks UNVERIFIED are simulated one plausible way and say so where it happens.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import secrets
import string
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tasksync.logic.signature import sign
from tasksync_dev.sandbox._server import RateWindow, Request, Response, SimulatorServer

BASE_PATH = "/api/v1"
ORGANIZATION_ID = "orga_SandboxOrganization0000000000000000000000"
EVENT_PAGE_MAX = 50  # "capped at and defaulting to 50" (research §5)
TASK_PAGE_MAX = 100  # `_limit` default 100; above it Close answers 400 (research §8)
PRIVATE_DATA_SECONDS = 3600  # non-admins see event `data` for one hour only (research §5)
MAX_SUBSCRIPTIONS = 40  # per organization (research §2.3)
NOMINAL_RATE_LIMIT = 100.0  # what the RateLimit header advertises when no limit is configured

# Filter combinations the event log accepts (research §5, OAS). `date_updated` ranges may be
# added to any of them. The empty set (no filter) is the plain newest-first listing.
# UNVERIFIED: `object_type` without `action` is not in Close's list, so we answer 400.
EVENT_FILTER_KEYS = ("object_type", "object_id", "action", "lead_id", "user_id", "request_id")
SUPPORTED_EVENT_FILTERS = frozenset(
    frozenset(combo)
    for combo in (
        (),
        ("object_type", "object_id"),
        ("object_type", "action"),
        ("object_id", "action"),
        ("lead_id", "object_type"),
        ("lead_id", "object_type", "action"),
        ("lead_id", "user_id", "object_type"),
        ("lead_id", "user_id", "object_type", "action"),
        ("lead_id", "user_id"),
        ("user_id", "object_id"),
        ("user_id", "object_id", "action"),
        ("user_id", "object_type"),
        ("user_id", "object_type", "action"),
        ("lead_id",),
        ("user_id",),
        ("request_id",),
    )
)

# Task fields a rep cannot change; the derived ones are recomputed from their source field.
_IMMUTABLE_TASK_FIELDS = frozenset({"id", "_type", "organization_id", "date_created", "date_updated"})
_DERIVED_TASK_FIELDS = frozenset({"due_date", "is_dateless", "assigned_to_name", "lead_name"})
_WEBHOOK_UPDATABLE = frozenset({"url", "events", "status", "verify_ssl"})
_ID_ALPHABET = string.ascii_letters + string.digits


def _new_id(prefix: str, length: int = 22) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _object_time(moment: datetime) -> str:
    """Timestamps inside objects carry an offset: "2025-02-28T19:20:45.505000+00:00"."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _event_time(moment: datetime) -> str:
    """Event (and subscription) timestamps are naive UTC: "2025-02-28T19:20:45.507000"."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _bad_request(message: str, field_errors: dict[str, str] | None = None) -> Response:
    return Response(400, {"error": message, "field-errors": field_errors or {}})


class _BadQuery(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _int_param(query: dict[str, str], name: str, default: int, maximum: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadQuery(name, "Enter a whole number.") from None
    if value < 0 or (name == "_limit" and value == 0):
        raise _BadQuery(name, "Must be a positive number.")
    if value > maximum:
        raise _BadQuery(name, f"Ensure this value is less than or equal to {maximum}.")
    return value


def _time_filters(query: dict[str, str], field: str) -> list[Callable[[datetime], bool]]:
    """Checks for `field__gte/__gt/__lte/__lt` query parameters."""
    operators: dict[str, Callable[[datetime, datetime], bool]] = {
        "gte": lambda a, b: a >= b,
        "gt": lambda a, b: a > b,
        "lte": lambda a, b: a <= b,
        "lt": lambda a, b: a < b,
    }

    def bound_check(operator: Callable[[datetime, datetime], bool], bound: datetime) -> Callable[[datetime], bool]:
        return lambda moment: operator(moment, bound)

    checks: list[Callable[[datetime], bool]] = []
    for suffix, operator in operators.items():
        name = f"{field}__{suffix}"
        if name not in query:
            continue
        try:
            bound = _parse_time(query[name])
        except ValueError:
            raise _BadQuery(name, "Enter a valid date/time.") from None
        checks.append(bound_check(operator, bound))
    return checks


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


class CloseSimulator(SimulatorServer):
    """Close over HTTP, plus a Python control API that records the events Close would log."""

    name = "close-simulator"
    STATE = (
        "_users",
        "_leads",
        "_tasks",
        "_deleted_task_ids",
        "_activities",
        "_events",
        "_event_times",
        "_subscriptions",
        "_clock_offset",
        "_last_tick",
    )

    def __init__(
        self,
        *,
        api_key: str = "close-sandbox-key",
        rate_limit_per_second: float | None = None,
        admin: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port, rate_limit_per_second=rate_limit_per_second)
        self.rate_window: CloseRateWindow = CloseRateWindow(rate_limit_per_second)
        self.admin = admin
        self._users: dict[str, dict[str, Any]] = {}
        self._leads: dict[str, dict[str, Any]] = {}
        self._tasks: dict[str, dict[str, Any]] = {}
        self._deleted_task_ids: set[str] = set()
        self._activities: dict[str, dict[str, Any]] = {}  # live task_completed activities by id
        self._events: list[dict[str, Any]] = []  # oldest first; times strictly increase
        self._event_times: list[datetime] = []
        self._subscriptions: dict[str, dict[str, Any]] = {}
        self._clock_offset = timedelta()
        self._last_tick = datetime.min.replace(tzinfo=UTC)
        # Called with the events an API write logged (see sandbox/webhooks.py); None: no webhooks.
        self.webhook_sender: Callable[[list[dict[str, Any]]], None] | None = None
        self._register_routes()

    # ================================================================= clock and ids
    def _now(self) -> datetime:
        return datetime.now(UTC) + self._clock_offset

    def _tick(self) -> datetime:
        """The next timestamp: never equal to the previous one, even within a microsecond."""
        with self.lock:
            moment = self._now()
            if moment <= self._last_tick:
                moment = self._last_tick + timedelta(microseconds=1)
            self._last_tick = moment
            return moment

    def advance_clock(self, seconds: float) -> None:
        """Move the simulated clock forward (e.g. to make events older than an hour)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self._clock_offset += timedelta(seconds=seconds)

    # ================================================================= accessors
    @property
    def events(self) -> list[dict[str, Any]]:
        """The event log, oldest first (deep copies)."""
        with self.lock:
            return copy.deepcopy(self._events)

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Live (not deleted) tasks by id (deep copies)."""
        with self.lock:
            return copy.deepcopy(self._tasks)

    @property
    def deleted_task_ids(self) -> set[str]:
        with self.lock:
            return set(self._deleted_task_ids)

    @property
    def subscriptions(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._subscriptions)

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._users)

    @property
    def leads(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._leads)

    # ================================================================= event log
    def _record_event(
        self,
        *,
        object_type: str,
        action: str,
        object_id: str,
        lead_id: str | None,
        data: dict[str, Any] | None,
        previous_data: dict[str, Any] | None,
        changed_fields: Iterable[str] = (),
        actor: str | None,
        request_id: str,
        meta: dict[str, Any],
    ) -> dict[str, Any]:
        with self.lock:
            moment = self._tick()
            stamp = _event_time(moment)
            event = {
                "id": _new_id("ev_"),
                "date_created": stamp,
                "date_updated": stamp,
                "organization_id": ORGANIZATION_ID,
                "user_id": actor,
                "request_id": request_id,
                "api_key_id": None,
                "oauth_client_id": None,
                "oauth_scope": None,
                "object_type": object_type,
                "object_id": object_id,
                "lead_id": lead_id,
                "action": action,
                "changed_fields": sorted(changed_fields),
                "meta": dict(meta),
                "data": copy.deepcopy(data),
                "previous_data": copy.deepcopy(previous_data) if previous_data is not None else {},
            }
            self._events.append(event)
            self._event_times.append(moment)
            return copy.deepcopy(event)

    # ================================================================= users and leads
    def _user_name(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        user = self._users.get(user_id)
        if user is None:
            return None
        return f"{user['first_name']} {user['last_name']}".strip() or user["email"]

    def add_user(
        self, email: str, *, first_name: str = "", last_name: str = "", user_id: str | None = None
    ) -> dict[str, Any]:
        """A member of the organization. Close logs no task-relevant event for this."""
        with self.lock:
            moment = _object_time(self._tick())
            user: dict[str, Any] = {
                "id": user_id or _new_id("user_", 43),
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "image": None,
                "organizations": [ORGANIZATION_ID],
                "date_created": moment,
                "date_updated": moment,
            }
            self._users[user["id"]] = user
            return copy.deepcopy(user)

    def add_lead(
        self,
        name: str,
        *,
        emails: list[str] | None = None,
        custom: dict[str, Any] | None = None,
        lead_id: str | None = None,
    ) -> dict[str, Any]:
        """A lead with one contact per email and custom fields keyed by `cf_...` id.

        Custom fields come back as flat `custom.cf_...` keys, as Close returns them (F-15).
        Only the `lead created` event is logged (Close would also log one per contact).
        """
        with self.lock:
            moment = _object_time(self._tick())
            new_id = lead_id or _new_id("lead_", 43)
            contacts = [
                {
                    "id": _new_id("cont_", 43),
                    "lead_id": new_id,
                    "name": email.split("@", 1)[0].replace(".", " ").title(),
                    "display_name": email.split("@", 1)[0].replace(".", " ").title(),
                    "title": "",
                    "emails": [{"email": email, "type": "office", "is_unsubscribed": False}],
                    "phones": [],
                    "organization_id": ORGANIZATION_ID,
                    "date_created": moment,
                    "date_updated": moment,
                    "created_by": None,
                    "updated_by": None,
                }
                for email in (emails or [])
            ]
            lead: dict[str, Any] = {
                "id": new_id,
                "name": name,
                "display_name": name,
                "description": "",
                "url": None,
                "status_id": "stat_SandboxPotential",
                "status_label": "Potential",
                "organization_id": ORGANIZATION_ID,
                "html_url": f"https://app.close.com/lead/{new_id}/",
                "addresses": [],
                "contact_ids": [contact["id"] for contact in contacts],
                "contacts": contacts,
                "opportunities": [],
                "created_by": None,
                "updated_by": None,
                "date_created": moment,
                "date_updated": moment,
            }
            for key, value in (custom or {}).items():
                field_id = key[len("custom.") :] if key.startswith("custom.") else key
                lead[f"custom.{field_id}"] = value
            self._leads[new_id] = lead
            self._record_event(
                object_type="lead",
                action="created",
                object_id=new_id,
                lead_id=new_id,
                data=lead,
                previous_data={},
                actor=None,
                request_id=_new_id("req_"),
                meta={"request_method": "POST", "request_path": f"{BASE_PATH}/lead/"},
            )
            return copy.deepcopy(lead)

    def _lead_view(self, lead: dict[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(lead)
        # Since 2024-06 the Lead API embeds incomplete tasks only (D-CL-2024-06-07).
        view["tasks"] = [
            copy.deepcopy(task)
            for task in self._tasks.values()
            if task["lead_id"] == lead["id"] and not task["is_complete"]
        ]
        return view

    def delete_lead(self, lead_id: str) -> None:
        """Delete a lead; its tasks go with it, each with its own `deleted` event."""
        with self.lock:
            lead = self._leads.get(lead_id)
            if lead is None:
                raise KeyError(lead_id)
            request_id = _new_id("req_")
            meta = {"request_method": "DELETE", "request_path": f"{BASE_PATH}/lead/{lead_id}/"}
            for task_id in [t["id"] for t in self._tasks.values() if t["lead_id"] == lead_id]:
                self._delete_task(task_id, request_id=request_id, meta=meta)
            del self._leads[lead_id]
            self._record_event(
                object_type="lead",
                action="deleted",
                object_id=lead_id,
                lead_id=lead_id,
                data=None,
                previous_data=lead,
                actor=None,
                request_id=request_id,
                meta=meta,
            )

    # ================================================================= tasks
    def create_task(
        self,
        *,
        lead_id: str,
        text: str,
        assigned_to: str | None = None,
        date: str | None = None,
        task_type: str = "lead",
        is_complete: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a task as a rep would; logs `task.<type>` `created` (F-1)."""
        with self.lock:
            lead = self._leads.get(lead_id)
            if lead is None:
                raise KeyError(f"unknown lead {lead_id}")
            if assigned_to is not None and assigned_to not in self._users:
                raise KeyError(f"unknown user {assigned_to}")
            moment = _object_time(self._tick())
            # Lead tasks are `task_...`; Close's examples of other types use `noti_...`.
            task_id = _new_id("task_" if task_type == "lead" else "noti_", 43)
            task: dict[str, Any] = {
                "_type": task_type,
                "id": task_id,
                "organization_id": ORGANIZATION_ID,
                "lead_id": lead_id,
                "lead_name": lead["display_name"],
                "contact_id": None,
                "contact_name": None,
                "assigned_to": assigned_to,
                "assigned_to_name": self._user_name(assigned_to),
                "created_by": assigned_to,
                "created_by_name": self._user_name(assigned_to),
                "updated_by": assigned_to,
                "updated_by_name": self._user_name(assigned_to),
                "text": text,
                "date": date,
                "due_date": date,  # deprecated mirror of `date`, still in real payloads
                "is_dateless": date is None,
                "is_complete": is_complete,
                "is_new": True,
                "is_primary_lead_notification": True,
                "object_type": None,
                "object_id": None,
                "view": None,
                "sequence_id": None,
                "sequence_subscription_id": None,
                "deduplication_key": None,
                "date_created": moment,
                "date_updated": moment,
            }
            task.update(fields)
            self._tasks[task_id] = task
            self._record_event(
                object_type=f"task.{task_type}",
                action="created",
                object_id=task_id,
                lead_id=lead_id,
                data=task,
                previous_data={},
                actor=assigned_to,
                request_id=_new_id("req_"),
                meta={"request_method": "POST", "request_path": f"{BASE_PATH}/task/"},
            )
            return copy.deepcopy(task)

    def update_task(self, task_id: str, **changes: Any) -> dict[str, Any]:
        """Patch a task; logs `updated`, and the completion cascade when `is_complete` flips.

        Completing logs task `updated`, task `completed` and `activity.task_completed`
        `created` (D-EVT: the activity "also triggers `completed` and `updated` on task").
        Reopening logs task `updated` and `activity.task_completed` `deleted`.
        """
        with self.lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise KeyError(f"unknown task {task_id}")
            forbidden = (_IMMUTABLE_TASK_FIELDS | _DERIVED_TASK_FIELDS) & changes.keys()
            if forbidden:
                raise ValueError(f"cannot change {sorted(forbidden)}")
            if changes.get("assigned_to") is not None and changes["assigned_to"] not in self._users:
                raise KeyError(f"unknown user {changes['assigned_to']}")
            if "lead_id" in changes and changes["lead_id"] not in self._leads:
                raise KeyError(f"unknown lead {changes['lead_id']}")
            updated = dict(task)
            updated.update(changes)
            if "date" in changes:
                updated["due_date"] = changes["date"]
                updated["is_dateless"] = changes["date"] is None
            if "assigned_to" in changes:
                updated["assigned_to_name"] = self._user_name(changes["assigned_to"])
            if "lead_id" in changes:
                updated["lead_name"] = self._leads[changes["lead_id"]]["display_name"]
            changed = sorted(key for key in updated if key not in task or updated[key] != task[key])
            if not changed:
                return copy.deepcopy(task)
            actor = updated["assigned_to"]
            updated["updated_by"] = actor
            updated["updated_by_name"] = self._user_name(actor)
            updated["is_new"] = False
            updated["date_updated"] = _object_time(self._tick())
            changed = sorted(key for key in updated if key not in task or updated[key] != task[key])
            self._tasks[task_id] = updated
            request_id = _new_id("req_")
            meta = {"request_method": "PUT", "request_path": f"{BASE_PATH}/task/{task_id}/"}
            object_type = f"task.{updated['_type']}"
            self._record_event(
                object_type=object_type,
                action="updated",
                object_id=task_id,
                lead_id=updated["lead_id"],
                data=updated,
                previous_data={key: task.get(key) for key in changed},
                changed_fields=changed,
                actor=actor,
                request_id=request_id,
                meta=meta,
            )
            if "is_complete" in changed and updated["is_complete"]:
                self._record_completion(updated, actor, request_id, meta)
            elif "is_complete" in changed:
                self._record_reopening(updated, request_id, meta)
            return copy.deepcopy(updated)

    def _record_completion(
        self, task: dict[str, Any], actor: str | None, request_id: str, meta: dict[str, Any]
    ) -> None:
        # UNVERIFIED (research §12.3): the exact `completed` payload. We send the task as
        # `data` with no changed_fields, like a create.
        self._record_event(
            object_type=f"task.{task['_type']}",
            action="completed",
            object_id=task["id"],
            lead_id=task["lead_id"],
            data=task,
            previous_data={},
            actor=actor,
            request_id=request_id,
            meta=meta,
        )
        moment = _object_time(self._tick())
        activity = {
            "_type": "TaskCompleted",
            "id": _new_id("acti_", 43),
            "organization_id": ORGANIZATION_ID,
            "lead_id": task["lead_id"],
            "contact_id": None,
            "task_id": task["id"],
            "task_text": task.get("text"),
            "task_assigned_to": task.get("assigned_to"),
            "task_assigned_to_name": task.get("assigned_to_name"),
            "user_id": actor,
            "user_name": self._user_name(actor),
            "created_by": actor,
            "created_by_name": self._user_name(actor),
            "updated_by": actor,
            "updated_by_name": self._user_name(actor),
            "sequence_id": None,
            "sequence_name": None,
            "sequence_subscription_id": None,
            "users": [],
            "activity_at": moment,
            "date_created": moment,
            "date_updated": moment,
        }
        self._activities[activity["id"]] = activity
        self._record_event(
            object_type="activity.task_completed",
            action="created",
            object_id=activity["id"],
            lead_id=task["lead_id"],
            data=activity,
            previous_data={},
            actor=actor,
            request_id=request_id,
            meta=meta,
        )

    def _record_reopening(self, task: dict[str, Any], request_id: str, meta: dict[str, Any]) -> None:
        for activity in [a for a in self._activities.values() if a["task_id"] == task["id"]]:
            del self._activities[activity["id"]]
            self._record_event(
                object_type="activity.task_completed",
                action="deleted",
                object_id=activity["id"],
                lead_id=activity["lead_id"],
                data=None,
                previous_data=activity,
                actor=task["assigned_to"],
                request_id=request_id,
                meta=meta,
            )

    def complete_task(self, task_id: str) -> dict[str, Any]:
        return self.update_task(task_id, is_complete=True)

    def reopen_task(self, task_id: str) -> dict[str, Any]:
        return self.update_task(task_id, is_complete=False)

    def reassign_task(self, task_id: str, user_id: str | None) -> dict[str, Any]:
        return self.update_task(task_id, assigned_to=user_id)

    def move_task(self, task_id: str, lead_id: str) -> dict[str, Any]:
        """Move a task to another lead, as a lead merge does."""
        return self.update_task(task_id, lead_id=lead_id)

    def delete_task(self, task_id: str) -> None:
        with self.lock:
            if task_id not in self._tasks:
                raise KeyError(f"unknown task {task_id}")
            meta = {"request_method": "DELETE", "request_path": f"{BASE_PATH}/task/{task_id}/"}
            self._delete_task(task_id, request_id=_new_id("req_"), meta=meta)

    def _delete_task(self, task_id: str, *, request_id: str, meta: dict[str, Any]) -> None:
        task = self._tasks.pop(task_id)
        self._deleted_task_ids.add(task_id)
        self._record_event(
            object_type=f"task.{task['_type']}",
            action="deleted",
            object_id=task_id,
            lead_id=task["lead_id"],
            data=None,
            previous_data=task,
            actor=task["assigned_to"],
            request_id=request_id,
            meta=meta,
        )

    # ================================================================= webhook subscriptions
    def create_subscription(self, url: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Create a subscription as `POST /webhook/` would; raises ValueError on a 400."""
        response = self._create_subscription({"url": url, "events": events})
        if response.status != 201:
            raise ValueError(str(response.body))
        result: dict[str, Any] = response.body
        return result

    def _create_subscription(self, body: Any) -> Response:
        with self.lock:
            problem = self._subscription_problem(body, creating=True)
            if problem:
                return problem
            for existing in self._subscriptions.values():
                # UNVERIFIED trigger (research §2.3): we refuse a second *active* subscription
                # to the same URL, with the id in the message as Close's answer carries it.
                if existing["url"] == body["url"] and existing["status"] == "active":
                    return _bad_request(f"Duplicate active subscription already exists: {existing['id']}")
            if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
                return _bad_request(f"An organization can have at most {MAX_SUBSCRIPTIONS} webhook subscriptions")
            stamp = _event_time(self._tick())
            subscription = {
                "id": _new_id("whsub_"),
                "url": body["url"],
                "events": [self._selector(item) for item in body["events"]],
                "verify_ssl": bool(body.get("verify_ssl", True)),
                "status": "active",
                "pause_reason": None,
                "health_status": "healthy",
                "latest_error": None,
                "recent_consecutive_fail_buckets_cnt": 0,
                "counters": {},
                "signature_key": secrets.token_hex(32),
                "created_by": None,
                "updated_by": None,
                "date_created": stamp,
                "date_updated": stamp,
            }
            self._subscriptions[subscription["id"]] = subscription
            return Response(201, copy.deepcopy(subscription))

    @staticmethod
    def _selector(item: dict[str, Any]) -> dict[str, Any]:
        selector = {"object_type": item["object_type"], "action": item["action"]}
        if item.get("extra_filter") is not None:
            selector["extra_filter"] = item["extra_filter"]
        return selector

    @staticmethod
    def _subscription_problem(body: Any, *, creating: bool) -> Response | None:
        if not isinstance(body, dict):
            return _bad_request("Request body must be a JSON object")
        errors: dict[str, str] = {}
        if creating:
            errors.update({name: "This field is required." for name in ("url", "events") if name not in body})
        unknown = set(body) - _WEBHOOK_UPDATABLE
        errors.update(dict.fromkeys(sorted(unknown), "Unknown field."))
        if "url" in body and (not isinstance(body["url"], str) or not body["url"].startswith(("http://", "https://"))):
            errors["url"] = "Enter a valid URL."
        if "events" in body:
            events = body["events"]
            valid = (
                isinstance(events, list)
                and events
                and all(
                    isinstance(item, dict)
                    and isinstance(item.get("object_type"), str)
                    and isinstance(item.get("action"), str)
                    and (item.get("extra_filter") is None or isinstance(item["extra_filter"], dict))
                    for item in events
                )
            )
            if not valid:
                errors["events"] = "A non-empty list of {object_type, action, extra_filter?} is required."
        if "status" in body and body["status"] not in ("active", "paused"):
            errors["status"] = "Must be 'active' or 'paused'."
        if "verify_ssl" in body and not isinstance(body["verify_ssl"], bool):
            errors["verify_ssl"] = "Must be a boolean."
        if errors:
            return _bad_request("Invalid webhook subscription", errors)
        return None

    def pause_subscription(self, sub_id: str, reason: str = "failures") -> dict[str, Any]:
        """Pause as Close does on its own (e.g. after 3 days of failed deliveries)."""
        with self.lock:
            subscription = self._subscriptions[sub_id]
            subscription.update(status="paused", pause_reason=reason, date_updated=_event_time(self._tick()))
            return copy.deepcopy(subscription)

    def events_matching(self, subscription_id: str) -> list[dict[str, Any]]:
        """Logged events a subscription's selectors match (``extra_filter`` is not evaluated)."""
        with self.lock:
            selectors = {(s["object_type"], s["action"]) for s in self._subscriptions[subscription_id]["events"]}
            return [copy.deepcopy(e) for e in self._events if (e["object_type"], e["action"]) in selectors]

    def webhook_envelope(self, event: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        """What a delivery's body holds. Deliveries carry full data even for non-admins (D-WH)."""
        return {"subscription_id": subscription_id, "event": event}

    def signed_delivery(
        self, event: dict[str, Any], subscription_id: str, *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body bytes and headers Close would POST for ``event``."""
        with self.lock:
            key = self._subscriptions[subscription_id]["signature_key"]
        body = json.dumps(self.webhook_envelope(event, subscription_id)).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "close-sig-hash": sign(key, stamp, body),
            "close-sig-timestamp": stamp,
            "content-type": "application/json",
        }
        return body, headers

    # ================================================================= demo data
    def seed_demo(self) -> dict[str, str]:
        """Two reps, three leads whose contact emails match the ChartMogul demo customers, and one
        that matches none, so that its tasks park (`tasksync parked`, the parked retry).

        Returns ids by short name: ``alice``, ``bob`` (users) and ``acme``, ``globex``,
        ``initech`` (leads with contacts ops@acme.example, finance@globex.example,
        cto@initech.example), ``umbrella`` (it@umbrella.example: no ChartMogul customer).
        """
        with self.lock:
            ids = {
                "alice": self.add_user("alice@sales.example", first_name="Alice", last_name="Archer")["id"],
                "bob": self.add_user("bob@sales.example", first_name="Bob", last_name="Baker")["id"],
            }
            for short, name, email in (
                ("acme", "Acme Corp", "ops@acme.example"),
                ("globex", "Globex Corporation", "finance@globex.example"),
                ("initech", "Initech", "cto@initech.example"),
                ("umbrella", "Umbrella Corporation", "it@umbrella.example"),
            ):
                ids[short] = self.add_lead(name, emails=[email])["id"]
            return ids

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
        """429 with both headers Close guarantees (research §8).

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
            except _BadQuery as exc:
                response = _bad_request(exc.message, {exc.field: exc.message})
            response.headers.setdefault("RateLimit", self._rate_limit_header())
            return response

        return wrapped

    # ----------------------------------------------------------------- tasks
    def _http_get_task(self, request: Request) -> Response:
        task = self._tasks.get(request.match["id"])
        return Response(200, copy.deepcopy(task)) if task else self.not_found()

    def _http_list_tasks(self, request: Request) -> Response:
        query = request.query
        limit = _int_param(query, "_limit", TASK_PAGE_MAX, TASK_PAGE_MAX)
        skip = _int_param(query, "_skip", 0, 10**9)
        if "_type__in" in query:
            types: set[str] | None = {t.strip() for t in query["_type__in"].split(",") if t.strip()}
        else:
            # "When not filtering by `_type`, only `lead` tasks are returned." (D-TASKS)
            wanted = query.get("_type", "lead")
            types = None if wanted == "all" else {wanted}
        created_checks = _time_filters(query, "date_created")
        updated_checks = _time_filters(query, "date_updated")
        is_complete = query.get("is_complete")
        matching = [
            task
            for task in self._tasks.values()
            if (types is None or task["_type"] in types)
            and ("lead_id" not in query or task["lead_id"] == query["lead_id"])
            and ("assigned_to" not in query or task["assigned_to"] == query["assigned_to"])
            and (is_complete is None or task["is_complete"] == (is_complete.lower() == "true"))
            and all(check(_parse_time(task["date_created"])) for check in created_checks)
            and all(check(_parse_time(task["date_updated"])) for check in updated_checks)
        ]
        matching.sort(key=lambda task: (task["date_created"], task["id"]))
        page = matching[skip : skip + limit]
        return Response(200, {"data": copy.deepcopy(page), "has_more": skip + limit < len(matching)})

    def _http_create_task(self, request: Request) -> Response:
        body = request.body
        if not isinstance(body, dict):
            return _bad_request("Request body must be a JSON object")
        task_type = body.get("_type", "lead")
        errors = {name: "This field is required." for name in ("lead_id", "text") if not body.get(name)}
        if task_type not in ("lead", "outgoing_call"):
            errors["_type"] = "Only tasks of type lead and outgoing_call can be created."
        if body.get("lead_id") and body["lead_id"] not in self._leads:
            errors["lead_id"] = "Object does not exist."
        if body.get("assigned_to") and body["assigned_to"] not in self._users:
            errors["assigned_to"] = "Object does not exist."
        if errors:
            return _bad_request("Invalid task", errors)
        task = self.create_task(
            lead_id=body["lead_id"],
            text=body["text"],
            assigned_to=body.get("assigned_to"),
            date=body.get("date"),
            task_type=task_type,
            is_complete=bool(body.get("is_complete", False)),
        )
        return Response(200, task)  # Close answers 200 (not 201) to a task create (OAS)

    def _http_update_task(self, request: Request) -> Response:
        task_id = request.match["id"]
        if task_id not in self._tasks:
            return self.not_found()
        body = request.body
        allowed = {"assigned_to", "date", "is_complete", "text"}
        if not isinstance(body, dict) or set(body) - allowed:
            return _bad_request("Only assigned_to, date, is_complete and text may be updated")
        logged = len(self._events)
        try:
            updated = self.update_task(task_id, **body)
        except KeyError as exc:
            return _bad_request("Invalid task", {"assigned_to": f"Object does not exist: {exc}"})
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
        limit = _int_param(request.query, "_limit", 100, 100)
        skip = _int_param(request.query, "_skip", 0, 10**9)
        users = sorted(self._users.values(), key=lambda u: (u["last_name"], u["first_name"], u["id"]))
        return Response(200, {"data": copy.deepcopy(users[skip : skip + limit]), "has_more": skip + limit < len(users)})

    def _http_get_lead(self, request: Request) -> Response:
        lead = self._leads.get(request.match["id"])
        if lead is None:
            return self.not_found()
        view = self._lead_view(lead)
        fields = [f.strip() for f in request.query.get("_fields", "").split(",") if f.strip()]
        if fields:
            # `custom` selects every `custom.cf_...` key; `custom.cf_x` selects one (D-LEADS).
            view = {
                key: value
                for key, value in view.items()
                if key in fields or ("custom" in fields and key.startswith("custom."))
            }
        return Response(200, view)

    def _http_list_activities(self, request: Request) -> Response:
        query = request.query
        limit = _int_param(query, "_limit", 100, 100)
        skip = _int_param(query, "_skip", 0, 10**9)
        created_checks = _time_filters(query, "date_created")
        matching = [
            activity
            for activity in self._activities.values()
            if ("lead_id" not in query or activity["lead_id"] == query["lead_id"])
            and ("user_id" not in query or activity["user_id"] == query["user_id"])
            and all(check(_parse_time(activity["date_created"])) for check in created_checks)
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
        limit = _int_param(query, "_limit", EVENT_PAGE_MAX, EVENT_PAGE_MAX)
        filters = {key: query[key] for key in EVENT_FILTER_KEYS if query.get(key)}
        if frozenset(filters) not in SUPPORTED_EVENT_FILTERS:
            return _bad_request(
                f"Unsupported filter combination: {', '.join(sorted(filters))}",
                dict.fromkeys(filters, "Unsupported combination of filters."),
            )
        checks = _time_filters(query, "date_updated")
        start = len(self._events) - 1
        if query.get("_cursor"):
            start = self._decode_cursor(query["_cursor"])
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
                cursor_next = self._encode_cursor(index)
                break
            page.append(self._event_view(index))
        return Response(200, {"data": page, "cursor_next": cursor_next, "cursor_previous": None})

    @staticmethod
    def _encode_cursor(index: int) -> str:
        return base64.urlsafe_b64encode(f"ev:{index}".encode()).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str) -> int:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            prefix, _, number = text.partition(":")
            if prefix != "ev" or not number.isdigit():
                raise ValueError(cursor)
            return int(number)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _BadQuery("_cursor", "Invalid cursor.") from None

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
            changes["pause_reason"] = "api"  # F-6: a pause through the API
        elif changes.get("status") == "active":
            changes["pause_reason"] = None
        subscription.update(changes, date_updated=_event_time(self._tick()))
        return Response(200, copy.deepcopy(subscription))

    def _http_delete_webhook(self, request: Request) -> Response:
        if self._subscriptions.pop(request.match["id"], None) is None:
            return self.not_found()
        return Response(200, {})


__all__ = ["BASE_PATH", "ORGANIZATION_ID", "CloseRateWindow", "CloseSimulator"]
