"""Play a Close user and Close's webhook against a running sandbox stack.

    python -m tasksync_dev.local.sample                     # create a task on a demo lead
    python -m tasksync_dev.local.sample --complete task_... # complete it (or --reopen, --delete)
    python -m tasksync_dev.local.sample --curl              # print a curl command instead of posting
    python -m tasksync_dev.local.sample --lead umbrella     # a lead with no ChartMogul customer: it parks

Each run changes the task in the sandbox Close over its API, reads the events Close logged for
it, and delivers each as Close would: the webhook envelope, signed now with the subscription's
key. Signing at send time is the point: a curl command with a fixed `close-sig-timestamp` is
refused once it is older than SIGNATURE_TOLERANCE_SECONDS (300 s by default).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tasksync.logic.signature import sign
from tasksync_dev.local.state import LocalStackNotRunning, read_state, state_path

TIMEOUT = (3.05, 10.0)
# umbrella has no ChartMogul customer: its tasks park (see `tasksync --local parked`).
DEMO_LEADS = ("acme", "globex", "initech", "umbrella")
DEMO_REPS = ("alice", "bob")


class SampleError(RuntimeError):
    pass


class SandboxClose:
    """The few Close API calls a rep's actions need, against the sandbox simulator."""

    def __init__(self, api_url: str, api_key: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (api_key, "")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.api_url}{path}", timeout=TIMEOUT, **kwargs)
        if response.status_code >= 400:
            raise SampleError(f"Close answered {response.status_code} to {method} {path}: {response.text[:300]}")
        return response.json() if response.content else None

    def task(self, task_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/task/{task_id}/")
        return found

    def create_task(self, lead_id: str, text: str, assigned_to: str | None, date: str) -> dict[str, Any]:
        body = {"lead_id": lead_id, "text": text, "assigned_to": assigned_to, "date": date}
        created: dict[str, Any] = self._call("POST", "/task/", json=body)
        return created

    def update_task(self, task_id: str, **changes: Any) -> None:
        self._call("PUT", f"/task/{task_id}/", json=changes)

    def delete_task(self, task_id: str) -> None:
        self._call("DELETE", f"/task/{task_id}/")

    def task_events(self, task_id: str, task_type: str = "lead") -> list[dict[str, Any]]:
        """The task's events, oldest first (the log pages newest first)."""
        events: list[dict[str, Any]] = []
        params: dict[str, str] = {"object_type": f"task.{task_type}", "object_id": task_id}
        while True:
            page = self._call("GET", "/event/", params=params)
            events.extend(page["data"])
            if not page.get("cursor_next"):
                return list(reversed(events))
            params = {**params, "_cursor": page["cursor_next"]}


def signed_delivery(event: dict[str, Any], subscription_id: str, signature_key: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers Close would POST for ``event``, signed now."""
    body = json.dumps({"subscription_id": subscription_id, "event": event}).encode()
    timestamp = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "close-sig-timestamp": timestamp,
        "close-sig-hash": sign(signature_key, timestamp, body),
    }
    return body, headers


def curl_command(url: str, body: bytes, headers: dict[str, str]) -> str:
    """The body goes inline (shell-quoted), byte for byte as signed: no file is left behind."""
    parts = ["curl", "-sS", "-X", "POST", url]
    for name, value in headers.items():
        parts += ["-H", f"{name}: {value}"]
    parts += ["--data-binary", body.decode("utf-8")]
    return shlex.join(parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasksync_dev.local.sample", description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--complete", metavar="TASK_ID", help="complete this task")
    action.add_argument("--reopen", metavar="TASK_ID", help="reopen this completed task")
    action.add_argument("--delete", metavar="TASK_ID", help="delete this task")
    parser.add_argument("--lead", choices=DEMO_LEADS, default="acme", help="demo lead of a new task")
    parser.add_argument("--assignee", choices=DEMO_REPS, default="alice", help="demo rep of a new task")
    parser.add_argument("--text", default=None, help="text of a new task")
    parser.add_argument("--curl", action="store_true", help="print curl commands instead of posting")
    return parser


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        state = read_state(state_path())
    except LocalStackNotRunning as exc:
        print(exc, file=sys.stderr)
        return 2
    if state["mode"] != "sandbox":
        print("the stack talks to the real Close: create the task in Close itself", file=sys.stderr)
        return 2
    close = SandboxClose(state["close"]["api_url"], state["close"]["api_key"])
    ids: dict[str, str] = state["sandbox"]
    try:
        task_id = _act(close, args, ids)
        before = {event["id"] for event in close.task_events(task_id)} if not _is_create(args) else set()
        if not _is_create(args):
            _change(close, args, task_id)
        fresh = [event for event in close.task_events(task_id) if event["id"] not in before]
    except (SampleError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return _deliver(state, fresh, curl=args.curl)


def _is_create(args: argparse.Namespace) -> bool:
    return not (args.complete or args.reopen or args.delete)


def _act(close: SandboxClose, args: argparse.Namespace, ids: dict[str, str]) -> str:
    """The task to work on: a new one for a create, else the one named (checked to exist)."""
    if not _is_create(args):
        task_id: str = args.complete or args.reopen or args.delete
        close.task(task_id)
        return task_id
    due = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    text = args.text or f"Follow up with {args.lead.title()} ({datetime.now(UTC):%H:%M:%S})"
    task = close.create_task(ids[args.lead], text, ids[args.assignee], due)
    print(f"Close task {task['id']} created on {task['lead_name']} for {args.assignee}: {text!r}")
    created: str = task["id"]
    return created


def _change(close: SandboxClose, args: argparse.Namespace, task_id: str) -> None:
    if args.complete:
        close.update_task(task_id, is_complete=True)
        print(f"Close task {task_id} completed")
    elif args.reopen:
        close.update_task(task_id, is_complete=False)
        print(f"Close task {task_id} reopened")
    else:
        close.delete_task(task_id)
        print(f"Close task {task_id} deleted")


def _deliver(state: dict[str, Any], events: list[dict[str, Any]], *, curl: bool) -> int:
    webhook = state["webhook"]
    url = state["receiver_url"]
    failures = 0
    for event in events:
        body, headers = signed_delivery(event, webhook["subscription_id"], webhook["signature_key"])
        label = f"{event['object_type']} {event['action']} {event['id']}"
        if curl:
            print(f"# {label} (valid for SIGNATURE_TOLERANCE_SECONDS from now)\n{curl_command(url, body, headers)}")
            continue
        try:
            answer = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            print(f"error: could not post to {url}: {exc}", file=sys.stderr)
            return 1
        print(f"posted {label} -> {answer.status_code} {answer.text}")
        failures += answer.status_code >= 300
    if not curl:
        print("The runner logs a line for each; `make status` (or .venv/bin/tasksync --local status) shows the result.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run())
