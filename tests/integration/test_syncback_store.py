"""The sync-back's store methods on both LinkStores, and its ledger on DynamoDB."""

from __future__ import annotations

from typing import Any

import pytest

from tasksync.dal.links import TaskLinkStore
from tasksync.dal.syncback_ledger import SyncBackLedger
from tasksync.logic.syncback import SyncBackReport
from tasksync.models.chartmogul import TaskFields
from tasksync.models.link import LinkState, TaskLink
from tests.fakes.links import InMemoryLinkStore

FIELDS = TaskFields(task_details="Call", assignee="a@x.example", due_date="2025-03-01")


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> TaskLinkStore | InMemoryLinkStore:
    if request.param == "memory":
        return InMemoryLinkStore()
    tables: Any = request.getfixturevalue("state_tables")
    return TaskLinkStore(tables.client, tables.state)


def test_active_links_are_listed_with_what_was_written_back(store: TaskLinkStore | InMemoryLinkStore) -> None:
    active = TaskLink("task_a", LinkState.ACTIVE, version="v1", cm_task_uuid="tsk_a", fields=FIELDS)
    store.save(None, active)
    store.save(None, TaskLink("task_p", LinkState.PARKED, parked_reason="no customer", retry_at=5.0))
    store.save(None, TaskLink.unseen("task_d").tombstoned(1.0))
    stored = store.get("task_a")
    assert stored is not None
    written = stored.completion_synced_back(
        completed_at="2025-03-01T10:00:00Z", close_version="2025-03-01T10:00:01.000000Z", wrote_close=True, now=7.25
    )
    store.save(stored, written)

    [listed] = list(store.active_links())

    assert listed.close_task_id == "task_a"
    assert listed.fields is not None
    assert listed.fields.completed_at == "2025-03-01T10:00:00Z"
    assert (listed.written_back_complete, listed.written_back_version, listed.written_back_at) == (
        True,
        "2025-03-01T10:00:01.000000Z",
        7.25,
    )


def test_the_ledger_counts_passes_and_keeps_the_last_report(state_tables: Any) -> None:
    ledger = SyncBackLedger(state_tables.client, state_tables.state)
    assert ledger.last() is None
    assert [ledger.count_pass() for _ in range(3)] == [1, 2, 3]
    ledger.record(SyncBackReport(started_at="2026-01-01T00:00:00Z", checked=4, completions_written=1))
    ledger.record(SyncBackReport(started_at="2026-01-01T00:05:00Z", checked=5, conflicts=2))
    last = ledger.last()
    assert last is not None
    assert (last["started_at"], last["checked"], last["conflicts"], last["completions_written"]) == (
        "2026-01-01T00:05:00Z",
        5,
        2,
        0,
    )
