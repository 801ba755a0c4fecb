"""The TaskLink: which ChartMogul task mirrors which Close task, and where its sync stands.

A link moves between four states only through the named transitions below; each sets and
clears exactly the fields its state implies, so no caller assembles a state by hand.

    (no link) --leased--> CREATING --activated/adopted--> ACTIVE
    CREATING --released--> CREATING (no lease: the SQS retry may take it again)
    CREATING --intending--> CREATING (no orphan found: the lease describes the POST to send)
    any --parked--> PARKED --leased/activated--> ...
    ACTIVE --withdrawn--> (no ChartMogul task: the task left its customer) --parked--> PARKED
    any --delete_parked--> PARKED with a pending delete --tombstoned--> DELETED
    PARKED --unparked--> PARKED out of the retry index (its retry was ignored)
    any --tombstoned--> DELETED (final)
    ACTIVE --completion_corrected--> ACTIVE
    ACTIVE --completion_synced_back--> ACTIVE (the reconciler's sync-back settled a completion)
    ACTIVE --chartmogul_written--> ACTIVE (the sync-back wrote to ChartMogul, whatever came of it)
    ACTIVE --sync_back_reported--> ACTIVE (the sync-back cannot settle it: skipped for a while)
    PARKED --retry_enqueued--> PARKED (its retry is queued: not enqueued again at once)

The table in docs/data-model.md lists the fields each state carries. Storing a link (the
optimistic ``rev`` and the claim on its ChartMogul task) is the LinkStore's job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from tasksync.models.chartmogul import TaskFields

PARKED_REASON_MAX = 500
# A link the sync-back reported as unsettled is looked at again after this long, or as soon as
# the sync changes it (a new Close version, other fields, another ChartMogul task).
SYNC_BACK_RECHECK_SECONDS = 24 * 3600
# A Close completion this close to the Close version our write-back produced is that write's.
WRITE_BACK_ECHO_SECONDS = 60


class LinkState(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"  # tombstone: a late created/updated event must never resurrect the task
    PARKED = "parked"  # waiting for a customer or for a human; retried by the reconciler
    CREATING = "creating"  # a worker holds (or held) the lease to POST the ChartMogul task


@dataclass(frozen=True)
class TaskLink:
    close_task_id: str
    state: LinkState
    rev: int = 0
    version: str | None = None  # Close data.date_updated last applied (canonical UTC string)
    pending_version: str | None = None  # the version a parked/creating link is trying to apply
    cm_task_uuid: str | None = None
    customer_uuid: str | None = None
    lead_id: str | None = None
    task_type: str | None = None
    fields: TaskFields | None = None
    fingerprint: str | None = None
    # Creating: the lease, and what we were about to POST (to find it again after a crash).
    lease_owner: str | None = None
    lease_until: float = 0.0
    maybe_created: bool = False
    intended_fields: TaskFields | None = None
    intended_customer: str | None = None
    # Parked.
    parked_reason: str | None = None
    retry_at: float | None = None
    attempts: int = 0
    # The Close task is deleted but the ChartMogul DELETE failed: every later event (the parked
    # retry included) retries the delete, and none may bring the task back.
    pending_delete: bool = False
    updated_at: float = 0.0
    # When the sync last wrote this task to ChartMogul (our clock): a change soon after waits
    # out the settle window (`settles_until`).
    pushed_at: float = 0.0
    # Sync-back: the last completion state the reconciler wrote to Close for this task, the
    # Close `date_updated` that write produced, and when (our clock). A later pass reads the
    # ChartMogul task as agreeing with `fields`, so it never acts on its own write again.
    written_back_complete: bool | None = None
    written_back_version: str | None = None
    written_back_at: float = 0.0
    # The latest of our clock and ChartMogul's `updated_at` after the sync-back's last
    # ChartMogul write: a ChartMogul change not newer than this is our own.
    chartmogul_written_at: float = 0.0
    # What the sync-back could not settle (deleted in ChartMogul, Close task gone, a kept
    # completion, a refused Close write), for which link contents, and when it looked.
    sync_back_reported: str | None = None
    sync_back_reported_key: str | None = None
    sync_back_checked_at: float = 0.0

    @classmethod
    def unseen(cls, close_task_id: str) -> TaskLink:
        """The starting point of a task nothing was stored for: no lease, nothing created."""
        return cls(close_task_id=close_task_id, state=LinkState.CREATING)

    # ------------------------------------------------------------------ questions
    def lease_held(self, now: float) -> bool:
        return self.state is LinkState.CREATING and self.lease_until > now

    def crashed_while_creating(self, now: float) -> bool:
        """The lease ran out without being released: the worker died, maybe after its POST."""
        return self.state is LinkState.CREATING and 0 < self.lease_until <= now

    def may_exist_in_chartmogul(self, now: float) -> bool:
        """A POST for this task may have gone through (an uncertain answer or a crash)."""
        return self.maybe_created or self.crashed_while_creating(now)

    def makes_stale(self, version: str) -> bool:
        """Whether applying Close task ``version`` would go back in time."""
        if self.state in (LinkState.ACTIVE, LinkState.DELETED):
            return self.version is not None and version <= self.version
        # Parked or creating: a retry of the very version we are trying to apply must pass;
        # anything older than it must not overtake it.
        floor = self.pending_version or self.version
        return floor is not None and version < floor

    def settles_until(self, now: float, window: float) -> float | None:
        """Until when a change to this mirrored task waits, or None to write it now: ``window``
        seconds after the sync's last ChartMogul write."""
        if self.state is not LinkState.ACTIVE or window <= 0 or self.pushed_at + window <= now:
            return None
        return self.pushed_at + window

    def completion_written_back(self, completed_at: str) -> bool:
        """Whether a Close completion at ``completed_at`` is the echo of the sync-back's own PUT.

        Close stamps that completion with the PUT's time, later than the person's completion in
        ChartMogul that the link holds: the echo must not move ChartMogul's time to it.
        """
        if not self.written_back_complete or self.written_back_version is None:
            return False
        moment = datetime.fromisoformat(completed_at.replace("Z", "+00:00"))
        written = datetime.fromisoformat(self.written_back_version.replace("Z", "+00:00"))
        return abs((moment - written).total_seconds()) <= WRITE_BACK_ECHO_SECONDS

    def _sync_back_key(self) -> str:
        return f"{self.version}|{self.fingerprint}|{self.cm_task_uuid}"

    def sync_back_skips(self, now: float) -> bool:
        """Reported as unsettled, unchanged since, and not yet due to be looked at again."""
        return (
            self.sync_back_reported_key == self._sync_back_key()
            and now < self.sync_back_checked_at + SYNC_BACK_RECHECK_SECONDS
        )

    # ------------------------------------------------------------------ transitions
    def _settled(self) -> TaskLink:
        """No lease, and nothing left to find in ChartMogul: the link is not creating any more."""
        return replace(
            self, lease_owner=None, lease_until=0.0, maybe_created=False, intended_fields=None, intended_customer=None
        )

    def _resolved(self, now: float) -> TaskLink:
        """Settled, and nothing left to retry: not parked, no delete pending (ACTIVE or DELETED)."""
        return replace(self._settled(), parked_reason=None, retry_at=None, pending_delete=False, updated_at=now)

    def leased(
        self,
        *,
        owner: str,
        until: float,
        customer_uuid: str,
        lead_id: str | None,
        task_type: str,
        version: str,
        fields: TaskFields,
        now: float,
    ) -> TaskLink:
        """CREATING under ``owner``'s lease, before any POST.

        If an earlier attempt may have created the task, ``maybe_created`` stays set and the
        intended fields keep describing what that attempt sent, so that it can be found.
        """
        searching = self.may_exist_in_chartmogul(now)
        return replace(
            self,
            state=LinkState.CREATING,
            cm_task_uuid=None,
            customer_uuid=customer_uuid,
            lead_id=lead_id,
            task_type=task_type,
            pending_version=version,
            lease_owner=owner,
            lease_until=until,
            maybe_created=searching,
            intended_fields=self.intended_fields if searching else fields,
            intended_customer=self.intended_customer if searching else customer_uuid,
            parked_reason=None,
            retry_at=None,
            updated_at=now,
        )

    def intending(self, *, fields: TaskFields, customer_uuid: str) -> TaskLink:
        """Still CREATING: no earlier task was found, the lease now describes the POST to send."""
        return replace(self, maybe_created=False, intended_fields=fields, intended_customer=customer_uuid)

    def adopted(self, task_uuid: str) -> TaskLink:
        """ACTIVE on the task an earlier attempt created, with the fields that attempt sent.

        The version stays pending: the caller brings the adopted task up to date next.
        """
        if self.intended_fields is None:
            raise ValueError(f"task link {self.close_task_id} has no intended fields to adopt")
        return replace(
            self._settled(),
            state=LinkState.ACTIVE,
            cm_task_uuid=task_uuid,
            customer_uuid=self.intended_customer,
            fields=self.intended_fields,
            fingerprint=self.intended_fields.fingerprint(),
        )

    def activated(
        self,
        *,
        task_uuid: str,
        customer_uuid: str,
        lead_id: str | None,
        task_type: str,
        fields: TaskFields,
        version: str,
        now: float,
        written: bool = True,
    ) -> TaskLink:
        """ACTIVE: ChartMogul task ``task_uuid`` holds ``fields`` for Close ``version``
        (``written``: the sync wrote them to ChartMogul just now, rather than found them there)."""
        return replace(
            self._resolved(now),
            state=LinkState.ACTIVE,
            cm_task_uuid=task_uuid,
            customer_uuid=customer_uuid,
            lead_id=lead_id,
            task_type=task_type,
            fields=fields,
            fingerprint=fields.fingerprint(),
            version=version,
            pending_version=None,
            attempts=0,
            pushed_at=now if written else self.pushed_at,
        )

    def released(self, *, maybe_created: bool) -> TaskLink:
        """The lease given back after a failed POST, remembering if the POST may have worked."""
        return replace(self, lease_owner=None, lease_until=0.0, maybe_created=self.maybe_created or maybe_created)

    def parked(
        self,
        *,
        reason: str,
        now: float,
        backoff_base: float,
        backoff_max: float,
        version: str | None,
        lead_id: str | None,
        task_type: str | None,
    ) -> TaskLink:
        """PARKED until ``retry_at`` (exponential backoff per consecutive park)."""
        attempts = (self.attempts if self.state is LinkState.PARKED else 0) + 1
        backoff = min(backoff_max, backoff_base * 2 ** min(attempts - 1, 20))
        return replace(
            self,
            state=LinkState.PARKED,
            parked_reason=reason[:PARKED_REASON_MAX],
            retry_at=now + backoff,
            attempts=attempts,
            pending_version=version or self.pending_version,
            lead_id=lead_id,
            task_type=task_type or self.task_type,
            lease_owner=None,
            lease_until=0.0,
            # A worker that died mid-create may have created the task: remember that.
            maybe_created=self.may_exist_in_chartmogul(now),
            updated_at=now,
        )

    def withdrawn(self, now: float) -> TaskLink:
        """No ChartMogul task any more: it was deleted because the task left its customer.

        The version and fields stay (the next create starts from them); the customer goes, so
        nothing can be reused for a lead it was not resolved for.
        """
        return replace(self, cm_task_uuid=None, customer_uuid=None, updated_at=now)

    def delete_parked(
        self, *, reason: str, now: float, backoff_base: float, backoff_max: float, task_type: str | None
    ) -> TaskLink:
        """PARKED with a pending delete: retried until the ChartMogul task is gone."""
        parked = self.parked(
            reason=reason,
            now=now,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            version=None,
            lead_id=self.lead_id,
            task_type=task_type,
        )
        return replace(parked, pending_delete=True)

    def unparked(self, *, reason: str, now: float) -> TaskLink:
        """Still PARKED, but no longer retried: its retry was ignored (e.g. TASK_TYPES narrowed).

        Leaving the ParkedIndex stops the reconciler re-driving it on every run; a later event
        of the task, if it is synced again, picks it up like any parked task.
        """
        return replace(self, parked_reason=reason[:PARKED_REASON_MAX], retry_at=None, updated_at=now)

    def tombstoned(self, now: float) -> TaskLink:
        """DELETED for good: no ChartMogul task, no lease, nothing pending."""
        return replace(self._resolved(now), state=LinkState.DELETED, cm_task_uuid=None)

    def completion_corrected(self, completed_at: str, now: float) -> TaskLink:
        """Still ACTIVE, with the completion time ChartMogul now holds."""
        if self.fields is None:
            raise ValueError(f"task link {self.close_task_id} has no fields to correct")
        fields = self.fields.model_copy(update={"completed_at": completed_at})
        return replace(self, fields=fields, fingerprint=fields.fingerprint(), updated_at=now)

    def completion_synced_back(
        self, *, completed_at: str | None, close_version: str | None, wrote_close: bool, now: float
    ) -> TaskLink:
        """Still ACTIVE, with ChartMogul's and Close's completion states settled to ``completed_at``.

        ``wrote_close``: the reconciler completed or reopened the Close task (which produced
        ``close_version``); otherwise it aligned ChartMogul, or only took note that both sides
        already agree. Either way `fields` now says what ChartMogul holds, so the echo of the
        Close write finds nothing left to push beyond, at most, the completion time.
        """
        if self.state is not LinkState.ACTIVE or self.fields is None:
            raise ValueError(f"task link {self.close_task_id} is not an active mirror")
        fields = self.fields.model_copy(update={"completed_at": completed_at})
        settled = replace(self, fields=fields, fingerprint=fields.fingerprint(), updated_at=now)
        if not wrote_close:
            return settled
        return replace(
            settled,
            written_back_complete=completed_at is not None,
            written_back_version=close_version,
            written_back_at=now,
        )

    def chartmogul_written(self, *, now: float, chartmogul_updated_at: float | None) -> TaskLink:
        """Unchanged but for the sync-back's ChartMogul write: the `updated_at` it moved is ours."""
        return replace(self, chartmogul_written_at=max(now, chartmogul_updated_at or 0.0, self.chartmogul_written_at))

    def sync_back_reported_as(self, reason: str, now: float) -> TaskLink:
        """Unchanged but reported as unsettled: the sync-back skips it until it changes or is due."""
        return replace(
            self,
            sync_back_reported=reason[:PARKED_REASON_MAX],
            sync_back_reported_key=self._sync_back_key(),
            sync_back_checked_at=now,
        )

    def retry_enqueued(self, *, now: float, grace: float) -> TaskLink:
        """Still PARKED, its retry queued: not due again before ``grace`` seconds have passed."""
        if self.state is not LinkState.PARKED or self.retry_at is None:
            return self
        return replace(self, retry_at=now + grace)


@dataclass
class AppliedMarks:
    """What the worker has applied for some tasks: their links, and completion-hint dates."""

    links: dict[str, TaskLink]
    completions: dict[str, str]  # close task id -> activity_date
    read_units: float  # as DynamoDB reported them (ReturnConsumedCapacity)
