"""The Close simulator's webhook deliveries for writes made through its API.

Close sends a webhook for every change, whoever made it; the sync-back's `PUT /task/{id}/`
must come back to the receiver like a rep's edit, so that a test sees the echo and checks it
causes no second write. Deliveries go to loopback URLs only (the local stack's receiver), each
from its own short-lived thread, so that the simulator's lock is never held over an HTTP call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

if TYPE_CHECKING:
    from tasksync_dev.sandbox.close import CloseSimulator

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DELIVERY_TIMEOUT_SECONDS = 10.0


def loopback_sender(close: CloseSimulator) -> Callable[[list[dict[str, Any]]], None]:
    """A `CloseSimulator.webhook_sender` that POSTs signed deliveries to loopback subscriptions."""

    def deliver(events: list[dict[str, Any]]) -> None:
        for subscription_id, subscription in close.subscriptions.items():
            url = str(subscription.get("url", ""))
            if subscription.get("status") != "active" or urlsplit(url).hostname not in LOOPBACK_HOSTS:
                continue
            selectors = {(s["object_type"], s["action"]) for s in subscription.get("events", [])}
            for event in events:
                if (event["object_type"], event["action"]) in selectors:
                    body, headers = close.signed_delivery(event, subscription_id)
                    threading.Thread(target=_post, args=(url, body, headers), name="close-webhook", daemon=True).start()

    return deliver


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    # A failed delivery is dropped: Close would retry, and the reconciler's catch-up delivers it.
    with contextlib.suppress(requests.RequestException):
        requests.post(url, data=body, headers=headers, timeout=DELIVERY_TIMEOUT_SECONDS)
