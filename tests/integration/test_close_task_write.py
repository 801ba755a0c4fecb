"""`CloseClient.set_task_complete` against the Close simulator, which answers `PUT /task/{id}/` as
Close does: the task's `date_updated` moves on, the change is logged, and the webhook goes out
(to loopback subscriptions only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tasksync.dal.close_api import CloseClient
from tasksync.logic.signature import sign
from tasksync.models.close import CloseTask
from tasksync_dev.sandbox.close import BASE_PATH, CloseSimulator
from tasksync_dev.sandbox.webhooks import loopback_sender


class Receiver:
    """A loopback HTTP endpoint that keeps what it is sent."""

    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.bodies.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(202)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/close"
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-receiver", daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


def test_set_task_complete_puts_only_is_complete_and_close_sends_the_webhook(
    close_sim: CloseSimulator, receiver: Receiver
) -> None:
    ids = close_sim.seed_demo()
    task = close_sim.create_task(lead_id=ids["acme"], text="Renewal", assigned_to=ids["alice"], date="2026-12-24")
    local = close_sim.create_subscription(receiver.url, [{"object_type": "task.lead", "action": "updated"}])
    close_sim.create_subscription(
        "https://example.invalid/hook", [{"object_type": "task.lead", "action": "updated"}]
    )  # not loopback: never contacted
    close_sim.webhook_sender = loopback_sender(close_sim)
    client = CloseClient(base_url=f"{close_sim.url}{BASE_PATH}", api_key=close_sim.api_key)

    answer = client.set_task_complete(task["id"], True)

    assert answer.is_complete is True
    assert answer.date_updated > CloseTask.model_validate(task).date_updated
    [put] = close_sim.calls_to("PUT", rf"/task/{task['id']}/$")
    assert put.body == {"is_complete": True}
    assert [e["action"] for e in close_sim.events if e["object_id"] == task["id"]][-2:] == ["updated", "completed"]
    deadline = time.monotonic() + 10
    while not receiver.bodies and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a real condition (the delivery thread's POST), with a deadline
    [(body, headers)] = receiver.bodies
    delivered = json.loads(body)
    assert (delivered["subscription_id"], delivered["event"]["action"]) == (local["id"], "updated")
    assert delivered["event"]["data"]["is_complete"] is True
    assert headers["close-sig-hash"] == sign(local["signature_key"], headers["close-sig-timestamp"], body)
