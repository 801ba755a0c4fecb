"""Where a running local stack says how to reach it: `.local/stack.json`.

`make run` writes the file once everything answers and removes it on a clean shutdown. The
operator CLI (`tasksync ... --local`) and `python -m tasksync_dev.local.sample` read it. The file
holds endpoints, resource names, the simulators' URLs and, in sandbox mode only, the sandbox
keys (made up for this run); a real API key is never written to it.

Layout (version 1), every key always present:
    version, pid, mode ("sandbox" | "real"), started_at (ISO 8601), region, port, receiver_url,
    dynamodb_engine ("dynamodb-local" | "moto"), kept_tables (true when a restart finds the tables),
    endpoints {dynamodb, sqs, secretsmanager},
    tables {<logical id>: name}, queues {<logical id>: url}, secrets {<logical id>: arn},
    close {api_url, api_key | null, simulator_url | null},
    chartmogul {api_url, api_key | null, simulator_url | null},
    webhook {subscription_id | null, signature_key | null},
    sandbox {<short name>: id} (seeded demo ids; empty with real APIs),
    environment {NAME: value}: what the app runs with, minus real keys; merge it into os.environ
        (after the caller's own CLOSE_API_KEY / CHARTMOGUL_API_KEY) to act on the local stack.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasksync.config import SyncSettings
from tasksync_dev.local.template import REPO_ROOT

if TYPE_CHECKING:
    from tasksync_dev.local.stack import LocalStack

STATE_FILE_NAME = "stack.json"
STATE_VERSION = 1
LOCAL_DIR_VARIABLE = "TASKSYNC_LOCAL_DIR"


class LocalStackNotRunning(RuntimeError):
    """No state file: `make run` is not running (or runs with another TASKSYNC_LOCAL_DIR)."""


def local_dir(environ: Mapping[str, str] | None = None) -> Path:
    """TASKSYNC_LOCAL_DIR, else `.local/` in the checkout."""
    environ = os.environ if environ is None else environ
    configured = environ.get(LOCAL_DIR_VARIABLE, "").strip()
    return Path(configured).expanduser() if configured else REPO_ROOT / ".local"


def state_path(environ: Mapping[str, str] | None = None) -> Path:
    return local_dir(environ) / STATE_FILE_NAME


def describe(stack: LocalStack) -> dict[str, Any]:
    """The layout above, filled in from a running stack; real API keys are left out."""
    sandbox = stack.options.mode == "sandbox"
    settings = SyncSettings.from_env(stack.environment)
    shared = {
        name: value
        for name, value in stack.environment.items()
        if sandbox or name not in ("CLOSE_API_KEY", "CHARTMOGUL_API_KEY", "CLOSE_WEBHOOK_SIGNATURE_KEY")
    }
    return {
        "version": STATE_VERSION,
        "pid": os.getpid(),
        "mode": stack.options.mode,
        "started_at": (stack.started_at or datetime.now(UTC)).isoformat(),
        "region": stack.options.region,
        "port": stack.port,
        "receiver_url": stack.receiver_url,
        "dynamodb_engine": stack.dynamodb_engine,
        "kept_tables": stack.persistence.keeps_tables,
        "endpoints": dict(stack.endpoints),
        "tables": dict(stack.tables),
        "queues": dict(stack.queues),
        "secrets": dict(stack.secret_arns),
        "close": {
            "api_url": settings.close_api_url,
            "api_key": stack.close_simulator.api_key if stack.close_simulator else None,
            "simulator_url": stack.close_simulator.url if stack.close_simulator else None,
        },
        "chartmogul": {
            "api_url": settings.chartmogul_api_url,
            "api_key": stack.chartmogul_simulator.api_key if stack.chartmogul_simulator else None,
            "simulator_url": stack.chartmogul_simulator.url if stack.chartmogul_simulator else None,
        },
        "webhook": {
            "subscription_id": stack.subscription_id,
            "signature_key": stack.signature_key,
        },
        "sandbox": dict(stack.sandbox_ids),
        "environment": shared,
    }


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write atomically (readers never see half a file), readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(partial, path)


def read_state(path: Path | None = None) -> dict[str, Any]:
    """The running stack's state; raises LocalStackNotRunning when there is none."""
    path = path or state_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LocalStackNotRunning(f"no local stack is running ({path} not found): start one with `make run`") from None
    except ValueError as exc:
        raise LocalStackNotRunning(f"{path} is not a local stack state file: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise LocalStackNotRunning(f"{path} has an unknown layout; restart `make run`")
    return data


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def other_owner(path: Path) -> int | None:
    """The pid of another live process that wrote the file (a second stack must not share it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        pid = int(json.loads(text).get("pid", 0))
    except (ValueError, TypeError, AttributeError):
        return None
    if pid and pid != os.getpid() and process_alive(pid):
        return pid
    return None


def remove_state(path: Path, *, owner_pid: int) -> None:
    """Remove the file if this process wrote it (never another running stack's file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and data.get("pid") == owner_pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
