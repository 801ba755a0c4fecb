"""Orphans: ChartMogul tasks an earlier create attempt made but never recorded.

ChartMogul tasks have no idempotency key, so after an uncertain POST (a timeout, a 5xx, a lost
answer, a crashed worker) the engine looks for the task it may have created before it POSTs
again or deletes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tasksync.logic.ports import ChartMogulApi, LinkStore
from tasksync.models.chartmogul import ChartMogulTask, normalize_due_date
from tasksync.models.link import TaskLink


def find_orphan(chartmogul: ChartMogulApi, links: LinkStore, link: TaskLink) -> ChartMogulTask | None:
    """A ChartMogul task an earlier attempt created for ``link``'s Close task, if any.

    ChartMogul tasks have no external id, so we match what the link says was sent (its
    `intended_*`): same customer, same due date, same `task_details`, and not claimed by
    another Close task.
    """
    close_task_id, customer_uuid, intended = link.close_task_id, link.intended_customer, link.intended_fields
    if not customer_uuid or not intended:
        return None
    due = normalize_due_date(intended.due_date) or intended.due_date
    day = datetime.fromisoformat(due[:10])
    # Filter a day wider on each side: how the API compares a timestamp with a date-only
    # filter is not documented; the exact comparison happens here.
    candidates = [
        task
        for task in chartmogul.iter_tasks(
            customer_uuid=customer_uuid,
            due_date_on_or_after=(day - timedelta(days=1)).date().isoformat(),
            due_date_on_or_before=(day + timedelta(days=1)).date().isoformat(),
        )
        if task.task_details == intended.task_details and normalize_due_date(task.due_date) == due
    ]
    candidates.sort(key=lambda task: task.created_at or "")
    for candidate in candidates:
        owner = links.claimed_by(candidate.task_uuid)
        if owner is None or owner == close_task_id:
            return candidate
    return None
