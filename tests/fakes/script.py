"""What reps do to Close tasks in the convergence properties (unit and integration tiers).

Both worlds (in-memory fakes, and the simulators over HTTP) offer the same rep-side actions,
so one script drives either.
"""

from __future__ import annotations

from typing import Any, Protocol


class RepActions(Protocol):
    @property
    def tasks(self) -> dict[str, dict[str, Any]]: ...

    def update_task(self, task_id: str, **changes: Any) -> dict[str, Any]: ...

    def complete_task(self, task_id: str) -> dict[str, Any]: ...

    def reopen_task(self, task_id: str) -> dict[str, Any]: ...

    def reassign_task(self, task_id: str, user_id: str | None) -> dict[str, Any]: ...

    def move_task(self, task_id: str, lead_id: str) -> dict[str, Any]: ...

    def delete_task(self, task_id: str) -> None: ...


class ScriptWorld(Protocol):
    @property
    def close(self) -> RepActions: ...

    rep_id: str
    other_rep_id: str
    lead: str
    other_lead: str


OPERATIONS = ("edit", "complete", "reopen", "reassign", "move", "redate", "delete")
# Also: take the assignee away, and move the task to a lead with no ChartMogul customer.
FIRST_WEEK_OPERATIONS = (*OPERATIONS, "unassign", "move_unmatched")


def perform(world: ScriptWorld, operation: str, task_id: str, step: int, unmatched_lead: str | None = None) -> None:
    close = world.close
    if task_id not in close.tasks:
        return  # deleted earlier
    task = close.tasks[task_id]
    match operation:
        case "edit":
            close.update_task(task_id, text=f"{task['text'].split(' #')[0]} #{step}")
        case "complete":
            if not task["is_complete"]:
                close.complete_task(task_id)
        case "reopen":
            if task["is_complete"]:
                close.reopen_task(task_id)
        case "reassign":
            target = world.other_rep_id if task["assigned_to"] == world.rep_id else world.rep_id
            close.reassign_task(task_id, target)
        case "move":
            close.move_task(task_id, world.other_lead if task["lead_id"] == world.lead else world.lead)
        case "redate":
            close.update_task(task_id, date=f"2025-04-{(step % 27) + 1:02d}")
        case "delete":
            close.delete_task(task_id)
        case "unassign":
            close.reassign_task(task_id, None)
        case "move_unmatched" if unmatched_lead is not None:
            close.move_task(task_id, unmatched_lead)
