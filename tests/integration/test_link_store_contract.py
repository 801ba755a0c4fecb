"""One contract, two LinkStores: DynamoDB (`dal/links.py`) and the in-memory fake the unit tier uses.

What the engine's exactly-once rests on is checked against both, so the fast tier cannot pass
on semantics the real store does not have: conditional first writes, the optimistic ``rev``,
claims taken and released atomically with the link, and completion hints that only move
forward.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tasksync.dal.links import TaskLinkStore
from tasksync.errors import ConcurrentUpdate
from tasksync.logic.ports import LinkStore
from tasksync.models.chartmogul import TaskFields
from tasksync.models.link import LinkState, TaskLink
from tests.fakes.links import InMemoryLinkStore

FIELDS = TaskFields(task_details="Call", assignee="a@x.example", due_date="2025-03-01")


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> LinkStore:
    if request.param == "memory":
        return InMemoryLinkStore()
    tables: Any = request.getfixturevalue("state_tables")
    return TaskLinkStore(tables.client, tables.state)


def test_a_link_reads_back_as_written(store: LinkStore) -> None:
    link = TaskLink(
        close_task_id="task_1",
        state=LinkState.PARKED,
        version="2025-01-01T00:00:00.000000Z",
        pending_version="2025-01-02T00:00:00.000000Z",
        customer_uuid="cus_1",
        lead_id="lead_1",
        task_type="lead",
        fields=FIELDS,
        fingerprint=FIELDS.fingerprint(),
        maybe_created=True,
        intended_fields=FIELDS,
        intended_customer="cus_1",
        parked_reason="no customer",
        retry_at=1_800_000_060.0,
        attempts=2,
        pending_delete=True,
        updated_at=1_800_000_000.5,
    )
    written = store.save(None, link)
    assert written.rev == 1
    assert store.get("task_1") == written


def test_a_first_write_fails_if_the_link_exists(store: LinkStore) -> None:
    store.save(None, TaskLink.unseen("task_1"))
    with pytest.raises(ConcurrentUpdate):
        store.save(None, TaskLink.unseen("task_1"))


def test_a_write_from_a_stale_read_fails(store: LinkStore) -> None:
    first = store.save(None, TaskLink.unseen("task_1"))
    second = store.save(first, first.tombstoned(1.0))
    assert second.rev == 2
    with pytest.raises(ConcurrentUpdate):
        store.save(first, first.tombstoned(2.0))
    assert store.get("task_1") == second


def test_a_claimed_task_cannot_be_taken_by_another_link(store: LinkStore) -> None:
    mine = store.save(None, TaskLink.unseen("task_1"))
    store.save_with_claim(mine, TaskLink(close_task_id="task_1", state=LinkState.ACTIVE, cm_task_uuid="tsk_1"))
    theirs = store.save(None, TaskLink.unseen("task_2"))
    grab = TaskLink(close_task_id="task_2", state=LinkState.ACTIVE, cm_task_uuid="tsk_1")
    with pytest.raises(ConcurrentUpdate):
        store.save_with_claim(theirs, grab)
    assert store.get("task_2") == theirs  # all or nothing
    assert store.claimed_by("tsk_1") == "task_1"


def test_release_drops_the_old_claim_with_the_write_that_takes_the_new_one(store: LinkStore) -> None:
    link = store.save(None, TaskLink.unseen("task_1"))
    link = store.save_with_claim(link, TaskLink(close_task_id="task_1", state=LinkState.ACTIVE, cm_task_uuid="tsk_1"))
    moved = TaskLink(close_task_id="task_1", state=LinkState.ACTIVE, cm_task_uuid="tsk_2")
    store.save_with_claim(link, moved, release="tsk_1")
    assert (store.claimed_by("tsk_1"), store.claimed_by("tsk_2")) == (None, "task_1")


def test_another_links_claim_cannot_be_released(store: LinkStore) -> None:
    other = store.save(None, TaskLink.unseen("task_2"))
    store.save_with_claim(other, TaskLink(close_task_id="task_2", state=LinkState.ACTIVE, cm_task_uuid="tsk_2"))
    mine = store.save(None, TaskLink.unseen("task_1"))
    with pytest.raises(ConcurrentUpdate):
        store.save_with_claim(mine, mine.tombstoned(1.0), release="tsk_2")
    assert store.claimed_by("tsk_2") == "task_2"
    assert store.get("task_1") == mine


def test_completion_hints_only_move_forward(store: LinkStore) -> None:
    assert store.note_completion("task_1", "2025-01-02T00:00:00Z", "2025-01-02", expires_at=2_000_000_000)
    assert not store.note_completion("task_1", "2025-01-01T00:00:00Z", "2025-01-01", expires_at=2_000_000_000)
    assert store.completion_hint("task_1") == "2025-01-02T00:00:00Z"
    store.forget_completion("task_1", "2025-01-01")  # an older withdrawal leaves the newer hint
    assert store.completion_hint("task_1") == "2025-01-02T00:00:00Z"
    store.forget_completion("task_1", "2025-01-02")
    assert store.completion_hint("task_1") is None


def _another_process(store: LinkStore) -> LinkStore:
    """A second store on the same data, as another process (the reconciler, a CLI) holds it."""
    if isinstance(store, InMemoryLinkStore):
        other = InMemoryLinkStore()
        other.links, other.claims, other.hints = store.links, store.claims, store.hints
        return other
    assert isinstance(store, TaskLinkStore)
    return TaskLinkStore(store.client, store.table_name)


def test_a_link_read_ahead_answers_the_next_read_once(store: LinkStore) -> None:
    """A batch's links are read in one go; each answers its task's next read only, so a later
    read in the same batch sees what was written since, by anyone."""
    first = store.save(None, TaskLink.unseen("task_1"))
    store.read_ahead(["task_1", "task_2"])
    moved = _another_process(store).save(first, replace(first, parked_reason="moved on"))
    assert store.get("task_1") == first  # as it was when the batch read it
    assert store.get("task_2") is None
    assert store.get("task_1") == moved
    assert store.get("task_2") is None


def test_a_write_drops_what_was_read_ahead_of_its_link(store: LinkStore) -> None:
    store.read_ahead(["task_1", "task_2"])
    written = store.save(None, TaskLink.unseen("task_1"))
    assert store.get("task_1") == written


def test_a_link_read_ahead_stays_guarded_by_its_rev(store: LinkStore) -> None:
    """What was read ahead is as good as any read: a write based on it fails once the link
    has changed since."""
    first = store.save(None, TaskLink.unseen("task_1"))
    store.read_ahead(["task_1", "task_2"])
    _another_process(store).save(first, replace(first, parked_reason="someone else"))
    ahead = store.get("task_1")
    assert ahead == first
    with pytest.raises(ConcurrentUpdate):
        store.save(ahead, replace(first, parked_reason="late"))


def test_an_unreadable_link_read_ahead_fails_only_its_own_read(state_tables: Any) -> None:
    """One link item this code cannot read (written by a newer version, say) must not fail the
    batch's read-ahead, and so every task of the batch: only its own record's read fails."""
    store = TaskLinkStore(state_tables.client, state_tables.state)
    good = store.save(None, TaskLink.unseen("task_1"))
    state_tables.client.put_item(
        TableName=state_tables.state,
        Item={"pk": {"S": "task#task_2"}, "close_task_id": {"S": "task_2"}, "state": {"S": "from-the-future"}},
    )
    store.read_ahead(["task_1", "task_2"])
    assert store.get("task_1") == good
    with pytest.raises(ValueError, match="from-the-future"):
        store.get("task_2")
