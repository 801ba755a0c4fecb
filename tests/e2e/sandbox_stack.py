"""A sandbox local stack for the e2e tests: its environment, its simulators, a rep's task, a signed
delivery to its receiver, and what ChartMogul then holds.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from tasksync_dev.local.options import settings_variables
from tasksync_dev.local.stack import LocalStack
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
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


def clean_environment(local_dir: Path) -> dict[str, str]:
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
