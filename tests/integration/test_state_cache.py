"""StateCache against DynamoDB Local: hits, misses, expiry, the memory layer and write ordering."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tasksync.dal.state_cache import StateCache
from tasksync.logic.ports import AssigneeRefusals, LookupCache
from tests.support.dynamodb import StateTables

START = 1_750_000_000.0


@dataclass
class FakeClock:
    now: float = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def cache_for(tables: StateTables, clock: FakeClock) -> StateCache:
    """A cache as a fresh worker has it: nothing in memory."""
    return StateCache(tables.client, tables.state, clock=clock)


def stored_item(tables: StateTables, pk: str) -> dict[str, str] | None:
    item = tables.client.get_item(TableName=tables.state, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    if item is None:
        return None
    return {name: next(iter(value.values())) for name, value in item.items()}  # type: ignore[misc]


def test_state_cache_satisfies_the_lookup_cache_port(state_tables: StateTables, clock: FakeClock) -> None:
    port: LookupCache = cache_for(state_tables, clock)
    assert port.get_customer("lead_1") is None


def test_miss_reads_dynamodb_once_and_returns_none(state_tables: StateTables, clock: FakeClock) -> None:
    cache = cache_for(state_tables, clock)
    assert cache.get_customer("lead_missing") is None
    assert cache.get_user_email("user_missing") is None
    assert (cache.reads, cache.writes) == (2, 0)


def test_put_is_shared_through_dynamodb(state_tables: StateTables, clock: FakeClock) -> None:
    writer = cache_for(state_tables, clock)
    writer.put_customer("lead_1", "cus_1", ttl_seconds=600)
    writer.put_user_email("user_1", "ann@example.com", ttl_seconds=600)
    assert writer.writes == 2

    reader = cache_for(state_tables, clock)
    assert reader.get_customer("lead_1") == "cus_1"
    assert reader.get_user_email("user_1") == "ann@example.com"
    assert reader.reads == 2
    item = stored_item(state_tables, "lead#lead_1")
    assert item is not None
    assert item["customer_uuid"] == "cus_1"
    assert int(item["expires_at"]) == int(START + 600)


def test_memory_answers_a_warm_worker_without_dynamodb(state_tables: StateTables, clock: FakeClock) -> None:
    writer = cache_for(state_tables, clock)
    writer.put_customer("lead_1", "cus_1", ttl_seconds=600)
    for _ in range(3):
        assert writer.get_customer("lead_1") == "cus_1"
    assert writer.reads == 0

    reader = cache_for(state_tables, clock)
    for _ in range(3):
        assert reader.get_customer("lead_1") == "cus_1"
    assert reader.reads == 1
    assert reader.memory_hits == 2


def test_expired_item_is_a_miss_even_before_ttl_deletes_it(state_tables: StateTables, clock: FakeClock) -> None:
    cache_for(state_tables, clock).put_customer("lead_1", "cus_1", ttl_seconds=60)
    warm = cache_for(state_tables, clock)
    assert warm.get_customer("lead_1") == "cus_1"

    clock.now = START + 61
    # The memory entry expired with the item: the warm worker asks DynamoDB again ...
    assert warm.get_customer("lead_1") is None
    assert warm.reads == 2
    # ... and DynamoDB still holds the item (TTL deletes lazily), which the read filtered out.
    assert stored_item(state_tables, "lead#lead_1") is not None
    assert cache_for(state_tables, clock).get_customer("lead_1") is None


def test_memory_is_held_for_at_most_memory_seconds(state_tables: StateTables, clock: FakeClock) -> None:
    writer = StateCache(state_tables.client, state_tables.state, clock=clock, memory_seconds=30)
    writer.put_customer("lead_1", "cus_1", ttl_seconds=3600)
    clock.now = START + 31
    assert writer.get_customer("lead_1") == "cus_1"
    assert writer.reads == 1


def test_memory_is_bounded(state_tables: StateTables, clock: FakeClock) -> None:
    cache = StateCache(state_tables.client, state_tables.state, clock=clock, memory_items=2)
    for n in range(3):
        cache.put_customer(f"lead_{n}", f"cus_{n}", ttl_seconds=600)
    assert cache.get_customer("lead_2") == "cus_2"
    assert cache.reads == 0
    # lead_0 was remembered first and fell out of memory; DynamoDB still answers.
    assert cache.get_customer("lead_0") == "cus_0"
    assert cache.reads == 1


def test_forget_removes_the_answer_for_every_worker(state_tables: StateTables, clock: FakeClock) -> None:
    cache = cache_for(state_tables, clock)
    cache.put_customer("lead_1", "cus_1", ttl_seconds=600)
    cache.forget_customer("lead_1")
    assert cache.get_customer("lead_1") is None
    assert cache.reads == 1
    assert cache_for(state_tables, clock).get_customer("lead_1") is None


def test_an_older_answer_does_not_overwrite_a_newer_one(state_tables: StateTables) -> None:
    slow_clock, fast_clock = FakeClock(START + 10), FakeClock(START + 20)
    slow = cache_for(state_tables, slow_clock)
    fast = cache_for(state_tables, fast_clock)
    fast.put_customer("lead_1", "cus_new", ttl_seconds=600)
    # The slow worker resolved the lead earlier but writes later: it loses.
    slow.put_customer("lead_1", "cus_old", ttl_seconds=600)
    assert slow.writes == 1
    # It does not trust its own losing answer: it reads the stored one.
    assert slow.get_customer("lead_1") == "cus_new"
    assert slow.reads == 1
    assert cache_for(state_tables, fast_clock).get_customer("lead_1") == "cus_new"


def test_a_newer_answer_overwrites_an_older_one(state_tables: StateTables, clock: FakeClock) -> None:
    cache_for(state_tables, clock).put_customer("lead_1", "cus_old", ttl_seconds=600)
    clock.now = START + 5
    cache_for(state_tables, clock).put_customer("lead_1", "cus_new", ttl_seconds=600)
    assert cache_for(state_tables, clock).get_customer("lead_1") == "cus_new"


def test_an_expired_item_without_cached_at_is_overwritten(state_tables: StateTables, clock: FakeClock) -> None:
    # An item written by hand (or by an older version) has no cached_at to compare: expiry decides.
    state_tables.client.put_item(
        TableName=state_tables.state,
        Item={"pk": {"S": "lead#lead_1"}, "customer_uuid": {"S": "cus_hand"}, "expires_at": {"N": str(int(START))}},
    )
    cache_for(state_tables, clock).put_customer("lead_1", "cus_now", ttl_seconds=600)
    assert cache_for(state_tables, clock).get_customer("lead_1") == "cus_now"


def test_a_put_older_than_a_forget_stays_forgotten(state_tables: StateTables) -> None:
    resolving = cache_for(state_tables, FakeClock(START + 10))
    cache_for(state_tables, FakeClock(START + 20)).forget_customer("lead_1")
    resolving.put_customer("lead_1", "cus_stale", ttl_seconds=600)
    assert cache_for(state_tables, FakeClock(START + 30)).get_customer("lead_1") is None


def test_zero_ttl_turns_caching_off(state_tables: StateTables, clock: FakeClock) -> None:
    cache = cache_for(state_tables, clock)
    cache.put_customer("lead_1", "cus_1", ttl_seconds=0)
    assert cache.writes == 0
    assert cache.get_customer("lead_1") is None
    assert stored_item(state_tables, "lead#lead_1") is None


def test_leads_and_users_do_not_collide(state_tables: StateTables, clock: FakeClock) -> None:
    cache = cache_for(state_tables, clock)
    cache.put_customer("same_id", "cus_1", ttl_seconds=600)
    cache.put_user_email("same_id", "ann@example.com", ttl_seconds=600)
    fresh = cache_for(state_tables, clock)
    assert fresh.get_customer("same_id") == "cus_1"
    assert fresh.get_user_email("same_id") == "ann@example.com"


# ---------------------------------------------------------------- refused assignees
def test_a_refused_assignee_is_shared_listed_and_expires(state_tables: StateTables, clock: FakeClock) -> None:
    port: AssigneeRefusals = cache_for(state_tables, clock)
    port.note_assignee_refusal("Rep@Sales.Example", "HTTP 422", ttl_seconds=600)
    other = cache_for(state_tables, clock)
    assert other.assignee_refusal("rep@sales.example") == "HTTP 422"
    assert [(r.email, r.refusal) for r in other.refused_assignees()] == [("rep@sales.example", "HTTP 422")]
    clock.now += 601
    fresh = cache_for(state_tables, clock)
    assert fresh.assignee_refusal("rep@sales.example") is None
    assert list(fresh.refused_assignees()) == []


def test_no_refusal_is_remembered_in_memory_for_a_while(state_tables: StateTables, clock: FakeClock) -> None:
    # Nearly every assignee is fine: asking again for each task must not read DynamoDB again.
    cache = cache_for(state_tables, clock)
    assert cache.assignee_refusal("rep@sales.example") is None
    assert cache.assignee_refusal("rep@sales.example") is None
    assert cache.reads == 1
    clock.now += cache.memory_seconds + 1
    assert cache.assignee_refusal("rep@sales.example") is None
    assert cache.reads == 2
    # This worker's own refusal replaces the remembered absence at once.
    cache.note_assignee_refusal("rep@sales.example", "HTTP 400", ttl_seconds=600)
    assert cache.assignee_refusal("rep@sales.example") == "HTTP 400"
