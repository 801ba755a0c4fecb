"""`LinkStore` in memory, with the store's conditional-write semantics."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from tasksync.dal.read_ahead import LinksReadAhead
from tasksync.errors import ConcurrentUpdate
from tasksync.models.link import LinkState, TaskLink


class InMemoryLinkStore:
    """TaskLinks, claims and completion hints in dicts.

    A write names the link it read; it fails with ConcurrentUpdate unless the stored link is
    still that one (same ``rev``, or absent for a first write), exactly as the DynamoDB
    store's condition expressions do. ``save_with_claim`` checks every condition before it
    changes anything, as a transaction would.
    """

    def __init__(self) -> None:
        self.links: dict[str, TaskLink] = {}
        self.claims: dict[str, str] = {}  # ChartMogul task uuid -> Close task id
        self.hints: dict[str, tuple[str, str]] = {}  # Close task id -> (completed_at, activity date)
        self.writes = 0
        self.ahead = LinksReadAhead()

    # ------------------------------------------------------------------ reads
    def read_ahead(self, close_task_ids: Sequence[str]) -> None:
        """As the DynamoDB store: the links as they are now, each answering one ``get``."""
        ids = list(dict.fromkeys(close_task_ids))
        self.ahead.replace({task_id: self.links.get(task_id) for task_id in ids} if len(ids) >= 2 else {})

    def get(self, close_task_id: str) -> TaskLink | None:
        read, link = self.ahead.take(close_task_id)
        return link if read else self.links.get(close_task_id)

    def claimed_by(self, cm_task_uuid: str) -> str | None:
        return self.claims.get(cm_task_uuid)

    def active_links(self) -> Iterator[TaskLink]:
        yield from [link for link in self.links.values() if link.state is LinkState.ACTIVE]

    # ------------------------------------------------------------------ writes
    def _check(self, previous: TaskLink | None, link: TaskLink) -> TaskLink:
        self.ahead.drop(link.close_task_id)
        stored = self.links.get(link.close_task_id)
        if previous is None and stored is not None:
            raise ConcurrentUpdate(f"task link {link.close_task_id} exists already")
        if previous is not None and (stored is None or stored.rev != previous.rev):
            raise ConcurrentUpdate(f"task link {link.close_task_id} changed underneath us")
        return replace(link, rev=(previous.rev + 1) if previous else 1)

    def save(self, previous: TaskLink | None, link: TaskLink) -> TaskLink:
        written = self._check(previous, link)
        self.writes += 1
        self.links[written.close_task_id] = written
        return written

    def save_with_claim(self, previous: TaskLink | None, link: TaskLink, *, release: str | None = None) -> TaskLink:
        written = self._check(previous, link)
        me = written.close_task_id
        taken = written.cm_task_uuid
        if taken and self.claims.get(taken, me) != me:
            raise ConcurrentUpdate(f"task link {me} or its claim changed underneath us")
        dropped = release if release and release != taken else None
        if dropped and self.claims.get(dropped, me) != me:
            raise ConcurrentUpdate(f"task link {me} or its claim changed underneath us")
        self.writes += 1
        self.links[me] = written
        if taken:
            self.claims[taken] = me
        if dropped:
            self.claims.pop(dropped, None)
        return written

    # ------------------------------------------------------------------ completion hints
    def completion_hint(self, close_task_id: str) -> str | None:
        hint = self.hints.get(close_task_id)
        return hint[0] if hint else None

    def note_completion(self, close_task_id: str, completed_at: str, activity_date: str, expires_at: int) -> bool:
        current = self.hints.get(close_task_id)
        if current is not None and current[1] > activity_date:
            return False
        self.hints[close_task_id] = (completed_at, activity_date)
        return True

    def forget_completion(self, close_task_id: str, activity_date: str) -> None:
        current = self.hints.get(close_task_id)
        if current is not None and current[1] <= activity_date:
            del self.hints[close_task_id]


class InMemoryLookupCache:
    """`LookupCache` and `AssigneeRefusals` in dicts; entries expire by ``clock`` (none without one)."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock
        self.customers: dict[str, tuple[str, float]] = {}  # lead -> (customer, expires at)
        self.user_emails: dict[str, str] = {}
        self.refusals: dict[str, tuple[str, float]] = {}  # email -> (refusal, expires at)

    def _expires(self, ttl_seconds: int) -> float:
        return self.clock() + ttl_seconds if self.clock is not None else float("inf")

    def _live(self, entry: tuple[str, float] | None) -> str | None:
        if entry is None or (self.clock is not None and entry[1] <= self.clock()):
            return None
        return entry[0]

    def get_customer(self, lead_id: str) -> str | None:
        return self._live(self.customers.get(lead_id))

    def put_customer(self, lead_id: str, customer_uuid: str, ttl_seconds: int) -> None:
        self.customers[lead_id] = (customer_uuid, self._expires(ttl_seconds))

    def forget_customer(self, lead_id: str) -> None:
        self.customers.pop(lead_id, None)

    def get_user_email(self, user_id: str) -> str | None:
        return self.user_emails.get(user_id)

    def put_user_email(self, user_id: str, email: str, ttl_seconds: int) -> None:
        self.user_emails[user_id] = email

    def assignee_refusal(self, email: str) -> str | None:
        return self._live(self.refusals.get(email.strip().lower()))

    def note_assignee_refusal(self, email: str, refusal: str, ttl_seconds: int) -> None:
        self.refusals[email.strip().lower()] = (refusal, self._expires(ttl_seconds))
