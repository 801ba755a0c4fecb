"""CheckpointStore against DynamoDB Local: forward-only advances, also under concurrency."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta, timezone

from tasksync.dal.checkpoints import CheckpointStore, RunLock
from tasksync.dal.state_cache import StateCache
from tests.support.dynamodb import StateTables

T0 = datetime(2025, 2, 28, 19, 20, 45, 507000, tzinfo=UTC)


def store_for(tables: StateTables) -> CheckpointStore:
    return CheckpointStore(tables.client, tables.state)


def test_no_checkpoint_before_the_first_advance(state_tables: StateTables) -> None:
    assert store_for(state_tables).get("task.lead", "updated") is None
    assert store_for(state_tables).all() == {}


def test_advance_stores_an_aware_utc_datetime(state_tables: StateTables) -> None:
    store = store_for(state_tables)
    assert store.advance("task.lead", "updated", T0) is True
    got = store.get("task.lead", "updated")
    assert got == T0
    assert got is not None
    assert got.tzinfo is not None
    assert got.utcoffset() == timedelta(0)
    item = state_tables.client.get_item(
        TableName=state_tables.state, Key={"pk": {"S": "checkpoint#task.lead#updated"}}
    )["Item"]
    assert item["checkpoint"]["S"] == "2025-02-28T19:20:45.507000Z"


def test_advance_never_moves_back_or_sideways(state_tables: StateTables) -> None:
    store = store_for(state_tables)
    assert store.advance("task.lead", "updated", T0) is True
    assert store.advance("task.lead", "updated", T0 - timedelta(microseconds=1)) is False
    assert store.advance("task.lead", "updated", T0) is False
    assert store.get("task.lead", "updated") == T0
    assert store.advance("task.lead", "updated", T0 + timedelta(microseconds=1)) is True
    assert store.get("task.lead", "updated") == T0 + timedelta(microseconds=1)


def test_naive_and_offset_datetimes_compare_as_utc(state_tables: StateTables) -> None:
    store = store_for(state_tables)
    assert store.advance("task.lead", "created", T0.replace(tzinfo=None)) is True
    # The same instant written in UTC-5 is not later.
    assert store.advance("task.lead", "created", T0.astimezone(timezone(timedelta(hours=-5)))) is False
    # 10:00 at UTC+10 is 00:00 UTC: earlier than T0 although its wall-clock text sorts later.
    assert (
        store.advance("task.lead", "created", datetime(2025, 2, 28, 21, tzinfo=timezone(timedelta(hours=10)))) is False
    )
    assert store.get("task.lead", "created") == T0


def test_concurrent_advances_keep_the_latest(state_tables: StateTables) -> None:
    targets = [T0 + timedelta(seconds=n) for n in range(64)]
    random.Random(7).shuffle(targets)
    workers = 8
    barrier = threading.Barrier(workers)
    moved: dict[int, list[datetime]] = {n: [] for n in range(workers)}
    errors: list[BaseException] = []

    def run(worker: int, share: list[datetime]) -> None:
        store = store_for(state_tables)  # one store per reconciler run, one shared client
        try:
            barrier.wait(timeout=30)
            for target in share:
                if store.advance("task.lead", "updated", target):
                    moved[worker].append(target)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, targets[n::workers])) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert all(not thread.is_alive() for thread in threads)

    assert store_for(state_tables).get("task.lead", "updated") == max(targets)
    accepted = [target for share in moved.values() for target in share]
    # The latest target always wins its write ...
    assert max(targets) in accepted
    # ... and each acceptance moved the checkpoint forward, so what one thread saw accepted, in
    # its own order, only ever increases.
    for share in moved.values():
        assert share == sorted(share)


def test_all_lists_every_checkpoint_and_nothing_else(state_tables: StateTables) -> None:
    store = store_for(state_tables)
    store.advance("task.lead", "created", T0)
    store.advance("task.lead", "updated", T0 + timedelta(hours=1))
    store.advance("task.lead", "deleted", T0 + timedelta(hours=2))
    # Other kinds of items share the table; all() must leave them out.
    StateCache(state_tables.client, state_tables.state).put_customer("lead_1", "cus_1", ttl_seconds=600)
    state_tables.client.put_item(TableName=state_tables.state, Item={"pk": {"S": "task#task_1"}})
    assert store.all() == {
        ("task.lead", "created"): T0,
        ("task.lead", "updated"): T0 + timedelta(hours=1),
        ("task.lead", "deleted"): T0 + timedelta(hours=2),
    }


def test_run_lock_admits_one_holder_until_release_or_expiry(state_tables: StateTables) -> None:
    now = [1_000.0]
    first = RunLock(state_tables.client, state_tables.state, "reconcile", clock=lambda: now[0])
    second = RunLock(state_tables.client, state_tables.state, "reconcile", clock=lambda: now[0])
    assert first.acquire("a", 60)
    assert not second.acquire("b", 60)
    second.release("b")  # not the holder: the lock stays
    assert not second.acquire("b", 60)
    first.release("a")
    assert second.acquire("b", 60)
    now[0] += 61  # b died without releasing: its lease runs out
    assert first.acquire("a", 60)
