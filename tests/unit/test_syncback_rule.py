"""Sync-back's rule, pure: which side wins for a link, its ChartMogul task and its Close task."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tasksync.logic.syncback import Action, decide
from tasksync.models.chartmogul import ChartMogulTask, TaskFields
from tasksync.models.close import CloseTask
from tasksync.models.link import LinkState, TaskLink


# ---------------------------------------------------------------- the rule, pure
def _link(completed: bool, version: str = "2026-01-01T10:00:00.000000Z", updated_at: float = 0.0) -> TaskLink:
    fields = TaskFields(
        task_details="x",
        assignee="a@b.c",
        due_date="2026-01-05",
        completed_at="2026-01-01T10:00:00Z" if completed else None,
    )
    return TaskLink(
        "task_1", LinkState.ACTIVE, version=version, cm_task_uuid="tsk_1", fields=fields, updated_at=updated_at
    )


def _cm(completed: bool, updated_at: str) -> ChartMogulTask:
    return ChartMogulTask(task_uuid="tsk_1", completed_at=updated_at if completed else None, updated_at=updated_at)


def _close(complete: bool, date_updated: str) -> CloseTask:
    return CloseTask.model_validate(
        {
            "id": "task_1",
            "_type": "lead",
            "is_complete": complete,
            "date_created": date_updated,
            "date_updated": date_updated,
        }
    )


@pytest.mark.parametrize(
    ("link_done", "cm", "close", "expected"),
    [
        (
            False,
            _cm(False, "2026-01-01T11:00:00Z"),
            _close(False, "2026-01-01T10:00:00Z"),
            (Action.NOTHING, None, False),
        ),
        (
            False,
            _cm(True, "2026-01-01T11:00:00Z"),
            _close(False, "2026-01-01T10:00:00Z"),
            (Action.WRITE_CLOSE, True, False),
        ),
        (
            True,
            _cm(False, "2026-01-01T11:00:00Z"),
            _close(True, "2026-01-01T10:00:00Z"),
            (Action.WRITE_CLOSE, False, False),
        ),
        (False, _cm(True, "2026-01-01T11:00:00Z"), _close(True, "2026-01-01T12:00:00Z"), (Action.NOTE, True, False)),
        (
            False,
            _cm(True, "2026-01-01T11:00:00Z"),
            _close(False, "2026-01-01T12:00:00Z"),
            (Action.ALIGN_CHARTMOGUL, False, True),
        ),
        (
            False,
            _cm(True, "2026-01-01T12:00:00Z"),
            _close(False, "2026-01-01T11:00:00Z"),
            (Action.WRITE_CLOSE, True, True),
        ),
        (False, None, _close(False, "2026-01-01T10:00:00Z"), (Action.DELETED_IN_CHARTMOGUL, None, False)),
        (False, _cm(True, "2026-01-01T11:00:00Z"), None, (Action.CLOSE_GONE, None, False)),
    ],
)
def test_decide(
    link_done: bool, cm: ChartMogulTask | None, close: CloseTask | None, expected: tuple[object, ...]
) -> None:
    decision = decide(_link(link_done), cm, close)
    assert (decision.action, decision.complete, decision.conflict) == expected


def test_decide_lets_close_win_when_chartmogul_gives_no_readable_updated_at() -> None:
    for unreadable in (None, "yesterday"):
        cm = ChartMogulTask(task_uuid="tsk_1", completed_at="2026-01-01T11:00:00Z", updated_at=unreadable)
        decision = decide(_link(False), cm, _close(False, "2026-01-01T10:00:00Z"))
        assert (decision.action, decision.complete) == (Action.ALIGN_CHARTMOGUL, False)


def test_decide_ignores_a_change_older_than_our_last_write() -> None:
    last_write = datetime(2026, 1, 1, 11, 30, tzinfo=UTC).timestamp()
    decision = decide(
        _link(False, updated_at=last_write), _cm(True, "2026-01-01T11:00:00Z"), _close(False, "2026-01-01T10:00:00Z")
    )
    assert (decision.action, decision.complete) == (Action.ALIGN_CHARTMOGUL, False)


def test_the_transition_records_a_close_write_and_only_then() -> None:
    link = _link(False)
    written = link.completion_synced_back(
        completed_at="2026-01-02T00:00:00Z", close_version="2026-01-02T00:00:01.000000Z", wrote_close=True, now=5.0
    )
    assert (written.written_back_complete, written.written_back_version, written.written_back_at) == (
        True,
        "2026-01-02T00:00:01.000000Z",
        5.0,
    )
    assert written.fields is not None
    assert written.fields.completed_at == "2026-01-02T00:00:00Z"
    noted = link.completion_synced_back(completed_at=None, close_version=None, wrote_close=False, now=6.0)
    assert (noted.written_back_complete, noted.written_back_at, noted.updated_at) == (None, 0.0, 6.0)
    with pytest.raises(ValueError, match="not an active mirror"):
        TaskLink.unseen("task_2").completion_synced_back(
            completed_at=None, close_version=None, wrote_close=False, now=1
        )


def test_decide_takes_a_chartmogul_change_no_newer_than_our_chartmogul_write_for_ours() -> None:
    ours = datetime(2026, 1, 1, 11, 30, tzinfo=UTC).timestamp()
    link = replace(_link(False), chartmogul_written_at=ours)
    decision = decide(link, _cm(True, "2026-01-01T11:30:00Z"), _close(False, "2026-01-01T10:00:00Z"))
    assert (decision.action, decision.complete) == (Action.ALIGN_CHARTMOGUL, False)
