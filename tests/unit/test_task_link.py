"""TaskLink transitions: each one sets and clears exactly what its state implies."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tasksync.models.chartmogul import TaskFields
from tasksync.models.link import SYNC_BACK_RECHECK_SECONDS, LinkState, TaskLink

NOW = 1_800_000_000.0
OLD = TaskFields(task_details="old", assignee="a@x.example", due_date="2025-03-01")
NEW = TaskFields(task_details="new", assignee="b@x.example", due_date="2025-03-02")

# Every field set, so a transition that forgets to clear one is seen.
CLUTTERED = TaskLink(
    close_task_id="task_1",
    state=LinkState.CREATING,
    rev=7,
    version="2025-01-01T00:00:00.000000Z",
    pending_version="2025-01-02T00:00:00.000000Z",
    cm_task_uuid="tsk_old",
    customer_uuid="cus_old",
    lead_id="lead_old",
    task_type="lead",
    fields=OLD,
    fingerprint=OLD.fingerprint(),
    lease_owner="someone",
    lease_until=NOW + 60,
    maybe_created=True,
    intended_fields=OLD,
    intended_customer="cus_old",
    parked_reason="why",
    retry_at=NOW + 5,
    attempts=3,
    pending_delete=True,
    updated_at=NOW - 100,
)


def lease(link: TaskLink, now: float = NOW) -> TaskLink:
    return link.leased(
        owner="me",
        until=now + 30,
        customer_uuid="cus_new",
        lead_id="lead_new",
        task_type="lead",
        version="2025-01-03T00:00:00.000000Z",
        fields=NEW,
        now=now,
    )


def test_a_first_lease_intends_what_it_will_post() -> None:
    leased = lease(TaskLink.unseen("task_1"))
    assert leased.state is LinkState.CREATING
    assert (leased.lease_owner, leased.lease_until) == ("me", NOW + 30)
    assert (leased.intended_fields, leased.intended_customer, leased.maybe_created) == (NEW, "cus_new", False)
    assert leased.pending_version == "2025-01-03T00:00:00.000000Z"
    assert leased.updated_at == NOW


def test_a_lease_after_an_uncertain_post_keeps_describing_that_post() -> None:
    leased = lease(CLUTTERED)
    assert leased.maybe_created
    assert (leased.intended_fields, leased.intended_customer) == (OLD, "cus_old")
    assert (leased.cm_task_uuid, leased.parked_reason, leased.retry_at) == (None, None, None)
    assert leased.customer_uuid == "cus_new"


def test_a_lease_after_a_crash_searches_too() -> None:
    crashed = TaskLink(close_task_id="t", state=LinkState.CREATING, lease_until=NOW - 1, intended_fields=OLD)
    assert lease(crashed).maybe_created
    assert lease(crashed).intended_fields == OLD


def test_intending_describes_the_post_about_to_be_sent() -> None:
    intending = lease(CLUTTERED).intending(fields=NEW, customer_uuid="cus_new")
    assert (intending.maybe_created, intending.intended_fields, intending.intended_customer) == (False, NEW, "cus_new")
    assert intending.lease_owner == "me"


def test_adopted_takes_the_intended_fields_and_keeps_the_version_pending() -> None:
    adopted = lease(CLUTTERED).adopted("tsk_found")
    assert adopted.state is LinkState.ACTIVE
    assert (adopted.cm_task_uuid, adopted.customer_uuid, adopted.fields) == ("tsk_found", "cus_old", OLD)
    assert adopted.fingerprint == OLD.fingerprint()
    assert adopted.pending_version == "2025-01-03T00:00:00.000000Z"
    assert (adopted.lease_owner, adopted.lease_until, adopted.maybe_created) == (None, 0.0, False)
    assert (adopted.intended_fields, adopted.intended_customer) == (None, None)


def test_adopted_needs_intended_fields() -> None:
    with pytest.raises(ValueError, match="intended"):
        TaskLink.unseen("t").adopted("tsk_x")


def test_activated_clears_everything_but_the_mirror() -> None:
    active = CLUTTERED.activated(
        task_uuid="tsk_new",
        customer_uuid="cus_new",
        lead_id="lead_new",
        task_type="lead",
        fields=NEW,
        version="2025-01-03T00:00:00.000000Z",
        now=NOW,
    )
    assert active == TaskLink(
        close_task_id="task_1",
        state=LinkState.ACTIVE,
        rev=7,  # the store moves rev, not the transition
        version="2025-01-03T00:00:00.000000Z",
        cm_task_uuid="tsk_new",
        customer_uuid="cus_new",
        lead_id="lead_new",
        task_type="lead",
        fields=NEW,
        fingerprint=NEW.fingerprint(),
        updated_at=NOW,
        pushed_at=NOW,
    )


def test_a_change_waits_out_the_settle_window_of_the_last_write_only() -> None:
    written = CLUTTERED.activated(
        task_uuid="t", customer_uuid="c", lead_id="l", task_type="lead", fields=NEW, version="v", now=NOW
    )
    assert written.settles_until(NOW + 3, 10) == NOW + 10
    assert written.settles_until(NOW + 10, 10) is None
    assert written.settles_until(NOW + 3, 0) is None  # SETTLE_SECONDS=0: write at once
    # Found as it should be (nothing written): the last write's window still counts, not this one.
    found = written.activated(
        task_uuid="t",
        customer_uuid="c",
        lead_id="l",
        task_type="lead",
        fields=NEW,
        version="w",
        now=NOW + 8,
        written=False,
    )
    assert found.settles_until(NOW + 9, 10) == NOW + 10
    assert found.settles_until(NOW + 11, 10) is None
    # Only a mirrored task settles: a parked one is retried as it is.
    parked = written.parked(
        reason="r", now=NOW + 1, backoff_base=60, backoff_max=600, version=None, lead_id=None, task_type=None
    )
    assert parked.settles_until(NOW + 2, 10) is None


def test_released_gives_the_lease_back_and_never_forgets_an_uncertain_post() -> None:
    leased = lease(TaskLink.unseen("t"))
    assert leased.released(maybe_created=True).maybe_created
    assert not leased.released(maybe_created=False).maybe_created
    assert lease(CLUTTERED).released(maybe_created=False).maybe_created
    released = leased.released(maybe_created=False)
    assert (released.lease_owner, released.lease_until, released.state) == (None, 0.0, LinkState.CREATING)


def park(link: TaskLink, now: float = NOW) -> TaskLink:
    return link.parked(
        reason="x" * 600,
        now=now,
        backoff_base=60,
        backoff_max=3600,
        version=None,
        lead_id="lead_p",
        task_type=None,
    )


def test_parked_backs_off_per_consecutive_park_and_remembers_an_uncertain_post() -> None:
    first = park(lease(CLUTTERED))
    assert first.state is LinkState.PARKED
    assert (first.attempts, first.retry_at) == (1, NOW + 60)
    assert len(first.parked_reason or "") == 500
    assert (first.lease_owner, first.lease_until) == (None, 0.0)
    assert first.maybe_created
    assert first.pending_version == "2025-01-03T00:00:00.000000Z"  # kept: no new version given
    assert (first.lead_id, first.task_type) == ("lead_p", "lead")
    second = park(first)
    assert (second.attempts, second.retry_at) == (2, NOW + 120)
    assert park(TaskLink(close_task_id="t", state=LinkState.PARKED, attempts=30)).retry_at == NOW + 3600


def test_parked_notes_a_crashed_create() -> None:
    crashed = TaskLink(close_task_id="t", state=LinkState.CREATING, lease_owner="dead", lease_until=NOW - 1)
    assert park(crashed).maybe_created
    assert not park(TaskLink.unseen("t")).maybe_created


def test_tombstoned_keeps_no_task_and_nothing_pending() -> None:
    tomb = CLUTTERED.tombstoned(NOW)
    assert tomb.state is LinkState.DELETED
    cleared = (tomb.cm_task_uuid, tomb.lease_owner, tomb.lease_until, tomb.maybe_created, tomb.intended_fields)
    assert cleared == (None, None, 0.0, False, None)
    assert (tomb.intended_customer, tomb.parked_reason, tomb.retry_at, tomb.updated_at) == (None, None, None, NOW)
    assert not tomb.pending_delete


def test_withdrawn_keeps_no_task_and_no_customer_to_reuse() -> None:
    active = CLUTTERED.activated(
        task_uuid="tsk_1", customer_uuid="cus_1", lead_id="lead_1", task_type="lead", fields=OLD, version="v", now=NOW
    )
    withdrawn = active.withdrawn(NOW + 1)
    assert (withdrawn.cm_task_uuid, withdrawn.customer_uuid, withdrawn.updated_at) == (None, None, NOW + 1)
    assert (withdrawn.fields, withdrawn.version, withdrawn.state) == (OLD, "v", LinkState.ACTIVE)


def test_delete_parked_remembers_the_delete_and_keeps_the_lead() -> None:
    active = TaskLink(close_task_id="t", state=LinkState.ACTIVE, cm_task_uuid="tsk_1", lead_id="lead_1")
    parked = active.delete_parked(reason="401", now=NOW, backoff_base=60, backoff_max=3600, task_type="lead")
    assert (parked.state, parked.pending_delete, parked.retry_at) == (LinkState.PARKED, True, NOW + 60)
    assert (parked.cm_task_uuid, parked.lead_id) == ("tsk_1", "lead_1")


def test_unparked_leaves_the_retry_index_with_the_reason() -> None:
    parked = park(TaskLink.unseen("t"))
    released = parked.unparked(reason="not retried: ignored", now=NOW + 9)
    assert (released.state, released.retry_at, released.parked_reason) == (
        LinkState.PARKED,
        None,
        "not retried: ignored",
    )


def test_completion_corrected_changes_only_the_completion_time() -> None:
    corrected = CLUTTERED.completion_corrected("2025-01-15T10:00:00Z", NOW)
    assert corrected.fields == OLD.model_copy(update={"completed_at": "2025-01-15T10:00:00Z"})
    assert corrected.fingerprint == corrected.fields.fingerprint()
    assert corrected.cm_task_uuid == CLUTTERED.cm_task_uuid


@pytest.mark.parametrize(
    ("state", "version", "pending", "candidate", "stale"),
    [
        (LinkState.ACTIVE, "2025-02", None, "2025-02", True),  # a duplicate
        (LinkState.ACTIVE, "2025-02", None, "2025-03", False),
        (LinkState.DELETED, "2025-02", None, "2025-01", True),
        (LinkState.PARKED, "2025-01", "2025-02", "2025-02", False),  # the retry it waits for
        (LinkState.PARKED, "2025-01", "2025-02", "2025-01", True),
        (LinkState.CREATING, None, None, "2025-01", False),
    ],
)
def test_makes_stale(state: LinkState, version: str | None, pending: str | None, candidate: str, stale: bool) -> None:
    link = TaskLink(close_task_id="t", state=state, version=version, pending_version=pending)
    assert link.makes_stale(candidate) is stale


def _mirror(version: str = "2026-01-01T10:00:00.000000Z") -> TaskLink:
    fields = TaskFields(task_details="x", assignee="a@b.c", due_date="2026-01-05", completed_at=None)
    return TaskLink("task_1", LinkState.ACTIVE, version=version, cm_task_uuid="tsk_1", fields=fields)


def test_a_reported_link_is_skipped_until_it_changes_or_is_due_again() -> None:
    reported = _mirror().sync_back_reported_as("the ChartMogul task is gone", now=100.0)
    assert reported.sync_back_skips(100.0 + SYNC_BACK_RECHECK_SECONDS - 1)
    assert not reported.sync_back_skips(100.0 + SYNC_BACK_RECHECK_SECONDS)
    assert not replace(reported, version="2026-01-02T10:00:00.000000Z").sync_back_skips(101.0)
    assert not _mirror().sync_back_skips(0.0)


def test_our_write_back_is_told_from_a_later_completion_by_a_person() -> None:
    written = _mirror().completion_synced_back(
        completed_at="2026-01-01T09:00:00Z", close_version="2026-01-01T11:00:00.100000Z", wrote_close=True, now=5.0
    )
    assert written.completion_written_back("2026-01-01T11:00:00Z")
    assert not written.completion_written_back("2026-01-01T12:00:00Z")
    assert not _mirror().completion_written_back("2026-01-01T11:00:00Z")


def test_a_queued_parked_retry_moves_its_retry_time_and_nothing_else() -> None:
    parked = TaskLink.unseen("task_1").parked(
        reason="no customer", now=0.0, backoff_base=60, backoff_max=3600, version=None, lead_id=None, task_type=None
    )
    queued = parked.retry_enqueued(now=100.0, grace=900)
    assert (queued.retry_at, queued.attempts, queued.state) == (1000.0, parked.attempts, LinkState.PARKED)
    active = _mirror()
    assert active.retry_enqueued(now=100.0, grace=900) is active
