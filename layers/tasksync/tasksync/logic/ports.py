"""What the sync logic needs from the outside world, as Protocols.

The logic layer depends only on these; `tasksync.dal` implements them over HTTP (Close,
ChartMogul) and DynamoDB. Every client counts the HTTP requests it makes in ``calls`` so that
`apply` can report how many calls each event cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tasksync.models.chartmogul import ChartMogulCustomer, ChartMogulTask, TaskFields
from tasksync.models.close import CloseLead, CloseUser, CloseWebhookSubscription


@dataclass(frozen=True)
class TaskPage:
    entries: list[ChartMogulTask]
    cursor: str | None
    has_more: bool


class CloseApi(Protocol):
    calls: int

    def get_task(self, task_id: str) -> dict[str, Any]:
        """The raw task JSON. Raises NotFound when Close answers 404."""
        ...

    def get_user(self, user_id: str) -> CloseUser: ...

    def get_lead(self, lead_id: str) -> CloseLead:
        """The lead with its contacts' emails and custom fields."""
        ...

    def iter_tasks(
        self, *, task_types: frozenset[str], date_updated_gte: datetime | None = None, limit: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Raw task JSON of the given `_type`s, paging with `_skip`/`_limit`."""
        ...

    def create_webhook(self, *, url: str, events: list[dict[str, str]]) -> CloseWebhookSubscription: ...

    def get_webhook(self, subscription_id: str) -> CloseWebhookSubscription: ...

    def list_webhooks(self) -> list[CloseWebhookSubscription]: ...

    def update_webhook(self, subscription_id: str, **changes: Any) -> CloseWebhookSubscription: ...

    def delete_webhook(self, subscription_id: str) -> None: ...


class ChartMogulApi(Protocol):
    calls: int

    def create_task(self, *, customer_uuid: str, fields: TaskFields) -> ChartMogulTask:
        """POST /tasks. A timeout or 5xx raises OutcomeUnknown: the task may exist."""
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
