"""The Close simulator's control API: "a sales rep using Close".

``add_user``, ``add_lead``, ``create_task``, ``complete_task``, ``delete_lead``... Each change
updates the stores and logs the events Close would log (close_event_log); the HTTP routes
(close_http) read the same stores.
"""

from __future__ import annotations

import copy
from typing import Any

from tasksync_dev.sandbox.close_event_log import (
    BASE_PATH,
    ORGANIZATION_ID,
    CloseEventLog,
    fresh_id,
    object_time,
)
from tasksync_dev.sandbox.rep_actions import RepActions

# Task fields a rep cannot change; the derived ones are recomputed from their source field.
_IMMUTABLE_TASK_FIELDS = frozenset({"id", "_type", "organization_id", "date_created", "date_updated"})
_DERIVED_TASK_FIELDS = frozenset({"due_date", "is_dateless", "assigned_to_name", "lead_name"})


class CloseState(RepActions, CloseEventLog):
    """The rep-facing control API over the event-logging stores (complete, reopen, ...: RepActions)."""

    # ================================================================= users and leads
    def add_user(
        self, email: str, *, first_name: str = "", last_name: str = "", user_id: str | None = None
    ) -> dict[str, Any]:
        """A member of the organization. Close logs no task-relevant event for this."""
        with self.lock:
            moment = object_time(self._tick())
            user: dict[str, Any] = {
                "id": user_id or fresh_id("user_", 43),
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

        Custom fields come back as flat `custom.cf_...` keys, as Close returns them.
        Only the `lead created` event is logged (Close would also log one per contact).
        """
        with self.lock:
            moment = object_time(self._tick())
            new_id = lead_id or fresh_id("lead_", 43)
            contacts = [
                {
                    "id": fresh_id("cont_", 43),
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
                request_id=fresh_id("req_"),
                meta={"request_method": "POST", "request_path": f"{BASE_PATH}/lead/"},
            )
            return copy.deepcopy(lead)

    def _lead_view(self, lead: dict[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(lead)
        # Since 2024-06 the Lead API embeds incomplete tasks only (upstream-apis.md, "Close tasks").
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
            request_id = fresh_id("req_")
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
        """Create a task as a rep would; logs `task.<type>` `created` (as events/payloads/close-task-created.json)."""
        with self.lock:
            lead = self._leads.get(lead_id)
            if lead is None:
                raise KeyError(f"unknown lead {lead_id}")
            if assigned_to is not None and assigned_to not in self._users:
                raise KeyError(f"unknown user {assigned_to}")
            moment = object_time(self._tick())
            # Lead tasks are `task_...`; Close's examples of other types use `noti_...`.
            task_id = fresh_id("task_" if task_type == "lead" else "noti_", 43)
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
                request_id=fresh_id("req_"),
                meta={"request_method": "POST", "request_path": f"{BASE_PATH}/task/"},
            )
            return copy.deepcopy(task)

    def update_task(self, task_id: str, **changes: Any) -> dict[str, Any]:
        """Patch a task; logs `updated`, and the completion cascade when `is_complete` flips.

        Completing logs task `updated`, task `completed` and `activity.task_completed`
        `created` (Close event types: the activity "also triggers `completed` and `updated` on task").
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
            updated["date_updated"] = object_time(self._tick())
            changed = sorted(key for key in updated if key not in task or updated[key] != task[key])
            self._tasks[task_id] = updated
            request_id = fresh_id("req_")
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

    def delete_task(self, task_id: str) -> None:
        with self.lock:
            if task_id not in self._tasks:
                raise KeyError(f"unknown task {task_id}")
            meta = {"request_method": "DELETE", "request_path": f"{BASE_PATH}/task/{task_id}/"}
            self._delete_task(task_id, request_id=fresh_id("req_"), meta=meta)

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
