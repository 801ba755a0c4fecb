"""Completion times: when a Close task was completed, from `activity.task_completed`.

The task's own event says *that* it is complete; the activity says *when*. The activity may
arrive before or after the task's event, so its time is noted in the link store (a hint the
engine reads when it pushes a completed task), and a time already pushed is corrected when it
differs by more than COMPLETION_DRIFT_SECONDS. An activity older than the stored one (a
completion that was withdrawn and made again) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tasksync.errors import InvalidInput, NotFound
from tasksync.logic.ports import ChartMogulApi, LinkStore
from tasksync.logic.results import ApplyResult, Outcome
from tasksync.logic.translate import utc_timestamp
from tasksync.models._parsing import format_utc
from tasksync.models.close import CloseEvent
from tasksync.models.link import LinkState, TaskLink

# Creates the ChartMogul task of an active link again (it was deleted in ChartMogul).
Recreate = Callable[[str, TaskLink], ApplyResult]

# The life of Close's event log: no activity older than this can still arrive.
COMPLETION_HINT_TTL_SECONDS = 30 * 86400
# A completion time from `activity.task_completed` that differs from what we pushed by more
# than this is corrected; smaller drifts are the same moment seen through two events.
COMPLETION_DRIFT_SECONDS = 60


class CompletionTimes:
    def __init__(
        self, *, links: LinkStore, chartmogul: ChartMogulApi, clock: Callable[[], float], recreate: Recreate
    ) -> None:
        self.links = links
        self.chartmogul = chartmogul
        self.clock = clock
        self.recreate = recreate

    def apply(self, event: CloseEvent) -> ApplyResult:
        """Note (or withdraw) a completion time; correct a pushed one that is off by more than a minute."""
        try:
            activity = event.completion()
        except InvalidInput as exc:
            return ApplyResult(Outcome.IGNORED, event.close_task_id, reason=f"invalid completion activity: {exc}")
        if activity is None:
            return ApplyResult(Outcome.IGNORED, event.close_task_id, reason="the completion activity has no data")
        task_id = activity.task_id
        activity_date = format_utc(activity.date_created)
        if event.action == "deleted":
            # "Task marked incomplete again": the task's own updated event reopens it.
            self.links.forget_completion(task_id, activity_date)
            return ApplyResult(Outcome.NOTED, task_id, reason="completion withdrawn")
        stamp = utc_timestamp(activity.completed_at)
        newest = self.links.note_completion(
            task_id, stamp, activity_date, expires_at=int(self.clock()) + COMPLETION_HINT_TTL_SECONDS
        )
        if not newest:
            # A newer completion is stored: this one was withdrawn (complete, reopen, complete
            # again) and arrives late. Its time must not overwrite the newer one.
            return ApplyResult(Outcome.NOTED, task_id, reason="an older completion activity: a newer one is stored")
        link = self.links.get(task_id)
        fields = link.fields if link is not None else None
        pushed = fields.completed_at if fields is not None else None
        if link is None or fields is None or link.state is not LinkState.ACTIVE or not pushed or not link.cm_task_uuid:
            return ApplyResult(Outcome.NOTED, task_id, reason="completion time noted")
        drift = abs((datetime.fromisoformat(pushed) - datetime.fromisoformat(stamp)).total_seconds())
        if drift <= COMPLETION_DRIFT_SECONDS:
            return ApplyResult(Outcome.NOTED, task_id, link.cm_task_uuid, reason="completion time already right")
        try:
            self.chartmogul.update_task(link.cm_task_uuid, {"completed_at": stamp})
        except NotFound:
            # Deleted in ChartMogul: create it again now, as an update's 404 does (the stored
            # hint gives it this completion time).
            return self.recreate(task_id, link)
        self.links.save(link, link.completion_corrected(stamp, self.clock()))
        return ApplyResult(Outcome.UPDATED, task_id, link.cm_task_uuid, reason="completion time corrected")
