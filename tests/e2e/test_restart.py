"""`make run` with the real APIs keeps its state: a restart makes no ChartMogul write.

The simulators stand in for a customer's real Close and ChartMogul and outlive the runner, as the
real ones do; the runner (`python -m tasksync_dev.local`) only knows their URLs and keys. It mirrors
the tasks, is stopped with SIGINT and started again; then killed with SIGKILL, which leaves
DynamoDB Local and moto running, and started again, which stops them. After each start the
reconciler replays Close's event log (the queue is rebuilt empty) and must find every event
already applied: ChartMogul's write count does not move.

Every wait polls a real condition with a deadline: the runner's output, the reconciler's
checkpoints and the queue depth as `tasksync --local status` reports them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tasksync_dev.cli.stack import TargetChoice, open_stack
from tasksync_dev.cli.status import collect
from tasksync_dev.local.child_process import stop_orphans
from tasksync_dev.local.simulators import SANDBOX_ASSIGNEE_MAP, SANDBOX_DEFAULT_ASSIGNEE
from tasksync_dev.local.state import read_state
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import BASE_PATH as CLOSE_BASE_PATH
from tasksync_dev.sandbox.close import CloseSimulator
from tests.e2e.sandbox_stack import clean_environment
from tests.support.local_runner import Runner, poll
from tests.support.template import REPO_ROOT

TASKS = 3
WRITES = frozenset({"POST", "PATCH", "DELETE"})


def _environment(
    local_dir: Path, close: CloseSimulator, chartmogul: ChartMogulSimulator, ds_uuid: str
) -> dict[str, str]:
    return {
        **clean_environment(local_dir),
        "CLOSE_API_KEY": close.api_key,
        "CLOSE_API_URL": f"{close.url}{CLOSE_BASE_PATH}",
        "CHARTMOGUL_API_KEY": chartmogul.api_key,
        "CHARTMOGUL_API_URL": f"{chartmogul.url}/v1",
        "CLOSE_WEBHOOK_SIGNATURE_KEY": secrets.token_hex(32),
        "ASSIGNEE_MAP": SANDBOX_ASSIGNEE_MAP,
        "DEFAULT_ASSIGNEE": SANDBOX_DEFAULT_ASSIGNEE,
        "CHARTMOGUL_DATA_SOURCE_UUID": ds_uuid,
        "RECONCILE_INTERVAL_SECONDS": "1",
    }


def _writes(chartmogul: ChartMogulSimulator) -> int:
    return sum(len(chartmogul.calls_to(method, r"^/v1/tasks")) for method in WRITES)


def _status(environment: dict[str, str]) -> dict[str, Any]:
    """What `tasksync --local status --json` prints for the running stack."""
    stack = open_stack(TargetChoice(local=True), environment)
    try:
        return collect(stack)
    finally:
        stack.shutdown()


def _settled_after(environment: dict[str, str], moment: datetime) -> dict[str, Any] | None:
    """The status once a whole reconcile pass began after ``moment`` and the queue is empty."""
    report = _status(environment)
    checkpoints = [datetime.fromisoformat(value) for value in report["checkpoints"].values()]
    if not checkpoints or min(checkpoints) <= moment:
        return None
    if report["queue"] != {"waiting": 0, "in_flight": 0}:
        return None
    return report


def _settle(environment: dict[str, str]) -> dict[str, Any]:
    """Two whole reconcile passes after now, each followed by an empty queue: whatever the first
    pass enqueued has been worked off when the second one finds the queue empty again."""
    now = datetime.now(UTC)
    first = poll(lambda: _settled_after(environment, now), what="a reconcile pass")
    moment = max(datetime.fromisoformat(value) for value in first["checkpoints"].values())
    return poll(lambda: _settled_after(environment, moment), what="a second reconcile pass")


def _child_pids(local_dir: Path) -> dict[str, int]:
    return {
        path.stem: int(json.loads(path.read_text(encoding="utf-8"))["pid"])
        for path in sorted((local_dir / "pids").glob("*.pid"))
    }


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed runner's children may wait for a reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def runners(tmp_path: Path) -> Iterator[list[Runner]]:
    """The runners a test starts; any still running at the end is killed, and its children too."""
    started: list[Runner] = []
    yield started
    for runner in started:
        runner.kill_if_running()
    stop_orphans(tmp_path / "pids")


def test_a_restart_after_sigint_or_sigkill_makes_no_chartmogul_write(
    tmp_path: Path, close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator, runners: list[Runner]
) -> None:
    ids = close_sim.seed_demo()
    ds_uuid = chartmogul_sim.seed_demo()["data_source_uuid"]
    due = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    texts = [f"Restart check {n} {secrets.token_hex(4)}" for n in range(TASKS)]
    for text, lead in zip(texts, ("acme", "globex", "initech"), strict=True):
        close_sim.create_task(lead_id=ids[lead], text=text, assigned_to=ids["alice"], date=due)
    environment = _environment(tmp_path, close_sim, chartmogul_sim, ds_uuid)

    # 1. The first start mirrors the tasks from Close's event log.
    first = Runner(environment)
    runners.append(first)
    first.wait_ready()
    poll(
        lambda: all(any(t in task["task_details"] for task in chartmogul_sim.live_tasks()) for t in texts),
        what="the three tasks in ChartMogul",
    )
    settled = _settle(environment)
    assert settled["tasks"]["linked"] == TASKS
    assert first.stop(signal.SIGINT) == 0, first.text()
    writes = _writes(chartmogul_sim)
    assert writes == TASKS  # one create each, nothing else

    # 2. Restart after SIGINT: the kept links and idempotency records answer every replayed event.
    second = Runner(environment)
    runners.append(second)
    second.wait_ready()
    assert _settle(environment)["tasks"]["linked"] == TASKS
    assert _writes(chartmogul_sim) == writes, "a restart after SIGINT wrote to ChartMogul"
    assert "kept in" in second.text()

    # 3. SIGKILL: the runner cannot stop its children; they keep running.
    orphans = _child_pids(tmp_path)
    assert set(orphans) == {"dynamodb-local", "moto-server"}
    assert second.stop(signal.SIGKILL) == -signal.SIGKILL
    assert all(_running(pid) for pid in orphans.values())

    # 4. The next start stops them first, and still writes nothing.
    third = Runner(environment)
    runners.append(third)
    third.wait_ready()
    assert not any(_running(pid) for pid in orphans.values())
    for name, pid in orphans.items():
        assert f"(pid {pid}), left running by a local stack that was killed" in third.text(), name
    assert _settle(environment)["tasks"]["linked"] == TASKS
    assert _writes(chartmogul_sim) == writes, "a restart after SIGKILL wrote to ChartMogul"
    assert third.stop(signal.SIGINT) == 0, third.text()
    assert "Traceback" not in first.text() + second.text() + third.text()
    assert _child_pids(tmp_path) == {}


def _printed_command(banner: str, marker: str) -> list[str]:
    """The command on the banner line that contains ``marker``, split as a shell would."""
    line = next(line for line in banner.splitlines() if marker in line)
    return shlex.split(line.split("  ", 2)[1] if line.startswith("  ") else line)


def _sandbox_tasks(local_dir: Path) -> list[dict[str, Any]]:
    """Every live task in the running stack's sandbox ChartMogul, over its API."""
    chartmogul = read_state(local_dir / "stack.json")["chartmogul"]
    answer = requests.get(
        f"{chartmogul['api_url']}/tasks", auth=(chartmogul["api_key"], ""), params={"per_page": 200}, timeout=10
    )
    answer.raise_for_status()
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


