"""Sync-back on the in-memory world: a person completes or reopens a task in ChartMogul, and a pass
writes it to Close (or aligns ChartMogul).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tasksync.errors import PermanentApiError
from tasksync.models.close import CloseTask
from tests.fakes.syncback import make_sync_back_world


def test_a_completion_in_chartmogul_completes_the_close_task_and_its_echo_writes_nothing_back() -> None:
    sb = make_sync_back_world()
    task_id, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)
    logged = len(sb.world.close.events)

    report = sb.sync_back.run()

    assert sb.world.close.tasks[task_id]["is_complete"] is True
    assert sb.world.close.writes == [(task_id, True)]
    assert (report.candidates, report.completions_written, report.conflicts) == (1, 1, 0)
    link = sb.world.links.get(task_id)
    assert link is not None
    assert link.written_back_complete is True
    assert link.written_back_version is not None
    # The next pass, before the echo arrives, sees the write as ours.
    assert sb.sync_back.run().candidates == 0

    # The echo: Close logged (and sends) the update, the completion and its activity.
    sb.world.chartmogul.reset_log()
    sb.deliver_close_events_since(logged)
    echo_calls = [c for c in sb.world.chartmogul.log if c.target == uuid]
    assert len(echo_calls) <= 1  # at most aligning completed_at
    assert all(c.method == "PATCH" and set(c.body or {}) == {"completed_at"} for c in echo_calls)
    sb.world.chartmogul.reset_log()
    for _ in range(5):
        later = sb.sync_back.run()
        assert later.candidates == 0
    assert sb.world.close.writes == [(task_id, True)]
    assert [c for c in sb.world.chartmogul.log if c.target == uuid] == []
    sb.world.assert_mirrors(task_id)


def test_a_reopening_in_chartmogul_reopens_the_close_task_once() -> None:
    sb = make_sync_back_world()
    task_id, uuid = sb.mirrored_task()
    sb.world.close.complete_task(task_id)
    for event in sb.world.close.events[-3:]:
        sb.world.apply_until_done(event)
    assert sb.world.chartmogul.tasks[uuid].completed_at is not None
    sb.world.chartmogul.person_reopens(uuid)
    logged = len(sb.world.close.events)

    report = sb.sync_back.run()

    assert (report.reopenings_written, sb.world.close.tasks[task_id]["is_complete"]) == (1, False)
    sb.world.chartmogul.reset_log()
    sb.deliver_close_events_since(logged)
    assert [c for c in sb.world.chartmogul.log if c.target == uuid] == []
    for _ in range(5):
        assert sb.sync_back.run().candidates == 0
    assert sb.world.close.writes == [(task_id, False)]
    sb.world.assert_mirrors(task_id)


def test_a_later_close_change_wins_a_conflict_and_chartmogul_is_aligned() -> None:
    sb = make_sync_back_world()
    task_id, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)  # CS completes first ...
    sb.world.close.complete_task(task_id)  # ... then the rep completes and reopens in Close,
    sb.world.close.reopen_task(task_id)  # and those events have not been applied yet

    report = sb.sync_back.run()

    assert (report.conflicts, report.chartmogul_aligned, report.completions_written) == (1, 1, 0)
    assert sb.world.close.writes == []
    assert sb.world.chartmogul.tasks[uuid].completed_at is None
    assert sb.world.close.tasks[task_id]["is_complete"] is False


def test_a_later_chartmogul_change_wins_a_conflict_and_close_is_written() -> None:
    sb = make_sync_back_world()
    task_id, uuid = sb.mirrored_task()
    sb.world.close.update_task(task_id, text="Renewal call, moved")  # the rep edits first ...
    sb.world.chartmogul.person_completes(uuid)  # ... then CS completes

    report = sb.sync_back.run()

    assert (report.conflicts, report.completions_written) == (1, 1)
    assert sb.world.close.tasks[task_id]["is_complete"] is True
    for event in sb.world.close.events[-4:]:
        sb.world.apply_until_done(event)
    sb.world.assert_mirrors(task_id)


def test_a_change_older_than_our_last_write_is_ignored_and_chartmogul_follows_close() -> None:
    sb = make_sync_back_world()
    task_id, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)
    link = sb.world.links.get(task_id)
    assert link is not None
    # The sync wrote to the link after that change (its clock is past the person's moment).
    sb.world.links.links[task_id] = replace(link, updated_at=sb.world.clock.now + 3600)

    report = sb.sync_back.run()

    assert (report.completions_written, report.chartmogul_aligned) == (0, 1)
    assert sb.world.close.writes == []
    assert sb.world.chartmogul.tasks[uuid].completed_at is None


def test_a_task_deleted_in_chartmogul_is_reported_and_close_is_left_alone() -> None:
    sb = make_sync_back_world()
    task_id, uuid = sb.mirrored_task()
    del sb.world.chartmogul.tasks[uuid]

    report = sb.sync_back.run()

    assert report.deleted_in_chartmogul == [task_id]
    assert sb.world.close.writes == []
    assert sb.ledger.reports[-1].as_dict()["deleted_in_chartmogul"] == [task_id]


def test_it_runs_on_every_nth_pass_only() -> None:
    sb = make_sync_back_world(every_passes=3)
    _, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)
    runs = [sb.sync_back.maybe_run() for _ in range(6)]
    assert [r is not None for r in runs] == [False, False, True, False, False, True]
    assert sb.world.close.writes
    assert len(sb.world.close.writes) == 1


def test_a_refused_close_write_is_reported_as_a_key_that_cannot_write(monkeypatch: pytest.MonkeyPatch) -> None:
    sb = make_sync_back_world()
    task_id, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)

    def refuse(task_id: str, is_complete: bool) -> CloseTask:
        raise PermanentApiError("close", "PUT", "/task/x/", 403, '{"error": "forbidden"}')

    monkeypatch.setattr(sb.world.close, "set_task_complete", refuse)
    report = sb.sync_back.run()
    assert report.close_write_refused is not None
    assert "cannot write" in report.close_write_refused
    assert sb.world.close.tasks[task_id]["is_complete"] is False
    link = sb.world.links.get(task_id)
    assert link is not None
    assert link.fields is not None
    assert link.fields.completed_at is None


def test_a_pass_lists_open_tasks_by_the_page_and_gets_only_candidates() -> None:
    sb = make_sync_back_world()
    ids = [sb.mirrored_task(f"Task {n}") for n in range(5)]
    sb.world.chartmogul.person_completes(ids[2][1])
    sb.world.chartmogul.reset_log()
    report = sb.sync_back.run()
    gets = [c.target for c in sb.world.chartmogul.log if c.method == "GET"]
    assert gets == ["tasks", ids[2][1]]
    assert (report.checked, report.listed, report.candidates, report.chartmogul_calls) == (5, 4, 1, 2)
