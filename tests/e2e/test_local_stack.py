"""`make run`'s local stack, whole: real HTTP into the receiver, the SQS poller driving the worker,
the reconciler's schedule, DynamoDB Local, moto and the sandbox simulators.

Every wait polls a real condition (ChartMogul's tasks, the queue, the runner's output) with a
deadline; nothing sleeps in place of synchronisation.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tasksync.logic.signature import sign
from tasksync_dev.local.http_api import http_api_event
from tasksync_dev.local.options import settings_variables
from tasksync_dev.local.sqs_source import SqsEventSource, failed_message_ids
from tasksync_dev.local.stack import THREAD_PREFIX, LocalStack
from tasksync_dev.local.state import read_state
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import BASE_PATH as CLOSE_BASE_PATH
from tasksync_dev.sandbox.close import CloseSimulator
from tests.support.aws import Queues
from tests.support.local_runner import Runner, poll
from tests.support.template import REPO_ROOT


def sandbox_environment(local_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "PORT": "0",
        "TASKSYNC_LOCAL_DIR": str(local_dir),
        # The e2e suite runs where `make` installed DynamoDB Local: never fall back to moto silently.
        "TASKSYNC_LOCAL_DYNAMODB": "dynamodb-local",
        **extra,
    }


def sims(stack: LocalStack) -> tuple[CloseSimulator, ChartMogulSimulator]:
    assert stack.close_simulator is not None
    assert stack.chartmogul_simulator is not None
    return stack.close_simulator, stack.chartmogul_simulator


def create_close_task(stack: LocalStack, text: str) -> dict[str, Any]:
    """A rep creates a task in the sandbox Close (which logs its `created` event)."""
    close, _ = sims(stack)
    due = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    return close.create_task(
        lead_id=stack.sandbox_ids["acme"], text=text, assigned_to=stack.sandbox_ids["alice"], date=due
    )


def logged_event(close: CloseSimulator, task_id: str, action: str) -> dict[str, Any]:
    return next(e for e in reversed(close.events) if e["object_id"] == task_id and e["action"] == action)


def deliver(stack: LocalStack, event: dict[str, Any], *, timestamp: int | None = None) -> requests.Response:
    """POST the event to the receiver over HTTP, signed as Close signs it."""
    close, _ = sims(stack)
    assert stack.subscription_id is not None
    body, headers = close.signed_delivery(event, stack.subscription_id, timestamp=timestamp)
    return requests.post(stack.receiver_url, data=body, headers=headers, timeout=10)


def mirrored(stack: LocalStack | ChartMogulSimulator, text: str) -> list[dict[str, Any]]:
    """Live ChartMogul tasks whose details carry ``text``."""
    chartmogul = stack if isinstance(stack, ChartMogulSimulator) else sims(stack)[1]
    return [task for task in chartmogul.live_tasks() if text in task["task_details"]]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_signed_webhook_reaches_chartmogul_once_and_stop_ends_everything(tmp_path: Path) -> None:
    queue_url_before = os.environ.get("QUEUE_URL")
    # No reconcile pass after the first one: only the webhook path can create the task.
    stack = LocalStack(sandbox_environment(tmp_path, RECONCILE_INTERVAL_SECONDS="3600"))
    stack.start()
    try:
        close, chartmogul = sims(stack)
        ports = {
            stack.port,
            urlsplit(close.url).port,
            urlsplit(chartmogul.url).port,
            *(urlsplit(url).port for url in stack.endpoints.values()),
        }
        dynamodb_local = stack.dynamodb_process
        assert dynamodb_local is not None
        assert stack.dynamodb_engine == "dynamodb-local"
        threads = [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]
        assert {t.name for t in threads} == {THREAD_PREFIX + p for p in ("receiver", "worker", "reconciler")}
        state = read_state(tmp_path / "stack.json")
        assert state["receiver_url"] == stack.receiver_url
        assert state["queues"]["EventQueue"] == os.environ["QUEUE_URL"]

        elsewhere = requests.get(f"{stack.base_url}/webhooks/other", timeout=10)
        assert (elsewhere.status_code, elsewhere.json()) == (404, {"message": "Not Found"})

        text = f"Send Acme the renewal quote {uuid.uuid4().hex[:8]}"
        task = create_close_task(stack, text)
        created = logged_event(close, task["id"], "created")
        answer = deliver(stack, created)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"event_id": created["id"]}
        [first] = poll(lambda: mirrored(stack, text), what="the ChartMogul task")
        assert first["assignee"] == "alice@sales.example"

        # Close delivers at least once: the same bytes again, and a retry signed afresh.
        assert deliver(stack, created).status_code == 202
        assert deliver(stack, created, timestamp=int(time.time()) + 1).status_code == 202
        stack.wait_until_idle()
        assert [t["task_uuid"] for t in mirrored(stack, text)] == [first["task_uuid"]]
        assert len([c for c in chartmogul.calls_to("POST", r"^/v1/tasks$") if c.status == 201]) == 1
    finally:
        stack.stop()

    assert not [t for t in threads if t.is_alive()]
    assert dynamodb_local.poll() is not None
    assert not [port for port in ports if port and port_open(port)]
    assert not (tmp_path / "stack.json").exists()
    assert os.environ.get("QUEUE_URL") == queue_url_before


class TestRunningSandbox:
    """One stack shared by the tests below, reconciling every 2 seconds."""

    @pytest.fixture(scope="class")
    @classmethod
    def stack(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
        local = LocalStack(sandbox_environment(tmp_path_factory.mktemp("local-stack"), RECONCILE_INTERVAL_SECONDS="2"))
        local.start()
        try:
            yield local
        finally:
            local.stop()

    def test_a_flaky_chartmogul_is_retried_until_the_task_appears(self, stack: LocalStack) -> None:
        close, chartmogul = sims(stack)
        text = f"Call Acme about the invoice {uuid.uuid4().hex[:8]}"
        chartmogul.inject(FaultPlan(error_rate=1.0, methods=frozenset({"POST"}), seed=7))
        try:
            task = create_close_task(stack, text)
            assert deliver(stack, logged_event(close, task["id"], "created")).status_code == 202

            def refused_creates() -> int:
                posts = chartmogul.calls_to("POST", r"^/v1/tasks$")
                return len([c for c in posts if c.fault and c.fault.startswith("injected_5")])

            # Two refusals at least: the event came back for another attempt after its backoff.
            poll(lambda: refused_creates() >= 2, what="two refused creates")
        finally:
            chartmogul.clear_faults()
        poll(lambda: mirrored(stack, text), what="the ChartMogul task after the outage")
        stack.wait_until_idle()
        assert len(mirrored(stack, text)) == 1
        statuses = [c.status for c in chartmogul.calls_to("POST", r"^/v1/tasks$") if c.body and text in str(c.body)]
        assert statuses[-1] == 201
        assert all(status is not None and status >= 500 for status in statuses[:-1])

    def test_a_webhook_that_never_arrives_is_caught_up_by_the_reconciler(self, stack: LocalStack) -> None:
        requests_before = stack.webhook_requests
        text = f"Book the Acme onboarding call {uuid.uuid4().hex[:8]}"
        create_close_task(stack, text)  # Close logs the event; no webhook is posted
        [task] = poll(lambda: mirrored(stack, text), what="the reconciler's catch-up")
        assert task["assignee"] == "alice@sales.example"
        assert stack.webhook_requests == requests_before


def test_with_api_keys_it_talks_to_the_apis_it_is_given_and_writes_no_key(
    tmp_path: Path, close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator
) -> None:
    # The simulators stand in for the real APIs: the stack only knows their URLs and keys.
    ids = close_sim.seed_demo()
    chartmogul_sim.seed_demo()
    signature_key = secrets.token_hex(32)
    environment = sandbox_environment(
        tmp_path,
        TASKSYNC_LOCAL_DYNAMODB="moto",
        RECONCILE_INTERVAL_SECONDS="3600",
        CLOSE_API_KEY=close_sim.api_key,
        CLOSE_API_URL=f"{close_sim.url}{CLOSE_BASE_PATH}",
        CHARTMOGUL_API_KEY=chartmogul_sim.api_key,
        CHARTMOGUL_API_URL=f"{chartmogul_sim.url}/v1",
        CLOSE_WEBHOOK_SIGNATURE_KEY=signature_key,
    )
    with LocalStack(environment) as stack:
        assert (stack.options.mode, stack.close_simulator, stack.dynamodb_engine) == ("real", None, "moto")
        state = read_state(tmp_path / "stack.json")
        assert state["close"]["api_key"] is None
        assert state["chartmogul"]["api_key"] is None
        assert state["webhook"]["signature_key"] is None
        assert not {"CLOSE_API_KEY", "CHARTMOGUL_API_KEY", "CLOSE_WEBHOOK_SIGNATURE_KEY"} & set(state["environment"])
        assert close_sim.api_key not in json.dumps(state)

        text = f"Send Initech the contract {uuid.uuid4().hex[:8]}"
        due = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        task = close_sim.create_task(lead_id=ids["initech"], text=text, assigned_to=ids["bob"], date=due)
        # Any subscription id: CLOSE_WEBHOOK_SIGNATURE_KEY verifies every delivery locally.
        body = json.dumps({"subscription_id": "whsub_x", "event": logged_event(close_sim, task["id"], "created")})
        stamp = str(int(time.time()))
        headers = {"close-sig-timestamp": stamp, "close-sig-hash": sign(signature_key, stamp, body.encode())}
        answer = requests.post(stack.receiver_url, data=body, headers=headers, timeout=10)
        assert answer.status_code == 202, answer.text
        [mirror] = poll(lambda: mirrored(chartmogul_sim, text), what="the task in the given ChartMogul")
        assert mirror["assignee"] == "bob@sales.example"


# ---------------------------------------------------------------- Lambda's rules, piece by piece
def _event_source(
    queues: Queues, invoke: Callable[[dict[str, Any]], Any], errors: list[BaseException]
) -> SqsEventSource:
    return SqsEventSource(
        sqs=queues.client,
        queue_url=queues.events_url,
        invoke=invoke,
        region="us-east-1",
        on_batch_error=lambda exc, _size: errors.append(exc),
        on_poll_error=errors.append,
    )


def _queue_counts(queues: Queues) -> tuple[int, int]:
    """(visible, in flight) messages of the event queue."""
    attributes = queues.client.get_queue_attributes(
        QueueUrl=queues.events_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_the_poller_deletes_the_records_that_succeeded_and_leaves_the_failures(queues: Queues) -> None:
    for group in ("task_a", "task_b"):
        queues.client.send_message(
            QueueUrl=queues.events_url, MessageBody=group, MessageGroupId=group, MessageDeduplicationId=group
        )
    events: list[dict[str, Any]] = []

    def fail_task_a(event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "task_a"]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}

    errors: list[BaseException] = []
    assert _event_source(queues, fail_task_a, errors).poll_once() == 2
    assert errors == []
    records = {r["body"]: r for r in events[0]["Records"]}
    assert records["task_a"]["attributes"]["ApproximateReceiveCount"] == "1"
    assert records["task_a"]["attributes"]["MessageGroupId"] == "task_a"
    assert records["task_a"]["eventSource"] == "aws:sqs"
    assert records["task_a"]["eventSourceARN"].endswith(urlsplit(queues.events_url).path.rsplit("/", 1)[-1])
    assert _queue_counts(queues) == (0, 1)  # task_b deleted, task_a left for its retry


def test_when_the_handler_raises_the_whole_batch_comes_back(queues: Queues) -> None:
    # A short visibility timeout, so that the undeleted record is visible again within a second.
    queues.client.set_queue_attributes(QueueUrl=queues.events_url, Attributes={"VisibilityTimeout": "1"})
    queues.client.send_message(
        QueueUrl=queues.events_url, MessageBody="task_a", MessageGroupId="task_a", MessageDeduplicationId="a1"
    )
    errors: list[BaseException] = []

    def crash(event: dict[str, Any]) -> None:
        raise RuntimeError("worker crashed")

    assert _event_source(queues, crash, errors).poll_once() == 1
    assert [str(e) for e in errors] == ["worker crashed"]
    assert sum(_queue_counts(queues)) == 1  # not deleted

    receive_counts: list[str] = []

    def succeed(event: dict[str, Any]) -> dict[str, Any]:
        receive_counts.extend(r["attributes"]["ApproximateReceiveCount"] for r in event["Records"])
        return {"batchItemFailures": []}

    retry = _event_source(queues, succeed, errors)
    poll(retry.poll_once, what="the redelivery of the crashed batch", timeout=10)
    assert receive_counts == ["2"]
    assert _queue_counts(queues) == (0, 0)


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, {"m1"}),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"m1", "m2"}),
        ({"batchItemFailures": "m1"}, {"m1", "m2"}),
        ("not a dict", {"m1", "m2"}),
    ],
)
def test_batch_item_failures_follow_lambdas_rules(response: Any, failed: set[str]) -> None:
    assert failed_message_ids(response, {"m1", "m2"}) == failed


def test_a_request_becomes_an_http_api_v2_event() -> None:
    event = http_api_event(
        method="POST",
        target="/webhooks/close?x=1",
        headers=[("Content-Type", "application/octet-stream"), ("X-Seen", "a"), ("x-seen", "b")],
        body=b"\xff\x00binary",
        source_ip="127.0.0.1",
        host="127.0.0.1:3000",
        route_key="POST /webhooks/close",
    )
    assert event["version"] == "2.0"
    assert event["headers"] == {"content-type": "application/octet-stream", "x-seen": "a,b"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/webhooks/close"
    assert event["rawQueryString"] == "x=1"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00binary"
    text = http_api_event(
        method="POST",
        target="/webhooks/close",
        headers=[("content-type", "application/json")],
        body=b'{"a": 1}',
        source_ip="127.0.0.1",
        host="h",
        route_key="POST /webhooks/close",
    )
    assert (text["isBase64Encoded"], text["body"]) == (False, '{"a": 1}')


def _clean_environment(local_dir: Path) -> dict[str, str]:
    """This process's environment without the app's settings (a stack in this process may have set
    them, a developer's shell may hold API keys): the child must start in sandbox mode."""
    app_names = settings_variables()
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in app_names and not name.startswith(("AWS_ENDPOINT_URL", "POWERTOOLS_"))
    }
    pythonpath = [str(REPO_ROOT / "layers" / "tasksync"), environment.get("PYTHONPATH", "")]
    return {
        **environment,
        **sandbox_environment(local_dir),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p),
    }


