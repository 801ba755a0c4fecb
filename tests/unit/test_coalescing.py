"""BatchPlan: which records of one SQS batch are applied as one, and as which record."""

from __future__ import annotations

import itertools
import json
from typing import Any

from tasksync.coalescing import BatchPlan, ParsedRecord

_ids = itertools.count()


def event(task: str, action: str = "updated", second: int = 0, *, kind: str = "task.lead") -> dict[str, Any]:
    stamp = f"2026-01-01T00:00:{second:02d}+00:00"
    data: dict[str, Any]
    if kind == "activity.task_completed":
        data = {"task_id": task, "date_created": stamp}
    else:
        data = {"id": task, "_type": "lead", "lead_id": "lead_1", "date_updated": stamp}
    return {
        "id": f"ev_{next(_ids)}",
        "object_type": kind,
        "action": action,
        "object_id": task if kind.startswith("task.") else "acti_1",
        "date_created": stamp,
        "date_updated": stamp,
        "data": data,
    }


def record(raw: dict[str, Any] | str) -> ParsedRecord:
    body = raw if isinstance(raw, str) else json.dumps(raw)
    return ParsedRecord.parse(f"m{next(_ids)}", body)


def test_consecutive_edits_of_one_task_are_applied_once_as_the_newest() -> None:
    records = [record(event("A", "created", 1)), record(event("A", "updated", 3)), record(event("A", "updated", 2))]
    plan = BatchPlan(records)
    run = plan.run_of(records[0].message_id)
    assert run is not None
    assert run.members == tuple(records)
    assert run.representative is records[1]  # the newest version, not the last record
    assert all(plan.run_of(r.message_id) is run for r in records)


def test_a_tie_goes_to_the_later_record() -> None:
    records = [record(event("A", "updated", 5)), record(event("A", "updated", 5))]
    run = BatchPlan(records).run_of(records[0].message_id)
    assert run is not None
    assert run.representative is records[1]


def test_records_of_other_tasks_in_between_do_not_break_a_run() -> None:
    a1, b1, a2, b2 = (record(event(t, "updated", s)) for t, s in (("A", 1), ("B", 1), ("A", 2), ("B", 2)))
    plan = BatchPlan([a1, b1, a2, b2])
    run_a, run_b = plan.run_of(a1.message_id), plan.run_of(b1.message_id)
    assert run_a is not None
    assert run_b is not None
    assert (run_a.members, run_a.representative) == ((a1, a2), a2)
    assert (run_b.members, run_b.representative) == ((b1, b2), b2)


def test_a_delete_ends_its_run_and_is_its_representative() -> None:
    created, deleted, late = record(event("A", "created", 1)), record(event("A", "deleted", 2)), record(event("A"))
    plan = BatchPlan([created, deleted, late])
    run = plan.run_of(created.message_id)
    assert run is not None
    assert (run.members, run.representative) == ((created, deleted), deleted)
    assert plan.run_of(late.message_id) is None  # after the delete: applied on its own (the tombstone skips it)


def test_a_completion_activity_stands_alone_and_splits_the_runs_around_it() -> None:
    before = [record(event("A", "updated", 1)), record(event("A", "completed", 2))]
    activity = record(event("A", "created", 2, kind="activity.task_completed"))
    after = [record(event("A", "updated", 3)), record(event("A", "updated", 4))]
    plan = BatchPlan([*before, activity, *after])
    first, second = plan.run_of(before[0].message_id), plan.run_of(after[0].message_id)
    assert first is not None
    assert second is not None
    assert first.members == tuple(before)
    assert second.members == tuple(after)
    assert plan.run_of(activity.message_id) is None


def test_single_records_unreadable_ones_and_events_about_no_task_are_applied_alone() -> None:
    lone = record(event("A"))
    broken = record("{broken")
    other = record({**event("B"), "object_type": "lead", "object_id": "lead_1"})
    plan = BatchPlan([lone, broken, other, record(event("C"))])
    assert broken.queued is None
    assert broken.rejection is not None
    assert "JSON" in broken.rejection
    assert all(plan.run_of(r.message_id) is None for r in (lone, broken, other))


def test_an_unreadable_record_between_two_edits_does_not_keep_them_apart() -> None:
    first, broken, second = record(event("A", "updated", 1)), record("[]"), record(event("A", "updated", 2))
    run = BatchPlan([first, broken, second]).run_of(first.message_id)
    assert run is not None
    assert run.members == (first, second)


def test_lambda_records_are_parsed_once_each() -> None:
    raw = event("A")
    plan = BatchPlan.from_lambda_records([{"messageId": "m-1", "body": json.dumps(raw)}])
    parsed = plan.records["m-1"]
    assert parsed.queued is not None
    assert parsed.queued.event.id == raw["id"]
