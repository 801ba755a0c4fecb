"""The sync-back over the in-memory world: one timeline for Close, ChartMogul and the links.

Close's and ChartMogul's timestamps start at the engine clock's time and tick forward, so a
person acting in either tool acts *after* the sync's last write unless the test moves the
engine clock on; the order of actions in a test is the order of their timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tasksync.logic.syncback import SyncBack, SyncBackReport
from tests.fakes.world import World, make_world


@dataclass
class InMemoryLedger:
    passes: int = 0
    reports: list[SyncBackReport] = field(default_factory=list)

    def count_pass(self) -> int:
        self.passes += 1
        return self.passes

    def record(self, report: SyncBackReport) -> None:
        self.reports.append(report)


@dataclass
class SyncBackWorld:
    world: World
    sync_back: SyncBack
    ledger: InMemoryLedger

    def mirrored_task(self, text: str = "Renewal call", **fields: Any) -> tuple[str, str]:
        """A Close task mirrored into ChartMogul: (Close task id, ChartMogul task uuid)."""
        task = self.world.new_task(text, **fields)
        self.world.apply_until_done(self.world.last_event(task["id"]))
        link = self.world.links.get(task["id"])
        assert link is not None
        assert link.cm_task_uuid is not None
        return task["id"], link.cm_task_uuid

    def deliver_close_events_since(self, count: int) -> None:
        """Deliver, as webhooks, the Close events logged after the first ``count`` (the echo)."""
        for event in self.world.close.events[count:]:
            self.world.apply_until_done(event)


def make_sync_back_world(every_passes: int = 1, **settings: Any) -> SyncBackWorld:
    world = make_world(**settings)
    world.close.start_at(datetime.fromtimestamp(world.clock.now, UTC))
    ledger = InMemoryLedger()
    sync_back = SyncBack(
        close=world.close,
        chartmogul=world.chartmogul,
        links=world.links,
        ledger=ledger,
        every_passes=every_passes,
        clock=world.clock,
    )
    return SyncBackWorld(world, sync_back, ledger)
