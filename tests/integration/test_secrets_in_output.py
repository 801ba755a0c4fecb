"""No API key or signature key in what the three handlers print: Powertools JSON logs, their
exceptions, and the EMF metric blobs (metrics are on here, as in Lambda).

The handlers run against moto server, DynamoDB Local and the simulators (the `stack` fixture of
handler_harness), through success, ChartMogul failures and retries, and a reconcile pass.
"""

from __future__ import annotations

import json

import pytest

from tasksync_dev.sandbox._server import FaultPlan
from tests.integration.handler_harness import (
    SANDBOX_SIGNATURE_KEY,
    Stack,
    stack,  # noqa: F401 - the fixture, shared with the handler tests
)
from tests.support.handlers import FakeLambdaContext, load_event, load_handler
from tests.support.log_capture import LogTap, leaked


def test_handlers_never_print_a_key(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    secrets = [stack.close.api_key, stack.chartmogul.api_key, SANDBOX_SIGNATURE_KEY]
    tap = LogTap().attach()
    try:
        # Loaded under capture, so their loggers and metrics print into it.
        receiver, worker, reconciler = (load_handler(name) for name in ("receiver", "worker", "reconciler"))
        tap.attach()  # the handlers' own loggers exist now
        answers = [
            receiver.lambda_handler(load_event(name), FakeLambdaContext())
            for name in (
                "webhook-task-created.json",
                "webhook-bad-signature.json",
                "webhook-ignored-event.json",
                "webhook-task-completed.json",
            )
        ]
        # ChartMogul down: every write fails, the worker logs each retry with its error.
        stack.chartmogul.inject(FaultPlan(error_rate=1.0, seed=3))
        messages = stack.receive()
        failing = stack.run_worker(worker, messages)
        stack.chartmogul.clear_faults()
        for message in messages:  # their backoff is over: Lambda would deliver them again now
            stack.sqs.change_message_visibility(
                QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        applied = stack.run_worker(worker, stack.receive())
        report = reconciler.lambda_handler(load_event("schedule-reconcile.json"), FakeLambdaContext())
        # Close refuses the key: the reconciler's error path.
        stack.close.api_key = "rotated-" + stack.close.api_key
        # Each phase is isolated: the refusal is reported in the run, not raised out of it.
        refused = load_handler("reconciler").lambda_handler(load_event("schedule-reconcile.json"), FakeLambdaContext())
    finally:
        tap.detach()
    printed = capsys.readouterr()
    text = printed.out + printed.err + tap.text + json.dumps([answers, failing, applied, report])
    text += json.dumps(refused)
    assert [a["statusCode"] for a in answers] == [202, 401, 200, 202]
    assert failing["batchItemFailures"], "ChartMogul's outage should have failed the records"
    assert applied == {"batchItemFailures": []}
    assert stack.chartmogul.live_tasks(), "the retry should have reached ChartMogul"
    assert '"_aws"' in text  # the EMF metric blobs were printed, and scanned
    assert "WebhooksRejected" in text
    assert any("401" in failure for failure in refused["failures"])
    assert leaked(text, secrets) == []
