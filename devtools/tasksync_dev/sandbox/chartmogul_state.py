"""The ChartMogul simulator's account: users, data sources, customers and tasks, and a CS person's actions.

What the simulator holds and how it changes outside the API (a person ticking a task off in
ChartMogul's UI, the demo data). The HTTP routes (chartmogul) read and write the same stores under
the same lock; they are apart so that each half reads on its own, as for the Close simulator.
"""

from __future__ import annotations

import uuid as uuid_module
from datetime import UTC, datetime, timedelta
from typing import Any

from tasksync_dev.sandbox._server import SimulatorServer

DEMO_USERS = ("alice@sales.example", "bob@sales.example", "success@example.com")
DEMO_CUSTOMERS = (
    ("Acme Corp", "ops@acme.example", "acme"),
    ("Globex", "finance@globex.example", "globex"),
    ("Initech", "cto@initech.example", "initech"),
)


def iso_ms(moment: datetime) -> str:
    """ChartMogul's timestamp form: UTC with milliseconds, e.g. 2025-04-25T02:15:06.474Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class ChartMogulState(SimulatorServer):
    """The stores and the thread-safe Python control API; the HTTP routes are ChartMogulSimulator's."""

    STATE = (
        "users",
        "data_sources",
        "customers",
        "tasks",
        "deleted_task_uuids",
        "_sort_keys",
        "_last_created",
        "_next_customer_id",
    )

    def __init__(self, **server: Any) -> None:
        # The server's own arguments (key, limits, address) are ChartMogulSimulator's to choose.
        super().__init__(**server)
        self.users: set[str] = set()
        self.data_sources: list[str] = []
        self.customers: dict[str, dict[str, Any]] = {}
        # Live tasks by uuid, exactly as the API would return them.
        self.tasks: dict[str, dict[str, Any]] = {}
        self.deleted_task_uuids: set[str] = set()
        # Sort keys ("created_at with µs", id): strictly increasing, so paging is stable even
        # when several objects are created in the same millisecond.
        self._sort_keys: dict[str, tuple[str, str]] = {}
        self._last_created = datetime.min.replace(tzinfo=UTC)
        self._next_customer_id = 25647

    # ----------------------------------------------------------------- control API
    def add_user(self, email: str) -> None:
        """Make ``email`` a ChartMogul user, i.e. a valid task assignee."""
        with self.lock:
            self.users.add(email.strip().lower())

    def add_data_source(self, uuid: str | None = None) -> str:
        with self.lock:
            ds_uuid = uuid or f"ds_{uuid_module.uuid4()}"
            if ds_uuid not in self.data_sources:
                self.data_sources.append(ds_uuid)
            return ds_uuid

    def add_customer(
        self,
        *,
        name: str,
        email: str | None = None,
        external_id: str | None = None,
        data_source_uuid: str | None = None,
        uuid: str | None = None,
    ) -> dict[str, Any]:
        """Create a customer directly; returns its API representation (a copy)."""
        with self.lock:
            if data_source_uuid is None:
                data_source_uuid = self.data_sources[0] if self.data_sources else self.add_data_source()
            else:
                self.add_data_source(data_source_uuid)
            ext = external_id or f"ext_{uuid_module.uuid4().hex[:12]}"
            if self._customers_matching(ext, data_source_uuid):
                raise ValueError(f"external_id {ext!r} already exists in data source {data_source_uuid}")
            customer = self._insert_customer(
                uuid=uuid, name=name, email=email, external_id=ext, data_source_uuid=data_source_uuid
            )
            return dict(customer)

    def person_completes(self, task_uuid: str) -> dict[str, Any]:
        """A CS person ticks the task off in ChartMogul's UI: `completed_at` and `updated_at` move."""
        return self._person_sets_completion(task_uuid, complete=True)

    def person_reopens(self, task_uuid: str) -> dict[str, Any]:
        """A CS person marks the task not done again in ChartMogul's UI."""
        return self._person_sets_completion(task_uuid, complete=False)

    def _person_sets_completion(self, task_uuid: str, *, complete: bool) -> dict[str, Any]:
        with self.lock:
            task = self.tasks.get(task_uuid)
            if task is None:
                raise KeyError(f"unknown task {task_uuid}")
            stamp = iso_ms(self._next_created())
            task["completed_at"] = stamp if complete else None
            task["updated_at"] = stamp
            return dict(task)

    def live_tasks(self, customer_uuid: str | None = None) -> list[dict[str, Any]]:
        """Copies of the live tasks (oldest first), optionally of one customer."""
        with self.lock:
            ordered = sorted(self.tasks, key=self._sort_keys.__getitem__)
            return [
                dict(self.tasks[t])
                for t in ordered
                if customer_uuid is None or self.tasks[t]["customer_uuid"] == customer_uuid
            ]

    def seed_demo(self) -> dict[str, Any]:
        """Demo users, one data source and three customers; returns what was created."""
        with self.lock:
            for user in DEMO_USERS:
                self.add_user(user)
            ds_uuid = self.data_sources[0] if self.data_sources else self.add_data_source()
            customers: dict[str, dict[str, Any]] = {}
            for name, email, external_id in DEMO_CUSTOMERS:
                existing = self._customers_matching(external_id, ds_uuid)
                customers[email] = (
                    dict(existing[0])
                    if existing
                    else self.add_customer(name=name, email=email, external_id=external_id, data_source_uuid=ds_uuid)
                )
            return {"users": list(DEMO_USERS), "data_source_uuid": ds_uuid, "customers": customers}

    # ----------------------------------------------------------------- helpers (lock held)
    def _take_customer_id(self) -> int:
        taken, self._next_customer_id = self._next_customer_id, self._next_customer_id + 1
        return taken

    def _next_created(self) -> datetime:
        now = datetime.now(UTC)
        if now <= self._last_created:
            now = self._last_created + timedelta(microseconds=1)
        self._last_created = now
        return now

    def _insert_customer(
        self, *, uuid: str | None, name: str, email: str | None, external_id: str, data_source_uuid: str
    ) -> dict[str, Any]:
        created = self._next_created()
        customer_uuid = uuid or f"cus_{uuid_module.uuid4()}"
        customer = {
            "id": self._take_customer_id(),
            "uuid": customer_uuid,
            "external_id": external_id,
            "external_ids": [external_id],
            "data_source_uuid": data_source_uuid,
            "data_source_uuids": [data_source_uuid],
            "name": name,
            "email": email or "",
            "status": "New Lead",
            "lead_created_at": None,
            "customer-since": None,
            "attributes": {"custom": {}, "tags": []},
        }
        self.customers[customer_uuid] = customer
        self._sort_keys[customer_uuid] = (created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), customer_uuid)
        return customer

    def _customers_matching(self, external_id: str | None, data_source_uuid: str | None) -> list[dict[str, Any]]:
        return [
            c
            for c in self.customers.values()
            if (external_id is None or external_id in c["external_ids"])
            and (data_source_uuid is None or data_source_uuid in c["data_source_uuids"])
        ]