def test_the_banners_commands_work_as_printed_and_the_sandbox_resumes_after_a_restart(
    tmp_path: Path, runners: list[Runner]
) -> None:
    environment = {**clean_environment(tmp_path), "RECONCILE_INTERVAL_SECONDS": "1"}
    runner = Runner(environment)
    runners.append(runner)
    runner.wait_ready()
    banner = runner.text()
    assert "state       kept in" in banner

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=120, check=False
        )

    sample = _printed_command(banner, "-m tasksync_dev.local.sample")
    status = _printed_command(banner, "--local status")
    parked = _printed_command(banner, "--local parked")
    assert sample[0] == status[0].replace("tasksync", "python") == ".venv/bin/python"

    # A task on a lead no ChartMogul customer matches parks; one on a matched lead is mirrored.
    posted = run([*sample, "--lead", "umbrella"])
    assert posted.returncode == 0, posted.stdout + posted.stderr
    parked_id = re.search(r"Close task (task_\w+) created", posted.stdout)
    assert parked_id is not None, posted.stdout
    poll(lambda: parked_id.group(1) in run(parked).stdout, what="the umbrella task among the parked ones")
    mirrored = run(sample)
    assert mirrored.returncode == 0, mirrored.stdout + mirrored.stderr
    linked_id = re.search(r"Close task (task_\w+) created", mirrored.stdout)
    assert linked_id is not None, mirrored.stdout
    _settle(environment)
    listed = run(status)
    assert listed.returncode == 0, listed.stderr
    [parked_row] = [line for line in listed.stdout.splitlines() if line.startswith(parked_id.group(1))]
    assert parked_row.split()[1:3] == ["-", "parked"]
    assert "(parked: " in parked_row
    [linked_row] = [line for line in listed.stdout.splitlines() if line.startswith(linked_id.group(1))]
    assert linked_row.split()[2] == "linked"
    tasks_before = _sandbox_tasks(tmp_path)
    assert len(tasks_before) == 1
    assert runner.stop(signal.SIGINT) == 0

    # `make run` again: the sandbox and its tables resume; nothing is mirrored a second time.
    again = Runner(environment)
    runners.append(again)
    again.wait_ready()
    _settle(environment)
    assert _sandbox_tasks(tmp_path) == tasks_before
    resumed = run(status).stdout
    assert linked_row in resumed
    assert parked_id.group(1) in resumed
    assert again.stop(signal.SIGINT) == 0
