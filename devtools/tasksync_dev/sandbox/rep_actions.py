"""What a sales rep does to a task in Close, as one `update_task` call each.

The Close simulator (over HTTP) and the in-memory Close of the unit tests both play the rep, and
the same scripts drive both; each keeps its own `update_task` (the one logs what Close logs, the
other a lighter copy of it), and shares these names for the rep's actions through this mixin.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class RepActions(ABC):
    """Complete, reopen, reassign and move a task: Close logs each as an update of the task."""

    @abstractmethod
    def update_task(self, task_id: str, **changes: Any) -> dict[str, Any]:
        """Apply ``changes`` to the task, log the events Close would, and return the task."""

    def complete_task(self, task_id: str) -> dict[str, Any]:
        return self.update_task(task_id, is_complete=True)

    def reopen_task(self, task_id: str) -> dict[str, Any]:
        return self.update_task(task_id, is_complete=False)

    def reassign_task(self, task_id: str, user_id: str | None) -> dict[str, Any]:
        return self.update_task(task_id, assigned_to=user_id)

    def move_task(self, task_id: str, lead_id: str) -> dict[str, Any]:
        """Move a task to another lead, as a lead merge does."""
        return self.update_task(task_id, lead_id=lead_id)
