"""The operator CLI against real parts (tests.integration.cli_harness): `webhook register`, `status`,
`pause`, `resume`, `delete`.
"""

from __future__ import annotations

import json

from tasksync.reconciler import subscribed_pairs
from tests.integration.cli_harness import RECEIVER_URL, Cli, LocalStack, cli, stack

__all__ = ["cli", "stack"]  # the fixtures


# ---------------------------------------------------------------------------------- webhook
def test_webhook_register_stores_the_key_and_prints_only_the_id(stack: LocalStack, cli: Cli) -> None:
    stack.secrets.client.put_secret_value(
        SecretId=stack.arns["SignatureKeysSecret"], SecretString=json.dumps({"whsub_older": "ab" * 32})
    )
    result = cli("webhook", "register", "--url", RECEIVER_URL, "--local")
    assert result.code == 0, result.err
    subscription_id = result.out.strip()
    subscription = stack.close.subscriptions[subscription_id]
    key = subscription["signature_key"]
    assert stack.signature_keys == {"whsub_older": "ab" * 32, subscription_id: key}
    assert key not in result.out
    assert key not in result.err
    assert subscription["url"] == RECEIVER_URL
    wanted = set(subscribed_pairs({"lead"}))
    assert {(e["object_type"], e["action"]) for e in subscription["events"]} == wanted


def test_webhook_register_defaults_to_the_receiver_url_and_explains_a_duplicate(stack: LocalStack, cli: Cli) -> None:
    first = cli("--local", "webhook", "register")
    assert first.code == 0, first.err
    subscription_id = first.out.strip()
    assert stack.close.subscriptions[subscription_id]["url"] == RECEIVER_URL

    again = cli("--local", "webhook", "register")
    assert again.code == 2
    assert "already has an active subscription" in again.error_line
    assert subscription_id in again.error_line
    assert list(stack.signature_keys) == [subscription_id]


def test_webhook_register_takes_the_subscription_back_when_the_key_cannot_be_stored(
    stack: LocalStack, cli: Cli
) -> None:
    stack.secrets.client.put_secret_value(SecretId=stack.arns["SignatureKeysSecret"], SecretString="not a JSON map")
    result = cli("--local", "webhook", "register")
    assert result.code == 1
    assert "the subscription was deleted again" in result.error_line
    assert "not a JSON object" in result.error_line
    assert stack.close.subscriptions == {}


def test_webhook_status_pause_resume_delete(stack: LocalStack, cli: Cli) -> None:
    subscription_id = cli("--local", "webhook", "register").out.strip()

    status = cli("--local", "webhook", "status", "--json")
    assert status.code == 0, status.err
    [row] = json.loads(status.out)
    assert row["id"] == subscription_id
    assert row["status"] == "active"
    assert row["key_stored"] is True
    assert stack.close.subscriptions[subscription_id]["signature_key"] not in status.out

    assert cli("--local", "webhook", "pause").code == 0
    assert stack.close.subscriptions[subscription_id]["status"] == "paused"
    text = cli("--local", "webhook", "status")
    assert subscription_id in text.out
    assert "paused" in text.out
    assert "api" in text.out  # the pause reason Close gives to a pause through the API

    assert cli("--local", "webhook", "resume").code == 0
    assert stack.close.subscriptions[subscription_id]["status"] == "active"

    deleted = cli("--local", "webhook", "delete")
    assert deleted.code == 0, deleted.err
    assert subscription_id not in stack.close.subscriptions
    assert stack.signature_keys == {}


def test_webhook_commands_need_an_id_when_there_are_several(stack: LocalStack, cli: Cli) -> None:
    first = cli("--local", "webhook", "register", "--url", RECEIVER_URL).out.strip()
    second = cli("--local", "webhook", "register", "--url", "http://127.0.0.1:9/other").out.strip()

    ambiguous = cli("--local", "webhook", "pause")
    assert ambiguous.code == 2
    assert "--id" in ambiguous.error_line

    assert cli("--local", "webhook", "pause", "--id", second).code == 0
    assert stack.close.subscriptions[second]["status"] == "paused"
    assert stack.close.subscriptions[first]["status"] == "active"
    rows = json.loads(cli("--local", "webhook", "status", "--json").out)
    assert {row["id"]: row["status"] for row in rows} == {first: "active", second: "paused"}
