"""Every port of the runtime, as Protocols: what the engine, the reconciler (with its catch-up
and sync-back) and the receiver need from the outside world.

They depend only on these; `tasksync.dal` implements them over HTTP (Close, ChartMogul),
DynamoDB and SQS, and tests/fakes in memory. Every API client counts the HTTP requests it
makes in ``calls`` (per thread: a worker applies a batch's tasks on several threads) so that
`apply` can report how many calls each event cost.

Ports speak models: a client parses an answer once, at its edge, and reads upstream error
bodies for the engine (AssigneeRejected, CustomerUnknown), so nothing here sees raw JSON.
The types they exchange live in `tasksync.models` and `tasksync.errors`, which `dal` imports
too, so that `dal` never imports `logic`. They are imported for the type checker only: the
receiver takes its ports from here and must not load pydantic, which the models are built on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Unpack

if TYPE_CHECKING:
    from tasksync.logic.syncback_report import SyncBackReport
    from tasksync.models.chartmogul import ChartMogulCustomer, ChartMogulTask, TaskFields, TaskFilters, TaskPage
    from tasksync.models.close import CloseLead, CloseTask, CloseUser, CloseWebhookSubscription
    from tasksync.models.envelope import WebhookEvent
    from tasksync.models.event_log import EventLogQuery, EventPage
    from tasksync.models.link import AppliedMarks, TaskLink
    from tasksync.models.queue import EnqueueReport, QueuedEvent


# ====================================================================== Close
class CloseTasks(Protocol):
    def iter_tasks(
        self, *, task_types: frozenset[str], date_updated_gte: datetime | None = None, limit: int = 100
    ) -> Iterator[CloseTask]:
        """Tasks of the given `_type`s, paging with `_skip`/`_limit`."""
        ...


class CloseWebhooks(Protocol):
    def create_webhook(self, *, url: str, events: list[dict[str, str]]) -> CloseWebhookSubscription: ...

    def get_webhook(self, subscription_id: str) -> CloseWebhookSubscription: ...

    def list_webhooks(self) -> list[CloseWebhookSubscription]: ...

    def update_webhook(self, subscription_id: str, **changes: Any) -> CloseWebhookSubscription: ...

    def delete_webhook(self, subscription_id: str) -> None: ...


class EventLog(Protocol):
    """Close's event log, as the catch-up reads it."""

    def event_pages(self, **query: Unpack[EventLogQuery]) -> Iterator[EventPage]:
        """One page per request, newest first; a malformed entry comes as a LogEntry with its problem."""
        ...


class CloseApi(CloseTasks, CloseWebhooks, Protocol):
    """Close as the engine reads it."""

    @property
    def calls(self) -> int: ...

    def get_task(self, task_id: str) -> CloseTask:
        """Raises NotFound when Close answers 404."""
        ...

    def get_user(self, user_id: str) -> CloseUser: ...

    def get_lead(self, lead_id: str) -> CloseLead:
        """The lead with its contacts' emails and custom fields."""
        ...


class CloseSource(CloseTasks, CloseWebhooks, EventLog, Protocol):
    """Close as the reconciler reads it: the event log, task snapshots, the subscriptions."""


class CloseTaskWriter(Protocol):
    """What the sync-back needs from Close: read a task, complete or reopen it."""

    @property
    def calls(self) -> int: ...

    def get_task(self, task_id: str) -> CloseTask: ...

    def set_task_complete(self, task_id: str, is_complete: bool) -> CloseTask:
        """`PUT /task/{id}/ {"is_complete": ...}`; the answer carries the new `date_updated`."""
        ...


# ====================================================================== ChartMogul
class ChartMogulApi(Protocol):
    @property
    def calls(self) -> int: ...

    def create_task(self, *, customer_uuid: str, fields: TaskFields) -> ChartMogulTask:
        """POST /tasks. A timeout or 5xx raises OutcomeUnknown: the task may exist.

        A refused assignee raises AssigneeRejected; a refused (deleted) customer raises
        CustomerUnknown. update_task raises AssigneeRejected the same way.
        """
        ...

    def get_task(self, task_uuid: str) -> ChartMogulTask: ...

    def list_tasks(self, *, cursor: str | None = None, **filters: Unpack[TaskFilters]) -> TaskPage: ...

    def iter_tasks(self, **filters: Unpack[TaskFilters]) -> Iterator[ChartMogulTask]:
        """Every task the filters select, page after page."""
        ...

    def update_task(self, task_uuid: str, changes: dict[str, Any]) -> ChartMogulTask | None:
        """PATCH only ``changes``. Returns None when ChartMogul answers 304 (nothing changed)."""
        ...

    def delete_task(self, task_uuid: str) -> bool:
        """DELETE; False when the task was already gone (404)."""
        ...

    def search_customers_by_email(self, email: str) -> list[ChartMogulCustomer]:
        """Customers with this email; an empty list when ChartMogul answers 404."""
        ...

    def list_customers(self, *, external_id: str, data_source_uuid: str) -> list[ChartMogulCustomer]: ...

    def create_customer(
        self, *, data_source_uuid: str, external_id: str, name: str, email: str | None
    ) -> ChartMogulCustomer: ...


# ====================================================================== the state table
class LookupCache(Protocol):
    """Cached lead -> customer and user -> email lookups (DynamoDB with TTL + process memory)."""

    def get_customer(self, lead_id: str) -> str | None: ...

    def put_customer(self, lead_id: str, customer_uuid: str, ttl_seconds: int) -> None: ...

    def forget_customer(self, lead_id: str) -> None: ...

    def get_user_email(self, user_id: str) -> str | None: ...

    def put_user_email(self, user_id: str, email: str, ttl_seconds: int) -> None: ...


