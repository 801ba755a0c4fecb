"""Sync-back on the in-memory world: our own ChartMogul writes and their echoes are never taken for a
person's change.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tasksync.models.link import TaskLink
from tests.fakes.syncback import make_sync_back_world


# ---------------------------------------------------------------- our own ChartMogul writes
def test_an_ignored_reopen_is_recorded_so_its_stamp_is_never_taken_for_a_person() -> None:
    sb = make_sync_back_world(reopen_via_null=False)
    sb.world.chartmogul.ignored_null_stamps = True  # the PATCH moves updated_at, the task stays completed
    task_id, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)  # CS completes first ...
    sb.world.close.update_task(task_id, text="Renewal call, moved")  # ... the rep edits later: Close wins

    first = sb.sync_back.run()
    assert any("kept the task completed" in f for f in first.failures)
    for _ in range(3):
        sb.sync_back.run()

    assert sb.world.close.writes == []  # our own PATCH is never read as a person completing it
    assert sb.world.close.tasks[task_id]["is_complete"] is False


def test_a_chartmogul_write_is_recorded_even_when_the_worker_moved_the_link_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sb = make_sync_back_world()
    task_id, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)
    sb.world.close.update_task(task_id, text="Renewal call, moved")  # Close wins: ChartMogul is aligned
    store = sb.world.links
    real_save = store.save
    raced: list[bool] = []

    def racing_save(previous: TaskLink | None, link: TaskLink) -> TaskLink:
        if not raced:  # the worker saves the link between our read and our write
            raced.append(True)
            stored = store.get(link.close_task_id)
            assert stored is not None
            real_save(stored, replace(stored, updated_at=stored.updated_at + 1))
        return real_save(previous, link)

    monkeypatch.setattr(store, "save", racing_save)
    report = sb.sync_back.run()

    assert (report.chartmogul_aligned, report.deferred) == (1, 0)
    link = store.get(task_id)
    assert link is not None
    assert link.chartmogul_written_at > 0


def test_an_ignored_null_answered_304_is_not_taken_for_a_reopening() -> None:
    sb = make_sync_back_world(reopen_via_null=False)
    task_id, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)
    sb.world.close.update_task(task_id, text="Renewal call, moved")  # Close wins: reopen ChartMogul

    report = sb.sync_back.run()

    assert sb.world.chartmogul.tasks[uuid].completed_at is not None
    assert report.chartmogul_aligned == 0
    assert any("kept the task completed" in f for f in report.failures)


def test_the_echo_of_a_written_back_completion_keeps_the_persons_completion_time() -> None:
    sb = make_sync_back_world()
    _, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)
    completed_by_the_person = sb.world.chartmogul.tasks[uuid].completed_at
    # The pass runs an hour later: Close's completion (and its activity) carry the PUT's time.
    sb.world.close.start_at(sb.world.close._moment + timedelta(hours=1))
    logged = len(sb.world.close.events)
    sb.sync_back.run()
    sb.world.chartmogul.reset_log()

    sb.deliver_close_events_since(logged)

    assert [c for c in sb.world.chartmogul.log if c.target == uuid and c.method == "PATCH"] == []
    kept = sb.world.chartmogul.tasks[uuid].completed_at
    assert kept is not None
    assert completed_by_the_person is not None
    assert _stamp_of(kept) == _stamp_of(completed_by_the_person)


def _stamp_of(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(microsecond=0)
