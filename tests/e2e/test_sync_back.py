"""Sync-back on the whole local stack: a CS person completes or reopens a mirrored task in the
ChartMogul simulator, and the reconciler writes it back to the Close simulator (or, with the
option off, does not).

The reconciler runs every second; "within one sync-back pass" is counted in reconciler runs,
not in seconds. Every wait polls a real condition with a deadline.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasksync_dev.local.stack import LocalStack
from tests.e2e.sandbox_stack import create_close_task, deliver, logged_event, mirrored, sandbox_environment, sims
from tests.support.local_runner import poll

PASSES_AFTER = 5


def _stack(directory: Path, *, sync_back: bool) -> LocalStack:
    environment = sandbox_environment(directory, RECONCILE_INTERVAL_SECONDS="1")
    if sync_back:
        environment["SYNC_COMPLETION_BACK"] = "true"
    return LocalStack(environment)


@pytest.fixture(scope="module")
def stack_on(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = _stack(tmp_path_factory.mktemp("sync-back-on"), sync_back=True)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _mirrored_task(stack: LocalStack) -> tuple[dict[str, Any], dict[str, Any]]:
    close, _ = sims(stack)
    text = f"Renewal call with Acme {uuid.uuid4().hex[:8]}"
    task = create_close_task(stack, text)
    assert deliver(stack, logged_event(close, task["id"], "created")).status_code == 202
    [mirror] = poll(lambda: mirrored(stack, text), what="the ChartMogul task")
    stack.wait_until_idle()
    return task, mirror


def _close_writes(stack: LocalStack, task_id: str) -> int:
    close, _ = sims(stack)
    return len(close.calls_to("PUT", rf"/task/{task_id}/$"))


def _chartmogul_calls(stack: LocalStack, task_uuid: str, since: int = 0) -> list[str]:
    """Methods of the ChartMogul calls on one task, from the ``since``-th recorded call on."""
    _, chartmogul = sims(stack)
    with chartmogul.lock:
        calls = list(chartmogul.calls[since:])
    return [c.method for c in calls if c.path.endswith(f"/v1/tasks/{task_uuid}")]


def _call_count(stack: LocalStack) -> int:
    _, chartmogul = sims(stack)
    with chartmogul.lock:
        return len(chartmogul.calls)


def _runs_after(stack: LocalStack, start: int, passes: int) -> None:
    poll(lambda: stack.reconcile_runs >= start + passes, what=f"{passes} more reconciler passes", timeout=60)


def _person_acts_then_quiet(stack: LocalStack, task_id: str, task_uuid: str, *, complete: bool) -> None:
    """A CS person acts; within one sync-back pass the Close task follows, written once; over the
    next 5 passes nothing more is written to Close, and ChartMogul sees at most one call for the
    task besides the sync-back's confirming GET (the echo aligning `completed_at`)."""
    close, chartmogul = sims(stack)
    writes_before, calls_before = _close_writes(stack, task_id), _call_count(stack)
    if complete:
        chartmogul.person_completes(task_uuid)
    else:
        chartmogul.person_reopens(task_uuid)
    runs_before = stack.reconcile_runs
    poll(lambda: close.tasks[task_id]["is_complete"] is complete, what="the Close task following ChartMogul")
    # The pass running when the person acted may have listed before the change: allow it + one.
    assert stack.reconcile_runs <= runs_before + 2
    _runs_after(stack, stack.reconcile_runs, PASSES_AFTER)
    stack.wait_until_idle()
    assert _close_writes(stack, task_id) == writes_before + 1, "not exactly one Close write"
    methods = _chartmogul_calls(stack, task_uuid, since=calls_before)
    assert methods[:1] == ["GET"], methods  # the candidate confirmed before acting
    assert len(methods[1:]) <= 1, f"more than aligning completed_at: {methods}"
    assert close.tasks[task_id]["is_complete"] is complete
    [mirror] = [t for t in chartmogul.live_tasks() if t["task_uuid"] == task_uuid]
    assert (mirror["completed_at"] is not None) is complete


def test_a_completion_and_a_reopening_in_chartmogul_reach_close_once(stack_on: LocalStack) -> None:
    task, mirror = _mirrored_task(stack_on)
    _person_acts_then_quiet(stack_on, task["id"], mirror["task_uuid"], complete=True)
    _person_acts_then_quiet(stack_on, task["id"], mirror["task_uuid"], complete=False)
    assert _close_writes(stack_on, task["id"]) == 2


def test_a_later_close_change_wins_over_an_earlier_chartmogul_completion(stack_on: LocalStack) -> None:
    close, chartmogul = sims(stack_on)
    task, mirror = _mirrored_task(stack_on)
    with close.lock, chartmogul.lock:
        # CS completes, then (before any pass can look) the rep completes and reopens in Close.
        chartmogul.person_completes(mirror["task_uuid"])
        close.complete_task(task["id"])
        close.reopen_task(task["id"])
    runs = stack_on.reconcile_runs
    poll(
        lambda: (
            next(t for t in chartmogul.live_tasks() if t["task_uuid"] == mirror["task_uuid"])["completed_at"] is None
        ),
        what="ChartMogul following the later Close change",
    )
    _runs_after(stack_on, runs, 2)
    stack_on.wait_until_idle()
    assert _close_writes(stack_on, task["id"]) == 0
    assert close.tasks[task["id"]]["is_complete"] is False


def test_with_the_option_off_nothing_is_written_to_close(tmp_path: Path, stack_on: LocalStack) -> None:
    stack_on.stop()  # one LocalStack per process at a time; the module's tests above are done
    with _stack(tmp_path, sync_back=False) as stack:
        close, chartmogul = sims(stack)
        task, mirror = _mirrored_task(stack)
        chartmogul.person_completes(mirror["task_uuid"])
        _runs_after(stack, stack.reconcile_runs, PASSES_AFTER)
        stack.wait_until_idle()
        assert close.calls_to("PUT", r"/task/") == []
        assert close.tasks[task["id"]]["is_complete"] is False
