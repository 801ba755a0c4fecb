"""What the sync logic needs from the outside world, as Protocols.

The logic layer depends only on these; `tasksync.dal` implements them over HTTP (Close,
ChartMogul) and DynamoDB, and tests/fakes in memory. Every API client counts the HTTP requests
it makes in ``calls`` (per thread: a worker applies a batch's tasks on several threads) so that
`apply` can report how many calls each event cost.

Ports speak models: a client parses an answer once, at its edge, and reads upstream error
bodies for the engine (AssigneeRejected, CustomerUnknown), so nothing here sees raw JSON.
The types they exchange live in `tasksync.models` and `tasksync.errors`, which `dal` imports
too, so that `dal` never imports `logic`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from tasksync.models.chartmogul import ChartMogulCustomer, ChartMogulTask, TaskFields, TaskPage
from tasksync.models.close import CloseLead, CloseTask, CloseUser, CloseWebhookSubscription
from tasksync.models.link import TaskLink

__all__ = ["AssigneeRefusals", "ChartMogulApi", "CloseApi", "EngineCache", "LinkStore", "LookupCache", "TaskPage"]


class CloseApi(Protocol):
    @property
    def calls(self) -> int: ...

    def get_task(self, task_id: str) -> CloseTask:
        """Raises NotFound when Close answers 404."""
        ...

    def get_user(self, user_id: str) -> CloseUser: ...

    def get_lead(self, lead_id: str) -> CloseLead:
        """The lead with its contacts' emails and custom fields."""
        ...

    def iter_tasks(
        self, *, task_types: frozenset[str], date_updated_gte: datetime | None = None, limit: int = 100
    ) -> Iterator[CloseTask]:
        """Tasks of the given `_type`s, paging with `_skip`/`_limit`."""
        ...

    def create_webhook(self, *, url: str, events: list[dict[str, str]]) -> CloseWebhookSubscription: ...

    def get_webhook(self, subscription_id: str) -> CloseWebhookSubscription: ...

    def list_webhooks(self) -> list[CloseWebhookSubscription]: ...

    def update_webhook(self, subscription_id: str, **changes: Any) -> CloseWebhookSubscription: ...

    def delete_webhook(self, subscription_id: str) -> None: ...


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

    def list_tasks(
        self,
        *,
        customer_uuid: str | None = None,
        assignee: str | None = None,
        due_date_on_or_after: str | None = None,
        due_date_on_or_before: str | None = None,
        completed: bool | None = None,
        cursor: str | None = None,
        per_page: int = 200,
    ) -> TaskPage: ...

    def iter_tasks(self, **filters: Any) -> Iterator[ChartMogulTask]: ...

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
