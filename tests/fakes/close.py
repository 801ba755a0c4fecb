"""`CloseApi` in memory, plus the rep-side actions that write Close's event log.

A rep creates, edits, completes, reopens, reassigns, moves and deletes tasks; each action
appends the events Close would log (task created/updated/completed/deleted, and
`activity.task_completed` created/deleted), with strictly increasing timestamps.

Tasks and activities are flat dicts (every value a str, bool or None), so `dict(...)` copies
them fully: what a caller or an event holds never changes with the stored task. The property
tests log tens of thousands of events, where `copy.deepcopy` was a real share of their time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tasksync.errors import NotFound
from tasksync.models.close import CloseLead, CloseTask, CloseUser, CloseWebhookSubscription
from tasksync_dev.sandbox.rep_actions import RepActions


class FakeClose(RepActions):
    """The port in memory; complete, reopen, reassign and move come from RepActions, as in the simulator."""

    def __init__(self) -> None:
        self.calls = 0
        self.users: dict[str, dict[str, Any]] = {}
        self.leads: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.fetched: list[str] = []  # ids passed to get_task, in order
        self.writes: list[tuple[str, bool]] = []  # (task id, is_complete) of set_task_complete
        self._activities: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._moment = datetime(2025, 2, 1, tzinfo=UTC)

    def _tick(self) -> str:
        self._moment += timedelta(milliseconds=1)
        return self._moment.isoformat()

    def start_at(self, moment: datetime) -> None:
        """Move Close's timeline to ``moment`` (to share one timeline with an engine clock)."""
        self._moment = moment

    def tick(self) -> str:
        """The next moment on Close's timeline (FakeChartMogul stamps its changes with it too)."""
        return self._tick()

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # ------------------------------------------------------------------ rep-side actions
    def add_user(self, email: str) -> str:
        user_id = self._id("user_")
        first_name = email.split("@", maxsplit=1)[0]
        self.users[user_id] = {"id": user_id, "email": email, "first_name": first_name, "last_name": ""}
        return user_id

    def add_lead(self, name: str, emails: list[str]) -> str:
        lead_id = self._id("lead_")
        contacts = [{"id": self._id("cont_"), "name": name, "emails": [{"email": e} for e in emails]}]
        self.leads[lead_id] = {"id": lead_id, "name": name, "display_name": name, "contacts": contacts}
        return lead_id

    def create_task(
        self, *, lead_id: str, text: str, assigned_to: str | None, date: str | None, task_type: str = "lead"
    ) -> dict[str, Any]:
        moment = self._tick()
        task = {
            "_type": task_type,
            "id": self._id("task_"),
            "lead_id": lead_id,
            "lead_name": self.leads[lead_id]["display_name"],
            "contact_id": None,
            "assigned_to": assigned_to,
            "text": text,
            "date": date,
            "is_dateless": date is None,
            "is_complete": False,
            "date_created": moment,
            "date_updated": moment,
        }
        self.tasks[task["id"]] = task
        self._log(task, "created", data=task)
        return dict(task)

    def update_task(self, task_id: str, **changes: Any) -> dict[str, Any]:
        before = self.tasks[task_id]
        task = {**before, **changes, "date_updated": self._tick()}
        if "date" in changes:
            task["is_dateless"] = changes["date"] is None
        if "lead_id" in changes:
            task["lead_name"] = self.leads[changes["lead_id"]]["display_name"]
        self.tasks[task_id] = task
        changed = sorted(k for k in task if task[k] != before.get(k))
        self._log(task, "updated", data=task, changed=changed, previous={k: before.get(k) for k in changed})
        if "is_complete" in changed and task["is_complete"]:
            self._log(task, "completed", data=task)
            moment = self._tick()
            activity = {"id": self._id("acti_"), "task_id": task_id, "lead_id": task["lead_id"]}
            activity |= {"activity_at": moment, "date_created": moment}
            self._activities[activity["id"]] = activity
            self._log_activity(activity, "created")
        elif "is_complete" in changed:
            for activity in [a for a in self._activities.values() if a["task_id"] == task_id]:
                del self._activities[activity["id"]]
                self._log_activity(activity, "deleted")
        return dict(task)

    def delete_task(self, task_id: str) -> None:
        task = self.tasks.pop(task_id)
        self._log(task, "deleted", data=None, previous=task)

    def _log(
        self,
        task: dict[str, Any],
        action: str,
        *,
        data: dict[str, Any] | None,
        changed: list[str] | None = None,
        previous: dict[str, Any] | None = None,
    ) -> None:
        stamp = self._tick()
        self.events.append(
            {
                "id": self._id("ev_"),
                "object_type": f"task.{task['_type']}",
                "action": action,
                "object_id": task["id"],
                "lead_id": task["lead_id"],
                "date_created": stamp,
                "date_updated": stamp,
                "changed_fields": changed or [],
                "data": dict(data) if data is not None else None,
                "previous_data": dict(previous) if previous is not None else {},
                "meta": {},
            }
        )

    def _log_activity(self, activity: dict[str, Any], action: str) -> None:
        stamp = self._tick()
        created = action == "created"
        self.events.append(
            {
                "id": self._id("ev_"),
                "object_type": "activity.task_completed",
                "action": action,
                "object_id": activity["id"],
                "lead_id": activity["lead_id"],
                "date_created": stamp,
                "date_updated": stamp,
                "data": dict(activity) if created else None,
                "previous_data": {} if created else dict(activity),
                "meta": {},
            }
        )

    def last_event(self, task_id: str) -> dict[str, Any]:
        return [e for e in self.events if e["object_type"].startswith("task.") and e["object_id"] == task_id][-1]

    # ------------------------------------------------------------------ the port
    def get_task(self, task_id: str) -> CloseTask:
        self.calls += 1
        self.fetched.append(task_id)
        task = self.tasks.get(task_id)
        if task is None:
            raise NotFound("close", "GET", "/task/x/", 404)
        return CloseTask.model_validate(task)

    def set_task_complete(self, task_id: str, is_complete: bool) -> CloseTask:
        """`PUT /task/{id}/` by the sync-back: logged like a rep's edit, counted in ``writes``."""
        self.calls += 1
        if task_id not in self.tasks:
            raise NotFound("close", "PUT", "/task/x/", 404)
        self.writes.append((task_id, is_complete))
        return CloseTask.model_validate(self.update_task(task_id, is_complete=is_complete))

    def get_user(self, user_id: str) -> CloseUser:
        self.calls += 1
        user = self.users.get(user_id)
        if user is None:
            raise NotFound("close", "GET", "/user/x/", 404)
        return CloseUser.model_validate(user)

    def get_lead(self, lead_id: str) -> CloseLead:
        self.calls += 1
        lead = self.leads.get(lead_id)
        if lead is None:
            raise NotFound("close", "GET", "/lead/x/", 404)
        return CloseLead.model_validate(lead)

    def iter_tasks(
        self, *, task_types: frozenset[str], date_updated_gte: datetime | None = None, limit: int = 100
    ) -> Iterator[CloseTask]:
        self.calls += 1
        for task in self.tasks.values():
            parsed = CloseTask.model_validate(task)
            if ("all" in task_types or parsed.type in task_types) and (
                date_updated_gte is None or parsed.date_updated >= date_updated_gte
            ):
                yield parsed

    def create_webhook(self, *, url: str, events: list[dict[str, str]]) -> CloseWebhookSubscription:
        raise NotImplementedError

    def get_webhook(self, subscription_id: str) -> CloseWebhookSubscription:
        raise NotImplementedError

    def list_webhooks(self) -> list[CloseWebhookSubscription]:
        raise NotImplementedError

    def update_webhook(self, subscription_id: str, **changes: Any) -> CloseWebhookSubscription:
        raise NotImplementedError

    def delete_webhook(self, subscription_id: str) -> None:
        raise NotImplementedError
