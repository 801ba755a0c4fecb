"""Who changes tasks in the chaos run: reps in the sandbox Close, and customer-success people who
complete tasks in ChartMogul.
"""

from __future__ import annotations

import random
from typing import Any

from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.e2e.chaos_faults import ChaosCounts

LEADS = {"acme": "ops@acme.example", "globex": "finance@globex.example", "initech": "cto@initech.example"}
REPS = ("alice", "bob", None)  # None: an unassigned task, which goes to DEFAULT_ASSIGNEE
OPERATIONS = ("edit", "reassign", "redate", "move", "complete", "reopen", "complete", "edit")
CS_SHARE = 0.10  # of the tasks, completed by a CS person in ChartMogul during the load


class CloseReps:
    """Reps working in the sandbox Close: the load."""

    def __init__(self, close: CloseSimulator, ids: dict[str, str], rng: random.Random) -> None:
        self.close = close
        self.ids = ids
        self.rng = rng
        self.numbers: dict[str, int] = {}
        self.edits = 0

    def text(self, number: int) -> str:
        self.edits += 1
        return f"Chaos #{number:04d} call about the renewal, take {self.edits}"

    def rep(self) -> str | None:
        choice = self.rng.choice(REPS)
        return None if choice is None else self.ids[choice]

    def date(self) -> str:
        return f"2026-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"

    def create(self) -> None:
        number = len(self.numbers) + 1
        task = self.close.create_task(
            lead_id=self.ids[self.rng.choice(list(LEADS))],
            text=self.text(number),
            assigned_to=self.rep(),
            date=self.date(),
        )
        self.numbers[task["id"]] = number

    def change(self, task_id: str) -> None:
        task = self.close.tasks.get(task_id)
        if task is None:
            return
        match self.rng.choice(OPERATIONS):
            case "edit":
                self.close.update_task(task_id, text=self.text(self.numbers[task_id]))
            case "reassign":
                self.close.reassign_task(task_id, self.rep())
            case "redate":
                self.close.update_task(task_id, date=self.date())
            case "move":
                self.close.move_task(task_id, self.ids[self.rng.choice(list(LEADS))])
            case "complete" if not task["is_complete"]:
                self.close.complete_task(task_id)
            case "reopen" if task["is_complete"]:
                self.close.reopen_task(task_id)
            case _:
                self.close.update_task(task_id, text=self.text(self.numbers[task_id]))

    def delete(self, task_id: str) -> None:
        if task_id in self.close.tasks:
            self.close.delete_task(task_id)


class CsPeople:
    """Customer-success people ticking tasks off in ChartMogul (the sync-back's load)."""

    def __init__(self, chartmogul: ChartMogulSimulator, counts: ChaosCounts, rng: random.Random, *, tasks: int) -> None:
        self.chartmogul = chartmogul
        self.counts = counts
        self.targets = {f"{n:04d}" for n in rng.sample(range(1, tasks + 1), k=int(tasks * CS_SHARE))}

    def act(self) -> None:
        """Complete every target task mirrored by now and still open in ChartMogul, once."""
        for number, mirrors in group_by_number(self.chartmogul).items():
            if number in self.targets and len(mirrors) == 1 and mirrors[0]["completed_at"] is None:
                self.targets.discard(number)
                self.chartmogul.person_completes(mirrors[0]["task_uuid"])
                self.counts.cs_completions += 1


def group_by_number(chartmogul: ChartMogulSimulator) -> dict[str, list[dict[str, Any]]]:
    """Live ChartMogul tasks by the four-digit number in their details (CloseReps.text)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for mirror in chartmogul.live_tasks():
        groups.setdefault(mirror["task_details"].split("#", 1)[-1][:4], []).append(mirror)
    return groups
