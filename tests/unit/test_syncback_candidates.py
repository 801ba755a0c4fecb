"""Sync-back on the in-memory world: what a pass takes as candidates, and when it stops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import tasksync.models.link as syncback_link
from tasksync.catch_up import Budget
from tasksync.logic import syncback
from tasksync.models.chartmogul import ChartMogulTask
from tests.fakes.syncback import make_sync_back_world


# ---------------------------------------------------------------- what a pass takes, and when it stops
def test_an_unsettled_candidate_is_reported_once_and_no_longer_holds_the_others_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(syncback, "MAX_CANDIDATES_PER_PASS", 1)
    sb = make_sync_back_world()
    gone_id, gone_uuid = sb.mirrored_task("Gone in ChartMogul")  # first in scan order
    done_id, done_uuid = sb.mirrored_task("Completed in ChartMogul")
    del sb.world.chartmogul.tasks[gone_uuid]
    sb.world.chartmogul.person_completes(done_uuid)

    first = sb.sync_back.run()
    second = sb.sync_back.run()

    assert first.deleted_in_chartmogul == [gone_id]
    assert (second.reported_skipped, second.completions_written) == (1, 1)
    assert sb.world.close.tasks[done_id]["is_complete"] is True
    gone = sb.world.links.get(gone_id)
    assert gone is not None
    assert gone.sync_back_reported == "the ChartMogul task is gone"
    # Due again a day later: looked at (and reported) once more.
    sb.world.clock.now += syncback_link.SYNC_BACK_RECHECK_SECONDS
    assert sb.sync_back.run().deleted_in_chartmogul == [gone_id]


def test_each_candidate_is_decided_on_its_link_as_stored_now_not_as_listed() -> None:
    sb = make_sync_back_world()
    task_id, _ = sb.mirrored_task()
    sb.world.close.complete_task(task_id)  # the rep completes it in Close ...
    logged = len(sb.world.close.events) - 3
    real_iter = sb.world.chartmogul.iter_tasks

    def worker_applies_meanwhile(**filters: Any) -> Iterator[ChartMogulTask]:
        # ... after the pass read the links, the worker pushes the completion, then the list
        # shows the task completed, unlike the link as the pass read it.
        sb.deliver_close_events_since(logged)
        return real_iter(**filters)

    sb.world.chartmogul.iter_tasks = worker_applies_meanwhile  # type: ignore[method-assign]
    sb.world.chartmogul.reset_log()
    report = sb.sync_back.run()

    assert (report.candidates, report.noted, report.deferred, report.failures) == (1, 0, 0, [])


def test_a_spent_budget_stops_the_pass_before_any_candidate() -> None:
    sb = make_sync_back_world()
    _, uuid = sb.mirrored_task()
    sb.world.chartmogul.person_completes(uuid)

    report = sb.sync_back.run(Budget(0))

    assert (report.candidates, report.deferred, report.completions_written) == (1, 1, 0)
    assert sb.world.close.writes == []
