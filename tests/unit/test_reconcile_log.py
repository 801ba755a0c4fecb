"""The reconciler's one line per pass: INFO only when the pass found or did something, and short;
a quiet pass is DEBUG (CloudWatch Logs bills each line, and locally it ran every 30 seconds)."""

from __future__ import annotations

import logging

import pytest
from aws_lambda_powertools import Logger

from tasksync.observability import log_reconcile_pass
from tasksync.reconciler import ReconcileReport

QUIET_CHECKPOINTS = {f"task.lead/{action}": "2026-12-03T08:00:00+00:00" for action in ("created", "updated")}


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> Logger:
    caplog.set_level(logging.DEBUG)
    return Logger(service="reconcile-log-test", level="DEBUG")


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "reconcile-log-test"]


def test_a_pass_that_found_nothing_is_debug(logger: Logger, caplog: pytest.LogCaptureFixture) -> None:
    log_reconcile_pass(logger, ReconcileReport(events_seen=4, events_already_applied=4, checkpoints=QUIET_CHECKPOINTS))
    assert _lines(caplog) == [("DEBUG", "reconcile pass: nothing to do (4 events already applied or queued)")]


def test_a_pass_that_did_something_is_one_short_info_line(logger: Logger, caplog: pytest.LogCaptureFixture) -> None:
    report = ReconcileReport(
        events_seen=9, events_enqueued=2, parked_retried=1, failures=["x"], checkpoints=QUIET_CHECKPOINTS
    )
    log_reconcile_pass(logger, report)
    [(level, message)] = _lines(caplog)
    assert level == "INFO"
    assert message == "reconcile pass: 2 events enqueued, 1 parked task retried, 1 failure"
    [record] = [r for r in caplog.records if r.name == "reconcile-log-test"]
    assert not hasattr(record, "checkpoints")  # the long part: every subscribed pair's checkpoint
    assert (record.events_seen, record.events_already_applied, record.events_enqueued) == (9, 0, 2)


def test_a_skipped_pass_is_debug(logger: Logger, caplog: pytest.LogCaptureFixture) -> None:
    log_reconcile_pass(logger, ReconcileReport(skipped="another pass holds the lock"))
    assert _lines(caplog) == [("DEBUG", "reconcile pass skipped: another pass holds the lock")]
