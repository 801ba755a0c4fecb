"""What one sync-back pass did: its counts, the writes it made, what it could not settle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Task ids listed in a report at most (the counts are complete).
REPORTED_TASKS_MAX = 20


@dataclass
class WriteBack:
    """One write the pass made, for the log line and the metrics."""

    close_task_id: str
    cm_task_uuid: str
    target: str  # "close" or "chartmogul"
    complete: bool
    conflict: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "close_task_id": self.close_task_id,
            "cm_task_uuid": self.cm_task_uuid,
            "target": self.target,
            "complete": self.complete,
            "conflict": self.conflict,
            "reason": self.reason,
        }


@dataclass
class SyncBackReport:
    started_at: str = ""
    checked: int = 0  # links compared with ChartMogul's list
    listed: int = 0  # open tasks ChartMogul listed
    candidates: int = 0
    completions_written: int = 0  # Close tasks completed
    reopenings_written: int = 0  # Close tasks reopened
    chartmogul_aligned: int = 0  # ChartMogul tasks set back to Close's state
    noted: int = 0
    conflicts: int = 0
    deferred: int = 0  # candidates left for the next pass
    reported_skipped: int = 0  # candidates reported as unsettled before, left alone this pass
    deleted_in_chartmogul: list[str] = field(default_factory=list)
    close_write_refused: str | None = None  # Close refused a write: the key may not write
    failures: list[str] = field(default_factory=list)
    writes: list[WriteBack] = field(default_factory=list)
    chartmogul_calls: int = 0
    close_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "checked": self.checked,
            "listed": self.listed,
            "candidates": self.candidates,
            "completions_written": self.completions_written,
            "reopenings_written": self.reopenings_written,
            "chartmogul_aligned": self.chartmogul_aligned,
            "noted": self.noted,
            "conflicts": self.conflicts,
            "deferred": self.deferred,
            "reported_skipped": self.reported_skipped,
            "deleted_in_chartmogul": self.deleted_in_chartmogul[:REPORTED_TASKS_MAX],
            "close_write_refused": self.close_write_refused,
            "failures": self.failures[:REPORTED_TASKS_MAX],
            "chartmogul_calls": self.chartmogul_calls,
            "close_calls": self.close_calls,
        }
