"""What the worker's log says is what happened: a repeated delivery is a DEBUG "duplicate event
skipped" line without call counts (no call was made), an ignored event says "ignored"."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.integration import handler_harness
from tests.integration.handler_harness import Stack
from tests.support.handlers import FakeLambdaContext, load_event, load_handler

stack = handler_harness.stack  # the handler tests' fixture: DynamoDB Local, moto and the simulators


def _records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The worker's per-event records (those with an event id), as level, message and extras."""
    found = [
        {**vars(record), "level": record.levelname, "message": record.getMessage()}
        for record in caplog.records
        if getattr(record, "event_id", None)
    ]
    caplog.clear()
    return found


def test_a_repeated_delivery_is_logged_as_a_skipped_duplicate_at_debug(
    stack: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)
    worker = load_handler("worker")
    # An earlier test may have set up the same named logger at INFO; Powertools keeps its level.
    caplog.set_level(logging.DEBUG, logger=worker.logger.name)
    event = load_event("sqs-task-created.json")
    assert worker.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    first = _records(caplog)
    assert [(r["level"], r["message"], r["action"]) for r in first] == [("INFO", "event applied", "created")]
    assert first[0]["chartmogul_calls"] > 0

    assert worker.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    again = _records(caplog)
    assert [(r["level"], r["message"]) for r in again] == [("DEBUG", "duplicate event skipped (already applied)")]
    assert again[0]["applied_as"] == "created"
    assert "chartmogul_calls" not in again[0]
    assert "close_calls" not in again[0]


def test_an_ignored_event_is_logged_as_ignored(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    worker = load_handler("worker")
    event = load_event("sqs-task-created.json")
    body = json.loads(event["Records"][0]["body"])
    body.update(id="ev_ignored_type", object_type="task.missed_call")  # not in TASK_TYPES (lead)
    body["data"]["_type"] = "missed_call"
    event["Records"][0]["body"] = json.dumps(body)
    assert worker.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    lines = _records(caplog)
    assert [(r["message"], r["action"]) for r in lines] == [("event ignored", "ignored")]


def test_a_record_that_fails_unexpectedly_is_logged_as_an_error_with_its_event(
    stack: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not a retry the worker planned (no backoff, no settle wait): the record goes back after the
    # queue's visibility timeout and at last to the DLQ, so the log must say why, at once.
    worker = load_handler("worker")
    engine = worker.get_worker().engine

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a defect nobody foresaw")

    monkeypatch.setattr(engine, "apply", broken)
    event = load_event("sqs-task-created.json")
    answer = worker.lambda_handler(event, FakeLambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    lines = _records(caplog)
    assert [(r["level"], r["message"], r["error_type"]) for r in lines] == [("ERROR", "event failed", "RuntimeError")]
    assert lines[0]["exc_info"] is not None
    assert "a defect nobody foresaw" in lines[0]["error"]
