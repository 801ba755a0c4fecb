"""What applying one Close event did: returned by the engine, logged and turned into metrics."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    CREATED = "created"  # a ChartMogul task was created (or adopted after an uncertain POST)
    UPDATED = "updated"  # changed fields were PATCHed
    COMPLETED = "completed"  # the PATCH marked the task complete
    REOPENED = "reopened"  # the task was marked incomplete again
    RECREATED = "recreated"  # deleted and created again (lead change, or ChartMogul lost it)
    DELETED = "deleted"  # the ChartMogul task was deleted; a tombstone remains
    TOMBSTONED = "tombstoned"  # a delete for a task never mirrored: only the tombstone is written
    UNCHANGED = "unchanged"  # a newer Close version with nothing to push
    SKIPPED_STALE = "skipped_stale"  # version at or below the one applied, or after a tombstone
    IGNORED = "ignored"  # not a task we mirror (type outside TASK_TYPES, irrelevant event)
    PARKED = "parked"  # no (or an ambiguous) customer, or ChartMogul refused it permanently
    NOTED = "noted"  # a completion activity recorded for later use, nothing to push yet
    COALESCED = "coalesced"  # a newer event of the same task in the same batch was applied instead


@dataclass(frozen=True)
class ApplyResult:
    outcome: Outcome
    close_task_id: str | None
    chartmogul_task_uuid: str | None = None
    reason: str | None = None
    chartmogul_calls: int = 0
    close_calls: int = 0

    @property
    def effectual(self) -> bool:
        """Whether the event changed anything in ChartMogul."""
        return self.outcome in {
            Outcome.CREATED,
            Outcome.UPDATED,
            Outcome.COMPLETED,
            Outcome.REOPENED,
            Outcome.RECREATED,
            Outcome.DELETED,
        }
