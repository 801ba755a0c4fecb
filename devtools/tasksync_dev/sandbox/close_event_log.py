"""The Close simulator's event log: the clock, the stores, the events Close would log and the
webhook subscriptions that deliver them.

The base of `tasksync_dev.sandbox.close.CloseSimulator`: every change the control API makes
(close_state) appends here the events Close would log, which the HTTP routes (close_http) serve
from the event log endpoint and which webhook deliveries carry.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tasksync.logic.signature import sign
from tasksync_dev.sandbox._server import Response, SimulatorServer

BASE_PATH = "/api/v1"
ORGANIZATION_ID = "orga_SandboxOrganization0000000000000000000000"
MAX_SUBSCRIPTIONS = 40  # per organization (research §2.3)
_WEBHOOK_UPDATABLE = frozenset({"url", "events", "status", "verify_ssl"})
_ID_ALPHABET = string.ascii_letters + string.digits


def fresh_id(prefix: str, length: int = 22) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def object_time(moment: datetime) -> str:
    """Timestamps inside objects carry an offset: "2025-02-28T19:20:45.505000+00:00"."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_time(moment: datetime) -> str:
    """Event (and subscription) timestamps are naive UTC: "2025-02-28T19:20:45.507000"."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def bad_request(message: str, field_errors: dict[str, str] | None = None) -> Response:
    return Response(400, {"error": message, "field-errors": field_errors or {}})


class CloseEventLog(SimulatorServer):
    """The simulated organization's stores and clock, and the event log of their changes."""

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
        api_key: str,
        rate_limit_per_second: float | None,
        admin: bool,
        host: str,
        port: int,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port, rate_limit_per_second=rate_limit_per_second)
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
            stamp = event_time(moment)
            event = {
                "id": fresh_id("ev_"),
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

    def _user_name(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        user = self._users.get(user_id)
        if user is None:
            return None
        return f"{user['first_name']} {user['last_name']}".strip() or user["email"]

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
        moment = object_time(self._tick())
        activity = {
            "_type": "TaskCompleted",
            "id": fresh_id("acti_", 43),
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
                    return bad_request(f"Duplicate active subscription already exists: {existing['id']}")
            if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
                return bad_request(f"An organization can have at most {MAX_SUBSCRIPTIONS} webhook subscriptions")
            stamp = event_time(self._tick())
            subscription = {
                "id": fresh_id("whsub_"),
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
            return bad_request("Request body must be a JSON object")
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
            return bad_request("Invalid webhook subscription", errors)
        return None

    def pause_subscription(self, sub_id: str, reason: str = "failures") -> dict[str, Any]:
        """Pause as Close does on its own (e.g. after 3 days of failed deliveries)."""
        with self.lock:
            subscription = self._subscriptions[sub_id]
            subscription.update(status="paused", pause_reason=reason, date_updated=event_time(self._tick()))
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