def test_python_m_tasksync_dev_local_runs_until_sigint_and_exits_cleanly(tmp_path: Path) -> None:
    environment = _clean_environment(tmp_path)
    runner = Runner(environment)
    try:
        runner.wait_ready()
        state = read_state(tmp_path / "stack.json")
        assert state["pid"] == runner.pid
        assert state["mode"] == "sandbox"

        sample = subprocess.run(
            [sys.executable, "-m", "tasksync_dev.local.sample", "--lead", "globex", "--assignee", "bob"],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sample.returncode == 0, sample.stdout + sample.stderr
        assert "-> 202" in sample.stdout
        found = re.search(r"Close task (task_\w+) created", sample.stdout)
        assert found is not None, sample.stdout
        task_id = found.group(1)
        poll(
            lambda: (
                runner.seen("event applied")
                and any(task_id in line and "action=created" in line for line in runner.text().splitlines())
            ),
            what="the runner's 'event applied' line",
        )
        exit_code = runner.stop(signal.SIGINT)
    finally:
        runner.kill_if_running()
    text = runner.text()
    assert exit_code == 0, text
    assert "stopped" in text
    assert "Traceback" not in text
    assert not (tmp_path / "stack.json").exists()
    assert not port_open(int(urlsplit(state["endpoints"]["dynamodb"]).port or 0))
    assert not port_open(state["port"])
