"""`make run`'s local stack, whole: real HTTP into the receiver, the SQS poller driving the worker, the
reconciler's schedule, DynamoDB Local, moto and the sandbox simulators.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tasksync.logic.signature import sign
from tasksync_dev.local.stack import THREAD_PREFIX, LocalStack
from tasksync_dev.local.state import read_state
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import BASE_PATH as CLOSE_BASE_PATH
from tasksync_dev.sandbox.close import CloseSimulator
from tests.e2e.sandbox_stack import (
    clean_environment,
    create_close_task,
    deliver,
    logged_event,
    mirrored,
    port_open,
    sandbox_environment,
    sims,
)
from tests.support.local_runner import Runner, poll
from tests.support.template import REPO_ROOT


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


def test_python_m_tasksync_dev_local_runs_until_sigint_and_exits_cleanly(tmp_path: Path) -> None:
    environment = clean_environment(tmp_path)
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
