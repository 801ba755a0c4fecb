"""The handler tests' stack: the three Lambda handlers' environment over moto server (SQS, Secrets
Manager), DynamoDB Local and the simulators, with the events/ files' lead, rep and subscription.

A test module uses the `stack` fixture by importing it and naming it in its `__all__`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters

from tasksync.dal.aws import forget_clients
from tasksync.dal.links import TaskLinkStore
from tasksync.logic.signature import sign
from tasksync_dev.local.sqs_source import invoke_batch, queue_arn, queue_counts
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.support.handlers import lambda_context, load_event, load_handler, repo_path

EVENTS_SUBSCRIPTION = "whsub_1vT2aEze4uUzQlqLIBExYl"  # events/payloads/close-task-created.json
SANDBOX_SIGNATURE_KEY = "4163f715a56509cf31c5fb4e5ea975c2dc88e6d61ad41c28eab5b9b12c83d548"  # events/README.md
F1_LEAD = "lead_mtonPqjLkC0X93AW6evKVa1Sbpq7l8opyuaV5olT2Cf"
F1_USER = "user_8HHUh3SH67YzD8IMakjKoJ9SWputzlUdaihCG95g7as"
F1_TASK = "task_CIRBr39mOsTfWAc3ErihkSt4cX0PlVBpTovHGNj939w"
REP = "barbara@sales.example"


@dataclass
class Stack:
    close: CloseSimulator
    chartmogul: ChartMogulSimulator
    sqs: Any
    queue_url: str
    dlq_url: str
    links: TaskLinkStore
    customer: str
    secret_arns: dict[str, str]

    def receive(self, url: str | None = None, visibility: int | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "QueueUrl": url or self.queue_url,
            "MaxNumberOfMessages": 10,
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if visibility is not None:
            kwargs["VisibilityTimeout"] = visibility
        return list(self.sqs.receive_message(**kwargs).get("Messages", []))

    def depth(self, url: str) -> int:
        return sum(queue_counts(self.sqs, url))

    def queue_arn(self) -> str:
        return queue_arn(self.sqs, self.queue_url)

    def run_worker(self, worker: ModuleType, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """What Lambda's poller does: invoke, then delete the records that did not fail."""
        response: dict[str, Any] = invoke_batch(
            sqs=self.sqs,
            queue_url=self.queue_url,
            queue_arn=self.queue_arn(),
            region="us-east-1",
            messages=messages,
            invoke=lambda event: worker.lambda_handler(event, lambda_context()),
        )
        return response


def sample_subscriptions() -> set[str]:
    """The subscription ids the events/ webhook files were delivered for (real ids, events/payloads/)."""
    found = {EVENTS_SUBSCRIPTION}
    for path in repo_path("events").glob("webhook-*.json"):
        event = json.loads(path.read_text())
        try:
            found.add(json.loads(event["body"])["subscription_id"])
        except (ValueError, KeyError):
            continue
    return found


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch,
    dynamodb_local: str,
    moto_server: str,
    state_tables: Any,
    queues: Any,
    secrets: Any,
    close_sim: CloseSimulator,
    chartmogul_sim: ChartMogulSimulator,
) -> Iterator[Stack]:
    arns = secrets.from_template(
        {
            "CloseApiKeySecret": close_sim.api_key,
            "ChartMogulApiKeySecret": chartmogul_sim.api_key,
            "SignatureKeysSecret": json.dumps(dict.fromkeys(sample_subscriptions(), SANDBOX_SIGNATURE_KEY)),
        }
    )
    environment = {
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local,
        "AWS_ENDPOINT_URL_SQS": moto_server,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_server,  # boto3 names it by service id
        "STATE_TABLE": state_tables.state,
        "IDEMPOTENCY_TABLE": state_tables.idempotency,
        "QUEUE_URL": queues.events_url,
        "DLQ_URL": queues.dlq_url,
        "CLOSE_API_URL": f"{close_sim.url}/api/v1",
        "CHARTMOGUL_API_URL": f"{chartmogul_sim.url}/v1",
        "CLOSE_API_KEY_SECRET_ARN": arns["CloseApiKeySecret"],
        "CHARTMOGUL_API_KEY_SECRET_ARN": arns["ChartMogulApiKeySecret"],
        "SIGNATURE_KEYS_SECRET_ARN": arns["SignatureKeysSecret"],
        "ASSIGNEE_MAP": json.dumps({REP: REP}),
        "DEFAULT_ASSIGNEE": REP,
        "RETRY_BASE_SECONDS": "30",
        "RETRY_MAX_SECONDS": "600",
        "POWERTOOLS_SERVICE_NAME": "tasksync",
        "POWERTOOLS_METRICS_NAMESPACE": "TaskSyncTest",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLOSE_WEBHOOK_SIGNATURE_KEY", raising=False)
    parameters.clear_caches()
    forget_clients()
    close_sim.add_user(REP, user_id=F1_USER)
    close_sim.add_lead("Test Instantly", emails=["ops@instantly.example"], lead_id=F1_LEAD)
    chartmogul_sim.add_user(REP)
    customer = chartmogul_sim.add_customer(name="Instantly", email="ops@instantly.example")["uuid"]
    yield Stack(
        close=close_sim,
        chartmogul=chartmogul_sim,
        sqs=queues.client,
        queue_url=queues.events_url,
        dlq_url=queues.dlq_url,
        links=TaskLinkStore(state_tables.client, state_tables.state),
        customer=customer,
        secret_arns=arns,
    )
    parameters.clear_caches()
    forget_clients()


def enqueue_webhook(stack: Stack, event_file: str = "webhook-task-created.json") -> None:
    """One of the events/ webhook files through the receiver handler onto the queue."""
    response = load_handler("receiver").lambda_handler(load_event(event_file), lambda_context())
    assert response["statusCode"] == 202


def signed_delivery(stack: Stack, task_id: str) -> tuple[bytes, dict[str, str]]:
    """The latest event of the task as Close would deliver it, signed with the sandbox key."""
    event = next(e for e in reversed(stack.close.events) if e["object_id"] == task_id)
    body = json.dumps({"subscription_id": EVENTS_SUBSCRIPTION, "event": event}).encode()
    timestamp = str(int(time.time()))
    headers = {
        "close-sig-timestamp": timestamp,
        "close-sig-hash": sign(SANDBOX_SIGNATURE_KEY, timestamp, body),
        "content-type": "application/json",
    }
    return body, headers


def deliver_webhook(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    """The task's latest event through the receiver handler; the queued messages of its task."""
    body, headers = signed_delivery(stack, task_id)
    event = {
        **load_event("webhook-task-created.json"),
        "body": body.decode(),
        "headers": headers,
        "isBase64Encoded": False,
    }
    assert load_handler("receiver").lambda_handler(event, lambda_context())["statusCode"] == 202
    return [m for m in stack.receive() if m["Attributes"]["MessageGroupId"] == task_id]
