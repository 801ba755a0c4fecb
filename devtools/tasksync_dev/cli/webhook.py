"""`tasksync webhook ...`: the Close webhook subscription and its signature key.

The subscriptions this stack owns are the ones whose keys are in its signature-keys secret:
the receiver can verify deliveries of those only. The key goes from Close's answer straight
into the secret; we print subscription ids, never keys.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from typing import Any

from botocore.exceptions import ClientError

from tasksync.errors import ApiError, NotFound, PermanentApiError, SignatureKeysUnavailable
from tasksync.models.close import CloseWebhookSubscription
from tasksync.reconciler import subscribed_pairs
from tasksync_dev.cli.output import CommandFailed, UsageError, one_line, print_json, print_table
from tasksync_dev.cli.stack import Stack

# Close's 400 when an active subscription to the same URL exists (docs/upstream-apis.md,
# "Close webhook subscriptions": the trigger is not documented, the message and its whsub_ id were observed).
DUPLICATE_MARKER = "duplicate active subscription"
_SUBSCRIPTION_ID = re.compile(r"whsub_[A-Za-z0-9]+")


def choose_subscription(stack: Stack, requested: str | None) -> str:
    """The subscription a command acts on: ``--id``, or the only one the stack has."""
    if requested:
        return requested
    ids = stack.signature_keys.subscription_ids()
    if not ids:
        raise UsageError("no webhook subscription is registered for this stack (run `tasksync webhook register`)")
    if len(ids) > 1:
        raise UsageError(f"{len(ids)} webhook subscriptions ({', '.join(ids)}): choose one with --id")
    return ids[0]


def register(stack: Stack, args: argparse.Namespace) -> int:
    secret = stack.signature_keys
    url = args.url or stack.target.webhook_url
    if not url:
        raise UsageError("no webhook URL: pass --url (the stack has no WebhookUrl output)")
    events = [
        {"object_type": object_type, "action": action}
        for object_type, action in subscribed_pairs(stack.settings.task_types)
    ]
    try:
        subscription = stack.close.create_webhook(url=url, events=events)
    except PermanentApiError as exc:
        if exc.status == 400 and DUPLICATE_MARKER in exc.body.lower():
            found = _SUBSCRIPTION_ID.search(exc.body)
            existing = f" ({found.group(0)})" if found else ""
            raise UsageError(
                f"Close already has an active subscription for {url}{existing}: see `tasksync webhook status`, "
                "or remove it with `tasksync webhook delete --id ...` before registering again"
            ) from None
        raise
    key = subscription.signature_key.get_secret_value() if subscription.signature_key else ""
    try:
        if not key:
            raise CommandFailed("Close returned no signature_key for the new subscription")
        secret.add(subscription.id, key)
    except Exception as exc:
        # A subscription whose key we could not keep would only deliver events the receiver
        # must reject: take it back, so that the operator can simply run register again.
        _delete_quietly(stack, subscription.id)
        detail = _describe_failure(exc)
        raise CommandFailed(
            f"could not store the signature key of {subscription.id} ({one_line(detail)}); "
            "the subscription was deleted again"
        ) from None
    print(subscription.id)
    print(
        f"subscribed {url} to {len(events)} task events; signature key stored in {secret.secret_id}",
        file=sys.stderr,
    )
    return 0


def _describe_failure(exc: Exception) -> str:
    """What went wrong, from parts that never hold the key (not the exception's full text)."""
    if isinstance(exc, CommandFailed):
        return exc.message
    if isinstance(exc, ClientError):
        return f"AWS {exc.response.get('Error', {}).get('Code', 'error')}"
    if isinstance(exc, SignatureKeysUnavailable):
        return str(exc)  # names the secret's problem, never a value
    return type(exc).__name__


def _delete_quietly(stack: Stack, subscription_id: str) -> None:
    # If this fails too, the original failure is still what the operator needs to see.
    with contextlib.suppress(ApiError):
        stack.close.delete_webhook(subscription_id)


def _row(subscription_id: str, subscription: CloseWebhookSubscription | None, key_stored: bool) -> dict[str, Any]:
    if subscription is None:
        return {"id": subscription_id, "status": "missing in Close", "key_stored": key_stored}
    return {
        "id": subscription.id,
        "url": subscription.url,
        "status": subscription.status,
        "pause_reason": subscription.pause_reason,
        "health": subscription.health_status,
        "latest_error": one_line(str(subscription.latest_error), 200) if subscription.latest_error else None,
        "key_stored": key_stored,
    }


def status(stack: Stack, args: argparse.Namespace) -> int:
    keys = stack.signature_keys
    stored = keys.subscription_ids()
    # A stack whose keys were stored before the reconciler read ids from the StateTable gets them here.
    keys.mirror_ids(stored)
    ids = [args.id] if args.id else stored
    rows = []
    for subscription_id in ids:
        try:
            subscription: CloseWebhookSubscription | None = stack.close.get_webhook(subscription_id)
        except NotFound:
            subscription = None
        rows.append(_row(subscription_id, subscription, subscription_id in stored))
    if not args.id and stack.target.webhook_url:
        # Subscriptions to our URL without a stored key: their deliveries are being rejected.
        rows += [
            _row(s.id, s, False)
            for s in stack.close.list_webhooks()
            if s.url == stack.target.webhook_url and s.id not in stored
        ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no webhook subscription is registered for this stack (run `tasksync webhook register`)")
        return 0
    print_table(
        [
            [
                row["id"],
                row["status"],
                row.get("pause_reason") or "-",
                row.get("health") or "-",
                "yes" if row["key_stored"] else "NO",
                row.get("latest_error") or "-",
            ]
            for row in rows
        ],
        ["SUBSCRIPTION", "STATUS", "PAUSE REASON", "HEALTH", "KEY STORED", "LATEST ERROR"],
    )
    return 0


def _set_status(stack: Stack, args: argparse.Namespace, wanted: str) -> int:
    subscription_id = choose_subscription(stack, args.id)
    try:
        subscription = stack.close.update_webhook(subscription_id, status=wanted)
    except NotFound:
        raise UsageError(f"Close has no webhook subscription {subscription_id}") from None
    print(f"{subscription.id}: {subscription.status}")
    return 0


def pause(stack: Stack, args: argparse.Namespace) -> int:
    return _set_status(stack, args, "paused")


def resume(stack: Stack, args: argparse.Namespace) -> int:
    # Close dropped what it queued while paused; `tasksync reconcile` replays the gap.
    code = _set_status(stack, args, "active")
    print("events from the paused period are caught up by the next reconcile (or run `tasksync reconcile`)")
    return code


def delete(stack: Stack, args: argparse.Namespace) -> int:
    subscription_id = choose_subscription(stack, args.id)
    try:
        stack.close.delete_webhook(subscription_id)
        gone = "deleted"
    except NotFound:
        gone = "was already gone in Close"
    removed = stack.signature_keys.remove(subscription_id)
    print(f"{subscription_id}: {gone}; signature key {'removed' if removed else 'was not stored'}")
    return 0
