"""The steps of creating a ChartMogul task exactly once, when ChartMogul has no idempotency key.

`TaskSync._create` runs them in order: take a `creating` lease on the link before any POST;
when an earlier attempt may have created the task, look for it and adopt it; POST; store the
link and the claim on the new task in one transaction. Each step is a function over the ports
it uses, so that the engine reads as the protocol and this module as its mechanics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tasksync.errors import AssigneeRejected, CustomerUnknown, NotFound, OutcomeUnknown, RetryableApiError
from tasksync.logic.assignees import AssigneeResolver
from tasksync.logic.customers import CustomerResolver
from tasksync.logic.orphans import find_orphan
from tasksync.logic.ports import ChartMogulApi, LinkStore
from tasksync.models.chartmogul import ChartMogulTask, TaskFields
from tasksync.models.close import CloseTask
from tasksync.models.link import TaskLink


@dataclass(frozen=True)
class DesiredTask:
    """What ChartMogul should hold for one Close task version."""

    task: CloseTask
    customer_uuid: str
    fields: TaskFields
    version: str

    def with_fields(self, fields: TaskFields) -> DesiredTask:
        return replace(self, fields=fields)

    def activate(
        self, link: TaskLink, task_uuid: str, fields: TaskFields, now: float, *, written: bool = True
    ) -> TaskLink:
        """``link`` made ACTIVE on ``task_uuid``, holding ``fields`` for this version."""
        return link.activated(
            task_uuid=task_uuid,
            customer_uuid=self.customer_uuid,
            lead_id=self.task.lead_id,
            task_type=self.task.type,
            fields=fields,
            version=self.version,
            now=now,
            written=written,
        )


class Unassignable(Exception):
    """ChartMogul refused the assignee of a new task and nobody else can be named."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def take_lease(
    links: LinkStore,
    desired: DesiredTask,
    link: TaskLink | None,
    release: str | None,
    *,
    owner: str,
    until: float,
    now: float,
) -> TaskLink:
    """Step 1: the `creating` lease; it keeps `maybe_created` when a POST may have gone through.

    The lease clears the link's ChartMogul task, so the claim on the one it replaces goes
    with it: if the POST then parks, nothing else would ever drop that claim.
    """
    task = desired.task
    base = link or TaskLink.unseen(task.id)
    leased = base.leased(
        owner=owner,
        until=until,
        customer_uuid=desired.customer_uuid,
        lead_id=task.lead_id,
        task_type=task.type,
        version=desired.version,
        fields=desired.fields,
        now=now,
    )
    if release is not None:
        return links.save_with_claim(link, leased, release=release)
    return links.save(link, leased)


def adopt_orphan(chartmogul: ChartMogulApi, links: LinkStore, lease: TaskLink, release: str | None) -> TaskLink | None:
    """Step 2: take over the task an earlier attempt created, if it can be found."""
    orphan = find_orphan(chartmogul, links, lease)
    if orphan is None or lease.intended_fields is None:
        return None
    return links.save_with_claim(lease, lease.adopted(orphan.task_uuid), release=release)


def post(
    desired: DesiredTask,
    lease: TaskLink,
    *,
    chartmogul: ChartMogulApi,
    links: LinkStore,
    assignees: AssigneeResolver,
    customers: CustomerResolver,
) -> tuple[ChartMogulTask, TaskFields]:
    """Step 3: POST the task (with DEFAULT_ASSIGNEE if ChartMogul refuses ours).

    A retryable failure gives the lease back (remembering whether the POST may have gone
    through) and propagates for SQS to retry. A permanent refusal propagates for the caller
    to park; a refused customer is first dropped from the lookup cache.
    """
    fields = desired.fields
    try:
        try:
            created = chartmogul.create_task(customer_uuid=desired.customer_uuid, fields=fields)
        except AssigneeRejected as exc:
            # Remembered, so this user's next task goes straight to the fallback.
            instead = assignees.refused(fields.assignee, f"HTTP {exc.status}")
            if instead.email is None:
                raise Unassignable(instead.reason or f"ChartMogul refused {fields.assignee}") from exc
            fields = fields.with_assignee(instead.email)
            created = chartmogul.create_task(customer_uuid=desired.customer_uuid, fields=fields)
    except OutcomeUnknown:
        links.save(lease, lease.released(maybe_created=True))
        raise
    except RetryableApiError:
        links.save(lease, lease.released(maybe_created=False))
        raise
    except (CustomerUnknown, NotFound):
        # A 422 naming the customer, or a 404 for the POST (ChartMogul has no other object
        # in it to miss): the cached customer was deleted or merged away. Look again next time.
        if desired.task.lead_id:
            customers.forget(desired.task.lead_id)
        raise
    return created, fields


def store_created(
    links: LinkStore,
    lease: TaskLink,
    desired: DesiredTask,
    created: ChartMogulTask,
    fields: TaskFields,
    *,
    release: str | None,
    now: float,
) -> TaskLink:
    """Step 4: the link and the claim on the new task, in one transaction."""
    return links.save_with_claim(lease, desired.activate(lease, created.task_uuid, fields, now), release=release)
