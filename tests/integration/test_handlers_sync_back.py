"""The reconciler handler with SYNC_COMPLETION_BACK: the pass's report, metrics and log lines."""

from __future__ import annotations

import pytest

from tasksync_dev.local.lambda_runtime import LocalLambdaContext
from tests.integration.handler_harness import F1_LEAD, F1_USER, Stack, stack
from tests.support.handlers import lambda_context, load_event, load_handler

__all__ = ["stack"]  # the fixture, shared with the handlers' own tests


def _mirror(stack: Stack) -> str:
    task = stack.close.create_task(lead_id=F1_LEAD, text="ticked off by CS", assigned_to=F1_USER, date="2025-03-01")
    load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), lambda_context())
    stack.run_worker(load_handler("worker"), stack.receive())
    [mirrored] = stack.chartmogul.live_tasks()
    stack.chartmogul.person_completes(mirrored["task_uuid"])
    return str(task["id"])


@pytest.mark.parametrize("enabled", [False, True])
def test_the_reconciler_writes_a_chartmogul_completion_back_only_when_enabled(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    enabled: bool,
) -> None:
    monkeypatch.setenv("SYNC_COMPLETION_BACK", "true" if enabled else "false")
    task_id = _mirror(stack)
    capsys.readouterr()
    caplog.clear()

    report = load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), lambda_context())

    printed = capsys.readouterr().out
    assert stack.close.tasks[task_id]["is_complete"] is enabled
    if not enabled:
        assert report["sync_back"] is None
        assert stack.close.calls_to("PUT", r"/task/") == []
        assert "SyncBack" not in printed
        return
    assert report["sync_back"]["completions_written"] == 1
    [line] = [r for r in caplog.records if r.getMessage() == "completion synced back"]
    assert (line.__dict__["close_task_id"], line.__dict__["target"], line.__dict__["complete"]) == (
        task_id,
        "close",
        True,
    )
    assert '"SyncBackCompletions"' in printed  # the EMF metrics blob


def test_a_pass_with_no_time_left_leaves_the_sync_back_candidates_for_the_next(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_COMPLETION_BACK", "true")
    task_id = _mirror(stack)
    spent = LocalLambdaContext(function_name="tasksync-test", memory_limit_in_mb=256, timeout_seconds=0.0)

    report = load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), spent)

    assert (report["sync_back"]["candidates"], report["sync_back"]["deferred"]) == (1, 1)
    assert stack.close.tasks[task_id]["is_complete"] is False
    assert stack.close.calls_to("PUT", r"/task/") == []
