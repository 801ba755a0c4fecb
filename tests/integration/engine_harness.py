"""A running engine over real parts: Close and ChartMogul simulators over HTTP, DynamoDB Local.

`SyncWorld` is what a test drives: a rep changes tasks in the Close simulator, the test
delivers (some of) the resulting events to the engine, and then asserts on the ChartMogul
simulator's state and on the calls it received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasksync.config import SyncSettings
from tasksync.dal.links import TaskLinkStore
from tasksync.logic.results import ApplyResult
from tasksync.logic.sync import TaskSync
from tasksync.logic.translate import due_date, summary
from tasksync.models.chartmogul import normalize_due_date
from tasksync.models.close import CloseEvent, CloseTask
from tasksync.wiring import ApiKeys, SyncServices, build_services
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.fakes.world import DEFAULT_ASSIGNEE, OTHER_REP_EMAIL, REP_EMAIL, FakeClock, deliver_until_done

__all__ = ["DEFAULT_ASSIGNEE", "SyncWorld", "make_world"]


@dataclass
class SyncWorld:
    close: CloseSimulator
    chartmogul: ChartMogulSimulator
    services: SyncServices
    clock: FakeClock
    rep: str
    other_rep: str
    rep_id: str
    other_rep_id: str
    lead: str
    other_lead: str
    customer: str
    other_customer: str
    delivered: list[str] = field(default_factory=list)

    @property
    def engine(self) -> TaskSync:
        return self.services.engine

    @property
    def links(self) -> TaskLinkStore:
        return self.services.links

    def apply(self, event: dict[str, Any]) -> ApplyResult:
        self.delivered.append(event["id"])
        return self.engine.apply(CloseEvent.model_validate(event))

    def apply_until_done(self, event: dict[str, Any], attempts: int = 50) -> ApplyResult:
        return deliver_until_done(self.apply, self.clock, event, attempts)

    def events_for(self, task_id: str, object_type_prefix: str = "task.") -> list[dict[str, Any]]:
        return [
            e
            for e in self.close.events
            if e["object_type"].startswith(object_type_prefix) and e["object_id"] == task_id
        ]

    def new_task(self, text: str = "Renewal call", **fields: Any) -> dict[str, Any]:
        """A rep creates a task (by default: on the first lead, assigned to the rep, dated)."""
        fields.setdefault("assigned_to", self.rep_id)
        fields.setdefault("date", "2025-03-01")
        return self.close.create_task(lead_id=fields.pop("lead_id", self.lead), text=text, **fields)

    def last_event(self, task_id: str) -> dict[str, Any]:
        return self.events_for(task_id)[-1]

    def cm_tasks(self, customer_uuid: str | None = None) -> list[dict[str, Any]]:
        return list(self.chartmogul.live_tasks(customer_uuid))

    def cm_writes(self) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.chartmogul.calls if c.method != "GET"]

    def reset_calls(self) -> None:
        self.chartmogul.calls.clear()
        self.close.calls.clear()

    def expected_fields(self, task: dict[str, Any], assignee: str) -> dict[str, Any]:
        parsed = CloseTask.model_validate(task)
        return {"task_details": summary(parsed), "assignee": assignee, "due_date": due_date(parsed)}

    def assert_mirrors(self, task_id: str, assignee: str | None = None) -> dict[str, Any]:
        """Exactly one live ChartMogul task mirrors the Close task, with the right fields."""
        task = self.close.tasks[task_id]
        link = self.links.get(task_id)
        assert link is not None, f"no link for {task_id}"
        assert link.cm_task_uuid is not None, f"{task_id} is {link.state} ({link.parked_reason})"
        mirrored = self.chartmogul.tasks[link.cm_task_uuid]
        expected = self.expected_fields(task, assignee or self.rep)
        assert mirrored["task_details"] == expected["task_details"]
        assert mirrored["assignee"] == expected["assignee"]
        assert normalize_due_date(mirrored["due_date"]) == normalize_due_date(expected["due_date"])
        assert (mirrored["completed_at"] is not None) == bool(task["is_complete"])
        same = [t for t in self.cm_tasks() if t["task_details"] == mirrored["task_details"]]
        assert len(same) == 1, f"{len(same)} ChartMogul tasks look like {task_id}"
        return mirrored


def make_world(
    close: CloseSimulator,
    chartmogul: ChartMogulSimulator,
    dynamodb: Any,
    state_table: str,
    **settings_overrides: Any,
) -> SyncWorld:
    rep = close.add_user(REP_EMAIL, first_name="Alice")["id"]
    other_rep = close.add_user(OTHER_REP_EMAIL, first_name="Bob")["id"]
    lead = close.add_lead("Acme", emails=["ops@acme.example"])["id"]
    other_lead = close.add_lead("Globex", emails=["finance@globex.example"])["id"]
    for email in (REP_EMAIL, OTHER_REP_EMAIL, DEFAULT_ASSIGNEE):
        chartmogul.add_user(email)
    customer = chartmogul.add_customer(name="Acme", email="ops@acme.example")["uuid"]
    other_customer = chartmogul.add_customer(name="Globex", email="finance@globex.example")["uuid"]
    values: dict[str, Any] = {
        "close_api_url": f"{close.url}/api/v1",
        "chartmogul_api_url": f"{chartmogul.url}/v1",
        "state_table": state_table,
        "default_assignee": DEFAULT_ASSIGNEE,
        # Close and ChartMogul emails are the same here; unmapped users go to DEFAULT_ASSIGNEE.
        "assignee_map": {REP_EMAIL: REP_EMAIL, OTHER_REP_EMAIL: OTHER_REP_EMAIL},
        "create_lease_seconds": 30,
        "http_read_timeout": 5.0,
    }
    values.update(settings_overrides)
    settings = SyncSettings.model_validate(values)
    clock = FakeClock()
    services = build_services(
        settings,
        dynamodb=dynamodb,
        keys=ApiKeys(close=close.api_key, chartmogul=chartmogul.api_key),
        clock=clock,
    )
    return SyncWorld(
        close=close,
        chartmogul=chartmogul,
        services=services,
        clock=clock,
        rep=REP_EMAIL,
        other_rep=OTHER_REP_EMAIL,
        rep_id=rep,
        other_rep_id=other_rep,
        lead=lead,
        other_lead=other_lead,
        customer=customer,
        other_customer=other_customer,
    )
