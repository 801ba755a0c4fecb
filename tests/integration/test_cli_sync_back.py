"""`tasksync status` shows the last sync-back pass and warns when Close refused a write."""

from __future__ import annotations

import json

from tasksync.dal.syncback_ledger import SyncBackLedger
from tasksync.logic.syncback_report import SyncBackReport
from tests.integration.cli_harness import Cli, LocalStack, cli, stack

__all__ = ["cli", "stack"]  # the fixtures, shared with the CLI's own tests


def test_status_shows_the_last_sync_back_pass_and_a_key_that_cannot_write(stack: LocalStack, cli: Cli) -> None:
    before = cli("--local", "status")
    assert "sync-back: no pass yet" in before.out

    SyncBackLedger(stack.tables.client, stack.tables.state).record(
        SyncBackReport(
            started_at="2026-12-03T09:00:00Z",
            checked=12,
            completions_written=2,
            reopenings_written=1,
            conflicts=1,
            deleted_in_chartmogul=["task_gone"],
            close_write_refused="Close refused the write (HTTP 403): the key cannot write",
        )
    )
    text = cli("--local", "status")
    assert text.code == 0
    assert (
        "last sync-back pass: 2026-12-03T09:00:00Z: 12 checked, 2 completions and 1 reopenings written back,"
        in text.out
    )
    assert "1 conflicts" in text.out
    assert "deleted in ChartMogul (Close unchanged): task_gone" in text.out
    assert "WARNING: Close refused the write (HTTP 403)" in text.out
    report = json.loads(cli("--local", "status", "--json").out)
    assert report["sync_back"]["completions_written"] == 2
