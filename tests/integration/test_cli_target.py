"""The operator CLI against real parts (tests.integration.cli_harness): which stack a command acts on
(a deployed one from its CloudFormation outputs), and bad input.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from tasksync_dev.local.state import write_state
from tasksync_dev.sandbox.close import CloseSimulator
from tests.integration.cli_harness import Cli, LocalStack, cli, seed_links, stack

__all__ = ["cli", "stack"]  # the fixtures


# ---------------------------------------------------------------------------------- deployed stack
def test_a_deployed_stack_is_found_by_its_cloudformation_outputs(
    stack: LocalStack,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    moto_server: str,
    dynamodb_local: str,
    close_sim: CloseSimulator,
) -> None:
    close_key_arn = stack.secrets.put("close-api-key", close_sim.api_key)
    outputs = {
        "StateTableName": stack.tables.state,
        "IdempotencyTableName": stack.tables.idempotency,
        "EventQueueUrl": stack.queues.events_url,
        "EventDLQUrl": stack.queues.dlq_url,
        "SignatureKeysSecretArn": stack.arns["SignatureKeysSecret"],
        "CloseApiKeySecretArn": close_key_arn,
        "WebhookUrl": "http://127.0.0.1:9/deployed/webhooks/close",
    }
    name = f"tasksync-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Anchor": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-anchor"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = boto3.client("cloudformation", endpoint_url=moto_server, region_name="us-east-1")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    monkeypatch.delenv("TASKSYNC_LOCAL_DIR")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local)
    monkeypatch.setenv("CLOSE_API_URL", f"{close_sim.url}/api/v1")
    try:
        seed_links(stack.links())
        status = cli("status", "--stack", name, "--json")
        assert status.code == 0, status.err
        assert json.loads(status.out)["tasks"]["parked"] == 3

        registered = cli("--stack", name, "webhook", "register")
        assert registered.code == 0, registered.err
        subscription_id = registered.out.strip()
        assert stack.close.subscriptions[subscription_id]["url"] == outputs["WebhookUrl"]
        assert list(stack.signature_keys) == [subscription_id]

        missing = cli("--stack", "no-such-stack", "status")
        assert missing.code == 2
        assert "no CloudFormation stack no-such-stack" in missing.error_line
    finally:
        cloudformation.delete_stack(StackName=name)


# ---------------------------------------------------------------------------------- bad input
def test_bad_input_exits_2_with_one_clear_line(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    missing_file = cli("--stack-file", str(tmp_path / "nowhere.json"), "status")
    assert missing_file.code == 2
    assert "nowhere.json" in missing_file.error_line

    monkeypatch.setenv("TASKSYNC_LOCAL_DIR", str(tmp_path / "empty"))
    not_running = cli("--local", "status")
    assert not_running.code == 2
    assert "make run" in not_running.error_line

    bad_date = cli("--local", "backfill", "--since", "2024-13-45")
    assert bad_date.code == 2
    assert "'2024-13-45' is not a date" in bad_date.error_line

    no_target = cli("status")
    assert no_target.code == 2
    assert "--stack NAME" in no_target.error_line

    unknown_command = cli("--local", "frobnicate")
    assert unknown_command.code == 2


def test_an_unreachable_local_stack_fails_with_one_line(tmp_path: Path, cli: Cli, stack: LocalStack) -> None:
    state = json.loads(stack.path.read_text())
    state["endpoints"] = dict.fromkeys(state["endpoints"], "http://127.0.0.1:9")
    write_state(stack.path, state)
    result = cli("--local", "status")
    assert result.code == 1
    assert "127.0.0.1:9" in result.error_line
