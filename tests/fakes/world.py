"""The engine over in-memory fakes: what the unit tier drives.

A test plays the rep in `FakeClose`, delivers (some of) the events to the engine, and asserts
on `FakeChartMogul`'s state and on the calls it received.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tasksync.config import SyncSettings
from tasksync.errors import ConcurrentUpdate, LeaseHeld, RetryableApiError
from tasksync.logic.results import ApplyResult
from tasksync.logic.sync import TaskSync
from tasksync.logic.translate import due_date, summary
from tasksync.models.chartmogul import ChartMogulTask, normalize_due_date
from tasksync.models.close import CloseEvent, CloseTask, refetch_event
from tasksync.models.link import LinkState
from tasksync.wiring import assemble_engine
from tests.fakes.chartmogul import FakeChartMogul
from tests.fakes.close import FakeClose
from tests.fakes.links import InMemoryLinkStore, InMemoryLookupCache

REP_EMAIL = "alice@sales.example"
OTHER_REP_EMAIL = "bob@sales.example"
DEFAULT_ASSIGNEE = "success@example.com"


class FakeClock:
    """Leases and park backoff read this clock, so tests move time instead of sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def deliver_until_done[EventT](
    apply: Callable[[EventT], ApplyResult], clock: FakeClock, event: EventT, attempts: int
) -> ApplyResult:
    """Deliver like SQS would: retry retryable failures until the event goes through.

    A held lease is waited out by moving the clock, not by sleeping.
    """
    for _ in range(attempts):
        try:
            return apply(event)
        except LeaseHeld as held:
            clock.advance(held.seconds_left + 1)
        except (RetryableApiError, ConcurrentUpdate):
            continue
    raise AssertionError(f"event {event} never went through {attempts} deliveries")


@dataclass
class World:
    close: FakeClose
    chartmogul: FakeChartMogul
    links: InMemoryLinkStore
    cache: InMemoryLookupCache
    engine: TaskSync
    clock: FakeClock
    rep_id: str
    other_rep_id: str
    lead: str
    other_lead: str
    customer: str
    other_customer: str
    rep: str = REP_EMAIL
    other_rep: str = OTHER_REP_EMAIL
    delivered: list[str] = field(default_factory=list)

    def apply(self, event: dict[str, Any] | CloseEvent) -> ApplyResult:
        parsed = event if isinstance(event, CloseEvent) else CloseEvent.model_validate(event)
        self.delivered.append(parsed.id)
        return self.engine.apply(parsed)

    def apply_until_done(self, event: dict[str, Any] | CloseEvent, attempts: int = 50) -> ApplyResult:
        return deliver_until_done(self.apply, self.clock, event, attempts)

    def new_task(self, text: str = "Renewal call", **fields: Any) -> dict[str, Any]:
        fields.setdefault("assigned_to", self.rep_id)
        fields.setdefault("date", "2025-03-01")
        return self.close.create_task(lead_id=fields.pop("lead_id", self.lead), text=text, **fields)

    def last_event(self, task_id: str) -> dict[str, Any]:
        return self.close.last_event(task_id)

    def retry_parked(self) -> list[ApplyResult]:
        """A reconciler run once every backoff is over: re-drive each parked task that is due."""
        self.clock.advance(self.engine.settings.park_retry_max_seconds + 1)
        moment = datetime.fromtimestamp(self.clock.now, UTC)
        due = [
            link
            for link in self.links.links.values()
            if link.state is LinkState.PARKED and link.retry_at is not None and link.retry_at <= self.clock.now
        ]
        return [
            self.apply_until_done(
                refetch_event(link.close_task_id, link.task_type or "lead", link.lead_id, moment, reason="retry"),
                attempts=1000,
            )
            for link in due
        ]

    def cm_tasks(self, customer_uuid: str | None = None) -> list[ChartMogulTask]:
        return self.chartmogul.live_tasks(customer_uuid)

    def assert_mirrors(self, task_id: str, assignee: str | None = None) -> ChartMogulTask:
        """Exactly one live ChartMogul task mirrors the Close task, with the right fields."""
        task = CloseTask.model_validate(self.close.tasks[task_id])
        link = self.links.get(task_id)
        assert link is not None, f"no link for {task_id}"
        assert link.cm_task_uuid is not None, f"{task_id} is {link.state} ({link.parked_reason})"
        mirrored = self.chartmogul.tasks[link.cm_task_uuid].model()
        assert mirrored.task_details == summary(task)
        assert mirrored.assignee == (assignee or self.rep)
        assert normalize_due_date(mirrored.due_date) == normalize_due_date(due_date(task))
        assert (mirrored.completed_at is not None) == task.is_complete
        same = [t for t in self.cm_tasks() if t.task_details == mirrored.task_details]
        assert len(same) == 1, f"{len(same)} ChartMogul tasks look like {task_id}"
        return mirrored


def make_world(*, reopen_via_null: bool = True, **settings_overrides: Any) -> World:
    close = FakeClose()
    chartmogul = FakeChartMogul(reopen_via_null=reopen_via_null, clock=close.tick)
    rep_id = close.add_user(REP_EMAIL)
    other_rep_id = close.add_user(OTHER_REP_EMAIL)
    lead = close.add_lead("Acme", emails=["ops@acme.example"])
    other_lead = close.add_lead("Globex", emails=["finance@globex.example"])
    for email in (REP_EMAIL, OTHER_REP_EMAIL, DEFAULT_ASSIGNEE):
        chartmogul.add_user(email)
    customer = chartmogul.add_customer(name="Acme", email="ops@acme.example")
    other_customer = chartmogul.add_customer(name="Globex", email="finance@globex.example")
    values: dict[str, Any] = {
        "default_assignee": DEFAULT_ASSIGNEE,
        # Close and ChartMogul emails are the same here; unmapped users go to DEFAULT_ASSIGNEE.
        "assignee_map": {REP_EMAIL: REP_EMAIL, OTHER_REP_EMAIL: OTHER_REP_EMAIL},
        "create_lease_seconds": 30,
    }
    values.update(settings_overrides)
    settings = SyncSettings.model_validate(values)
    clock = FakeClock()
    links, cache = InMemoryLinkStore(), InMemoryLookupCache(clock)
    engine = assemble_engine(settings, close=close, chartmogul=chartmogul, links=links, cache=cache, clock=clock)
    return World(
        close=close,
        chartmogul=chartmogul,
        links=links,
        cache=cache,
        engine=engine,
        clock=clock,
        rep_id=rep_id,
        other_rep_id=other_rep_id,
        lead=lead,
        other_lead=other_lead,
        customer=customer,
        other_customer=other_customer,
    )
