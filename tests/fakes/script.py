"""What reps do to Close tasks in the convergence properties (unit and integration tiers).

Both worlds (in-memory fakes, and the simulators over HTTP) offer the same rep-side actions,
so one script drives either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from hypothesis import strategies as st


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


@dataclass(frozen=True)
class Script:
    """What the reps do in one example: ``task_count`` tasks, then these actions in order."""

    task_count: int
    actions: list[tuple[str, int]]  # (operation, task index)


def scripts(operations: tuple[str, ...], *, max_tasks: int, max_steps: int) -> st.SearchStrategy[Script]:
    # One integer per step (operation and task) is cheaper to draw than a tuple. Strategies
    # are built once: one made inside the composite is looked up again on every draw.
    task_counts = st.integers(min_value=1, max_value=max_tasks)
    steps = {
        count: st.lists(st.integers(0, len(operations) * count - 1), max_size=max_steps)
        for count in range(1, max_tasks + 1)
    }

    @st.composite
    def draw_script(draw: st.DrawFn) -> Script:
        task_count = draw(task_counts)
        codes = draw(steps[task_count])
        return Script(task_count, [(operations[code % len(operations)], code // len(operations)) for code in codes])

    return draw_script()
