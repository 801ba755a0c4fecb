"""The sync engine: `TaskSync.apply(event)` makes ChartMogul match one Close task event.

The engine is state-based, not replay-based: every created/updated/completed event carries
(or lets us fetch) the whole task, so applying the newest version is enough, and any older
version arriving late is skipped by comparing Close's `data.date_updated` with the version
stored on the TaskLink. What is hard is doing ChartMogul writes exactly once when ChartMogul
has no idempotency key; see `_create` for the lease-and-adopt protocol.

Errors the caller must retry (via SQS) propagate: RetryableApiError (429/5xx/timeouts),
LeaseHeld, ConcurrentUpdate. Permanent problems park the task instead of raising.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from tasksync.config import EngineSettings
from tasksync.errors import (
    AssigneeRejected,
    InvalidInput,
    LeaseHeld,
    NotFound,
    PermanentApiError,
    Settling,
)
from tasksync.logic.assignees import AssigneeResolver
from tasksync.logic.completions import CompletionTimes, reopen_confirmed
from tasksync.logic.creation import DesiredTask, Unassignable, adopt_orphan, post, store_created, take_lease
from tasksync.logic.customers import CustomerResolver, LinkedCustomer
from tasksync.logic.orphans import find_orphan
from tasksync.logic.parking import Parking
from tasksync.logic.ports import ChartMogulApi, CloseApi, LinkStore
from tasksync.logic.results import ApplyResult, Outcome
from tasksync.logic.translate import task_fields
from tasksync.models._parsing import format_utc
from tasksync.models.chartmogul import TaskFields
from tasksync.models.close import CloseEvent, CloseTask
from tasksync.models.link import LinkState, TaskLink


@dataclass(eq=False, kw_only=True)
class TaskSync:
    settings: EngineSettings
    close: CloseApi
    chartmogul: ChartMogulApi
    links: LinkStore
    customers: CustomerResolver
    assignees: AssigneeResolver
    clock: Callable[[], float] = time.time
    # Identifies this engine's creating leases (one per process is enough).
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    parking: Parking = field(init=False)
    completions: CompletionTimes = field(init=False)

    def __post_init__(self) -> None:
        self.parking = Parking(settings=self.settings, links=self.links, chartmogul=self.chartmogul, clock=self.clock)
        self.completions = CompletionTimes(
            links=self.links, chartmogul=self.chartmogul, clock=self.clock, recreate=self._recreate_gone
        )

    # ================================================================== entry point
    def read_ahead(self, task_ids: Sequence[str]) -> None:
        """The tasks of a batch about to be applied: their links are read in one go."""
        self.links.read_ahead(task_ids)

    def apply(self, event: CloseEvent, *, settle: bool = False, current: bool = False) -> ApplyResult:
        """Apply one event; report what was done and how many calls each API took.

        ``settle``: a change to a task written to ChartMogul less than SETTLE_SECONDS ago raises
        Settling instead of writing (the queue brings the event back then, with the task's
        later edits behind it). The worker asks for it on a message's first delivery only.
        ``current``: apply the task as Close has it now rather than as the event carries it (the
        worker asks for it on a later delivery: what waited goes out newest, and the task's
        events still queued behind it are then stale and cost no ChartMogul call).
        """
        chartmogul_before, close_before = self.chartmogul.calls, self.close.calls
        try:
            result = self._apply(event, settle, current)
        except (PermanentApiError, InvalidInput) as exc:
            # A permanent failure anywhere (Close says the lead is gone, an API key is refused,
            # an answer we cannot parse): park the task with the reason rather than retrying the
            # record into the DLQ; the reconciler retries parked tasks with backoff.
            task_id = event.close_task_id
            if task_id is None:
                raise
            result = self.parking.park(
                task_id, self.links.get(task_id), reason=f"permanent failure: {exc}", task_type=event.task_type
            )
        return replace(
            result,
            chartmogul_calls=self.chartmogul.calls - chartmogul_before,
            close_calls=self.close.calls - close_before,
        )

    def _apply(self, event: CloseEvent, settle: bool, current: bool) -> ApplyResult:
        if event.is_completion_activity:
            return self.completions.apply(event)
        task_id = event.close_task_id
        if not event.is_task_event:
            return ApplyResult(Outcome.IGNORED, task_id, reason=f"{event.object_type} {event.action} is not synced")
        if not task_id:
            return ApplyResult(Outcome.IGNORED, None, reason="the event names no task (object_id is empty)")
        link = self.links.get(task_id)
        # Close does not undelete: once a delete is pending, every event retries it. A task we
        # mirrored is deleted from ChartMogul even if TASK_TYPES no longer names its type.
        deleting = event.action == "deleted" or (link is not None and link.pending_delete)
        if deleting and link is not None:
            return self._delete(task_id, link)
        if event.task_type not in self.settings.task_types:
            return self.parking.ignored(task_id, link, f"task type {event.task_type!r} is not in TASK_TYPES")
        if deleting:
            return self._delete(task_id, link)
        if link is not None and link.state is LinkState.DELETED:
            return ApplyResult(Outcome.SKIPPED_STALE, task_id, reason="the task was deleted (tombstone)")
        try:
            read = self._read_task(event, task_id, current)
        except InvalidInput as exc:
            return self.parking.park(task_id, link, reason=f"invalid Close task data: {exc}", task_type=event.task_type)
        if read is None:
            return self._delete(task_id, link)
        task, event_time = read
        version = format_utc(task.date_updated)
        if link is not None and link.makes_stale(version):
            return ApplyResult(
                Outcome.SKIPPED_STALE,
                task_id,
                link.cm_task_uuid if link else None,
                reason=f"version {version} is not newer than the one applied",
            )
        if task.type not in self.settings.task_types:
            return self.parking.ignored(task_id, link, f"task type {task.type!r} is not in TASK_TYPES")
        return self._upsert(task, link, version, event_time, settle=settle)

    def _read_task(self, event: CloseEvent, task_id: str, current: bool) -> tuple[CloseTask, datetime] | None:
        """The task version to apply and its time; None when Close says the task is gone."""
        carried = event.task()
        if carried is not None and not current:
            return carried, event.date_updated
        # Event-log entries over an hour old carry no data for non-admin keys; ``current``
        # asks for the task as Close has it now.
        try:
            task = self.close.get_task(task_id)
        except NotFound:
            if carried is None:
                return None
            # Asked for the current task only: the event's own version still applies, and the
            # task's deleted event, if it is gone, follows it.
            return carried, event.date_updated
        return task, task.date_updated

    # ================================================================== create / update
    def _upsert(
        self,
        task: CloseTask,
        link: TaskLink | None,
        version: str,
        event_time: datetime,
        *,
        gone: bool = False,
        settle: bool = False,
    ) -> ApplyResult:
        """Make ChartMogul hold ``task``; ``gone`` says its ChartMogul task is known to be deleted."""
        now = self.clock()
        self._check_lease(link, now)
        mirrored = link is not None and link.cm_task_uuid is not None
        linked = (
            LinkedCustomer(link.customer_uuid, link.lead_id)
            if link is not None and mirrored and link.customer_uuid and link.lead_id
            else None
        )
        # Every event asks (the cache answers within CUSTOMER_CACHE_TTL_SECONDS), so tasks
        # follow their lead and its current match.
        match = self.customers.for_task(task.lead_id, linked)
        if match.customer_uuid is None:
            return self.parking.park_unmatched(task, link, reason=match.reason or "no customer", version=version)
        customer_uuid = match.customer_uuid
        # Nobody to name and no DEFAULT_ASSIGNEE: a mirrored task keeps its assignee and syncs on.
        kept = link.fields.assignee if link is not None and mirrored and link.fields else None
        choice = self.assignees.choose(task.assigned_to, keep=kept)
        assignee = choice.email
        if not assignee:
            return self.parking.park(
                task.id, link, reason=choice.reason or "the task has no assignee", task=task, version=version
            )
        hint = self.links.completion_hint(task.id) if task.is_complete else None
        if hint is not None and link is not None and link.completion_written_back(hint):
            hint = None  # the echo of our write-back: the person's time, in the link, stays
        previous_fields = link.fields if link is not None else None
        fields = task_fields(
            task,
            assignee=assignee,
            completion_hint=datetime.fromisoformat(hint) if hint else None,
            event_time=event_time,
            previously_completed_at=previous_fields.completed_at if previous_fields else None,
        )
        desired = DesiredTask(task, customer_uuid, fields, version)
        if link is None or not link.cm_task_uuid:
            return self._create(desired, link)
        if gone:
            return self._recreate(desired, link, already_gone=True)
        if link.customer_uuid != customer_uuid:
            # ChartMogul cannot move a task to another customer (a lead merge or a task moved
            # to another lead): delete it and create it again under the new customer.
            return self._recreate(desired, link)
        return self._update(desired, link, settle=settle)

    def _update(
        self, desired: DesiredTask, link: TaskLink, outcome: Outcome | None = None, *, settle: bool = False
    ) -> ApplyResult:
        task_uuid = link.cm_task_uuid
        if task_uuid is None:
            return self._create(desired, link)
        changes = desired.fields.changes_from(link.fields)
        if not changes:
            saved = self._save_active(link, task_uuid, desired, desired.fields, written=False)
            return ApplyResult(outcome or Outcome.UNCHANGED, desired.task.id, saved.cm_task_uuid)
        now = self.clock()
        until = link.settles_until(now, self.settings.settle_seconds) if settle else None
        if until is not None:
            raise Settling(desired.task.id, until - now)
        fields = desired.fields
        try:
            try:
                answer = self.chartmogul.update_task(task_uuid, changes)
            except AssigneeRejected as exc:
                # Never park a live task because of its assignee: without a fallback it keeps
                # the assignee it has.
                kept = link.fields.assignee if link.fields else None
                instead = self.assignees.refused(fields.assignee, f"HTTP {exc.status}", keep=kept)
                if instead.email is None:
                    raise
                fields = fields.with_assignee(instead.email)
                changes = fields.changes_from(link.fields)
                answer = self.chartmogul.update_task(task_uuid, changes) if changes else None
        except NotFound:
            return self._recreate(desired.with_fields(fields), link, already_gone=True)
        except PermanentApiError as exc:
            if changes.get("completed_at", "unchanged") is None:
                # UNVERIFIED upstream: ChartMogul may refuse a null completed_at outright (4xx).
                # Like an ignored null, reopen the only sure way: create the task again, open.
                return self._recreate(desired.with_fields(fields), link)
            return self.parking.park(
                desired.task.id, link, reason=_refusal("update", exc), task=desired.task, version=desired.version
            )
        if changes.get("completed_at", "unchanged") is None and not reopen_confirmed(
            self.chartmogul, task_uuid, answer
        ):
            # Not documented (upstream-apis.md, "Reopening"): whether PATCH {"completed_at": null} reopens a task.
            # If ChartMogul kept it completed, reopen it the only sure way: create it again.
            return self._recreate(desired.with_fields(fields), link)
        saved = self._save_active(link, task_uuid, desired, fields)
        if outcome is None:
            if "completed_at" in changes:
                outcome = Outcome.REOPENED if changes["completed_at"] is None else Outcome.COMPLETED
            else:
                outcome = Outcome.UPDATED
        return ApplyResult(outcome, desired.task.id, saved.cm_task_uuid)

    def _recreate_gone(self, task_id: str, link: TaskLink) -> ApplyResult:
        """The ChartMogul task of an active link is gone: create it again from the task as Close has it."""
        try:
            task = self.close.get_task(task_id)
        except NotFound:
            return self._delete(task_id, link)
        return self._upsert(task, link, format_utc(task.date_updated), task.date_updated, gone=True)

    def _recreate(self, desired: DesiredTask, link: TaskLink, *, already_gone: bool = False) -> ApplyResult:
        if link.cm_task_uuid is not None and not already_gone:
            self.chartmogul.delete_task(link.cm_task_uuid)
        # If we crash here, the link still points at the deleted task: the next event's PATCH
        # gets a 404 and comes back to this path with already_gone=True.
        return self._create(desired, link, release=link.cm_task_uuid, outcome=Outcome.RECREATED)

    def _create(
        self,
        desired: DesiredTask,
        link: TaskLink | None,
        *,
        release: str | None = None,
        outcome: Outcome = Outcome.CREATED,
    ) -> ApplyResult:
        """Create the ChartMogul task exactly once.

        1. Take a `creating` lease on the link (conditional write) before any POST.
        2. If an earlier attempt may have created the task (an uncertain answer, or a worker
           that died holding the lease), look for it and adopt it instead of POSTing again.
        3. POST; on an uncertain answer mark the link `maybe_created` and let SQS retry.
        4. Store the link and the claim on the new ChartMogul task in one transaction.

        ``release`` names the ChartMogul task this one replaces: its claim is dropped with
        the write that takes the new one.
        """
        now = self.clock()
        until = now + self.settings.create_lease_seconds
        lease = take_lease(self.links, desired, link, release, owner=self.owner, until=until, now=now)
        if lease.maybe_created:
            adopted = adopt_orphan(self.chartmogul, self.links, lease, release)
            if adopted is not None:
                if adopted.customer_uuid != desired.customer_uuid:
                    return self._recreate(desired, adopted)
                return self._update(desired, adopted, outcome=outcome)
            lease = self.links.save(lease, lease.intending(fields=desired.fields, customer_uuid=desired.customer_uuid))
        try:
            created, fields = post(
                desired,
                lease,
                chartmogul=self.chartmogul,
                links=self.links,
                assignees=self.assignees,
                customers=self.customers,
            )
        except Unassignable as nobody:
            return self.parking.park(
                desired.task.id, lease, reason=nobody.reason, task=desired.task, version=desired.version
            )
        except PermanentApiError as exc:
            return self.parking.park(
                desired.task.id, lease, reason=_refusal("create", exc), task=desired.task, version=desired.version
            )
        saved = store_created(self.links, lease, desired, created, fields, release=release, now=self.clock())
        return ApplyResult(outcome, desired.task.id, saved.cm_task_uuid)

    def _save_active(
        self, link: TaskLink, task_uuid: str, desired: DesiredTask, fields: TaskFields, *, written: bool = True
    ) -> TaskLink:
        return self.links.save(link, desired.activate(link, task_uuid, fields, self.clock(), written=written))

    @staticmethod
    def _check_lease(link: TaskLink | None, now: float) -> None:
        if link is not None and link.lease_held(now):
            raise LeaseHeld(link.close_task_id, link.lease_until - now)

    # ================================================================== delete
    def _delete(self, task_id: str, link: TaskLink | None) -> ApplyResult:
        now = self.clock()
        if link is None:
            self.links.save(None, TaskLink.unseen(task_id).tombstoned(now))
            return ApplyResult(Outcome.TOMBSTONED, task_id, reason="deleted before it was mirrored")
        if link.state is LinkState.DELETED:
            return ApplyResult(Outcome.SKIPPED_STALE, task_id, reason="already deleted")
        self._check_lease(link, now)
        target = link.cm_task_uuid
        if target is None and link.may_exist_in_chartmogul(now):
            orphan = find_orphan(self.chartmogul, self.links, link)
            target = orphan.task_uuid if orphan else None
        if target is not None:
            # False means it was already gone (404); UNVERIFIED whether ChartMogul answers 404
            # or 200 for a second DELETE, and both are fine here.
            try:
                self.chartmogul.delete_task(target)
            except PermanentApiError as exc:
                # E.g. a 401 during a key rotation. Remember that this is a delete, so that no
                # late event of the task re-activates it; the parked retry deletes it again.
                return self.parking.park_delete(link, reason=_refusal("delete", exc))
        self.links.save_with_claim(link, link.tombstoned(now), release=link.cm_task_uuid)
        return ApplyResult(Outcome.DELETED if target else Outcome.TOMBSTONED, task_id, target)


def _refusal(action: str, exc: PermanentApiError) -> str:
    return f"ChartMogul refused the {action} (HTTP {exc.status}): {exc.body[:300]}"
