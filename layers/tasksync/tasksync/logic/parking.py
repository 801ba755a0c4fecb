"""Parking: a task that cannot be mirrored now waits, with its reason, for the reconciler's retry.

Permanent problems (no or several customers, a refusal by ChartMogul, an assignee nobody can
replace, a DELETE that failed) park the task's link instead of failing its event into the DLQ:
state `parked`, with a backoff of PARK_RETRY_BASE_SECONDS doubling per consecutive park up to
PARK_RETRY_MAX_SECONDS. The reconciler re-drives the links whose `retry_at` has come.

Rules kept here, so that no retry brings back a wrong state:
- a park never moves the link's lead while the link holds a customer: a customer is only ever
  reused for the lead it was resolved for;
- a mirrored task that moved to a lead with no customer leaves its old customer first;
- a failed delete stays a delete (`pending_delete`), whatever event comes next;
- a retry that turns out to be ignored takes the link out of the retry index.
"""

from __future__ import annotations

from collections.abc import Callable

from tasksync.config import SyncSettings
from tasksync.logic.ports import ChartMogulApi, LinkStore
from tasksync.logic.results import ApplyResult, Outcome
from tasksync.models.close import CloseTask
from tasksync.models.link import LinkState, TaskLink


class Parking:
    def __init__(
        self, *, settings: SyncSettings, links: LinkStore, chartmogul: ChartMogulApi, clock: Callable[[], float]
    ) -> None:
        self.settings = settings
        self.links = links
        self.chartmogul = chartmogul
        self.clock = clock

    def park(
        self,
        task_id: str,
        link: TaskLink | None,
        *,
        reason: str,
        task: CloseTask | None = None,
        task_type: str | None = None,
        version: str | None = None,
    ) -> ApplyResult:
        """Keep the task for a later retry instead of dropping it."""
        base = link or TaskLink.unseen(task_id)
        lead_id = task.lead_id if task is not None and base.customer_uuid is None else base.lead_id
        parked = self._parked(base, reason=reason, version=version, lead_id=lead_id, task_type=task_type, task=task)
        saved = self.links.save(link, parked)
        return ApplyResult(Outcome.PARKED, task_id, saved.cm_task_uuid, reason=parked.parked_reason)

    def park_unmatched(self, task: CloseTask, link: TaskLink | None, *, reason: str, version: str) -> ApplyResult:
        """No (or several) customers for the task's lead. If the task is mirrored under another
        lead's customer (it was moved), it no longer belongs there: delete it first. The parked
        retry creates it under the new lead's customer once that exists."""
        if link is None or link.cm_task_uuid is None:
            return self.park(task.id, link, reason=reason, task=task, version=version)
        self.chartmogul.delete_task(link.cm_task_uuid)  # False: already gone, just as good
        withdrawn = link.withdrawn(self.clock())
        parked = self._parked(withdrawn, reason=reason, version=version, lead_id=task.lead_id, task=task)
        self.links.save_with_claim(link, parked, release=link.cm_task_uuid)
        return ApplyResult(Outcome.PARKED, task.id, reason=parked.parked_reason)

    def park_delete(self, link: TaskLink, *, reason: str) -> ApplyResult:
        """The ChartMogul DELETE failed for good (e.g. a 401 during a key rotation): remember
        that this is a delete, so no late event re-activates the link; the retry deletes again."""
        parked = link.delete_parked(
            reason=reason,
            now=self.clock(),
            backoff_base=self.settings.park_retry_base_seconds,
            backoff_max=self.settings.park_retry_max_seconds,
            task_type=link.task_type,
        )
        saved = self.links.save(link, parked)
        return ApplyResult(Outcome.PARKED, link.close_task_id, saved.cm_task_uuid, reason=parked.parked_reason)

    def ignored(self, task_id: str, link: TaskLink | None, reason: str) -> ApplyResult:
        """Not a task we sync. A parked link whose retry this was leaves the retry index, so the
        reconciler stops re-driving it (and the parked count can fall)."""
        if link is not None and link.state is LinkState.PARKED and link.retry_at is not None:
            self.links.save(link, link.unparked(reason=f"not retried: {reason}", now=self.clock()))
        return ApplyResult(Outcome.IGNORED, task_id, reason=reason)

    def _parked(
        self,
        base: TaskLink,
        *,
        reason: str,
        version: str | None,
        lead_id: str | None,
        task: CloseTask | None,
        task_type: str | None = None,
    ) -> TaskLink:
        return base.parked(
            reason=reason,
            now=self.clock(),
            backoff_base=self.settings.park_retry_base_seconds,
            backoff_max=self.settings.park_retry_max_seconds,
            version=version,
            lead_id=lead_id,
            task_type=task.type if task is not None else task_type,
        )