class AssigneeRefusals(Protocol):
    """Assignee emails ChartMogul refused, remembered for a while (DynamoDB with TTL)."""

    def assignee_refusal(self, email: str) -> str | None: ...

    def note_assignee_refusal(self, email: str, refusal: str, ttl_seconds: int) -> None: ...


class LinkStore(Protocol):
    """TaskLinks and the claims on ChartMogul tasks, written with optimistic concurrency.

    Every write names the link it read (``previous``, None for a first write) and fails with
    ConcurrentUpdate when the stored link has changed since (its ``rev`` moved on). The
    returned link carries the new ``rev``.
    """

    def get(self, close_task_id: str) -> TaskLink | None: ...

    def read_ahead(self, close_task_ids: Sequence[str]) -> None:
        """Read these tasks' links now, in one go: each task's next ``get``, if it comes soon,
        may be answered from that read (link writes stay conditional on it)."""
        ...

    def claimed_by(self, cm_task_uuid: str) -> str | None:
        """The Close task that owns a ChartMogul task, if any."""
        ...

    def save(self, previous: TaskLink | None, link: TaskLink) -> TaskLink: ...

    def save_with_claim(self, previous: TaskLink | None, link: TaskLink, *, release: str | None = None) -> TaskLink:
        """Save ``link`` and claim its ChartMogul task atomically, dropping the claim on ``release``.

        ConcurrentUpdate also when another Close task holds the claim.
        """
        ...

    def completion_hint(self, close_task_id: str) -> str | None:
        """The completion time an `activity.task_completed` noted for the task, if any."""
        ...

    def note_completion(self, close_task_id: str, completed_at: str, activity_date: str, expires_at: int) -> bool:
        """Record a completion time; an older activity never overwrites a newer one."""
        ...

    def forget_completion(self, close_task_id: str, activity_date: str) -> None:
        """Drop the hint (the task was reopened), unless a newer activity noted one."""
        ...


class EngineCache(LookupCache, AssigneeRefusals, Protocol):
    """One store that caches lookups and remembers refused assignees (the state table's cache)."""


class AppliedState(Protocol):
    """What the worker has applied, as the catch-up checks it: one batch read per page."""

    def applied_marks(self, close_task_ids: list[str], completion_task_ids: list[str]) -> AppliedMarks:
        """The links and completion hints of some tasks (eventually consistent)."""
        ...


class ReconcilerLinks(AppliedState, Protocol):
    """The link store as the reconciler uses it: the catch-up's reads, the parked retries."""

    def parked_due(self, now: float, limit: int = 100) -> Iterator[TaskLink]: ...

    def save(self, previous: TaskLink | None, link: TaskLink) -> TaskLink: ...


class SyncBackLinks(Protocol):
    """The link store as the sync-back uses it."""

    def active_links(self) -> Iterator[TaskLink]:
        """Every ACTIVE link (one that mirrors a ChartMogul task)."""
        ...

    def get(self, close_task_id: str) -> TaskLink | None: ...

    def save(self, previous: TaskLink | None, link: TaskLink) -> TaskLink: ...


class Checkpoints(Protocol):
    """How far the catch-up has read each (object_type, action) pair of the event log."""

    def get(self, object_type: str, action: str) -> datetime | None: ...

    def advance(self, object_type: str, action: str, to: datetime) -> bool: ...


class RunLog(Checkpoints, Protocol):
    """The checkpoint store, plus the record of the last run that `tasksync status` shows."""

    def record_run(self, summary: dict[str, Any], finished_at: datetime) -> None: ...


class RunLock(Protocol):
    """A lease that keeps the reconciler's scheduled passes one at a time."""

    def acquire(self, owner: str, seconds: float) -> bool: ...

    def release(self, owner: str) -> None: ...


class SubscriptionIds(Protocol):
    def subscription_ids(self) -> list[str]: ...


class SyncBackLedger(Protocol):
    """Where the sync-back's passes are counted and the last one's report is kept."""

    def count_pass(self) -> int:
        """Count one reconciler pass; return the count so far."""
        ...

    def record(self, report: SyncBackReport) -> None: ...


class TimeLeft(Protocol):
    """The reconciler's budget, as the sync-back checks it between pages and candidates."""

    @property
    def spent(self) -> bool: ...


# ====================================================================== queues
class Enqueuer(Protocol):
    def enqueue_many(self, events: Sequence[QueuedEvent]) -> EnqueueReport:
        """Every event sent or reported as a failure; none raised."""
        ...


class PoisonSink(Protocol):
    """Where an event that can never be enqueued goes, with its reason (the DLQ)."""

    def put(self, raw: Any, event_id: str | None, reason: str) -> None: ...


# ====================================================================== the receiver
class WebhookEventQueue(Protocol):
    """The receiver's queue: one message per accepted delivery."""

    def enqueue(self, event: WebhookEvent, raw_event: Mapping[str, Any], *, subscription_id: str | None = None) -> str:
        """Queue the event; return the message id. Any exception means it was not queued."""
        ...


class SignatureKeys(Protocol):
    """The keys Close signs each subscription's deliveries with."""

    def key_for(self, subscription_id: str) -> str | None:
        """The hex signature key of this subscription, or None when it is not ours."""
        ...

    def all_keys(self) -> list[str]:
        """Every known key (a few at most)."""
        ...
