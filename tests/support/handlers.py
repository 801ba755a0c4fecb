"""Load the Lambda handlers the way Lambda does: from their files, after the environment is set.

Every handler module is called `app`, and each builds its clients at first use from the
environment, so tests import a fresh copy under a unique name once they have set the env.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tasksync.logic.signature import sign
from tests.support.template import REPO_ROOT

# events/README.md: the key the events/ files are signed with; it signs nothing else.
SANDBOX_SIGNATURE_KEY = "4163f715a56509cf31c5fb4e5ea975c2dc88e6d61ad41c28eab5b9b12c83d548"
_counter = itertools.count()


def load_handler(function_dir: str) -> ModuleType:
    path = REPO_ROOT / "functions" / function_dir / "app.py"
    name = f"tasksync_test_handler_{function_dir}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeLambdaContext:
    function_name: str = "tasksync-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tasksync-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_millis: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


def load_event(name: str) -> dict[str, Any]:
    """An events/ file; a webhook comes re-signed with the current time (see `signed_now`)."""
    data: dict[str, Any] = json.loads((REPO_ROOT / "events" / name).read_text())
    return signed_now(data) if "close-sig-timestamp" in data.get("headers", {}) else data


def signed_now(event: dict[str, Any]) -> dict[str, Any]:
    """The webhook event with `close-sig-timestamp` set to now and, where its signature was valid
    for the sandbox key, signed again: the files were signed in 2025, and the receiver answers a
    delivery that old 200 without queueing it. A file whose signature is wrong stays wrong."""
    headers = dict(event["headers"])
    body = event["body"].encode("utf-8")
    stamp = str(int(time.time()))
    if headers["close-sig-hash"] == sign(SANDBOX_SIGNATURE_KEY, headers["close-sig-timestamp"], body):
        headers["close-sig-hash"] = sign(SANDBOX_SIGNATURE_KEY, stamp, body)
    headers["close-sig-timestamp"] = stamp
    return {**event, "headers": headers}


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from ReceiveMessage results."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                    "MessageGroupId": m.get("Attributes", {}).get("MessageGroupId", ""),
                    "MessageDeduplicationId": m.get("Attributes", {}).get("MessageDeduplicationId", ""),
                    "SequenceNumber": m.get("Attributes", {}).get("SequenceNumber", "1"),
                    "ApproximateFirstReceiveTimestamp": "0",
                    "SenderId": "AIDATEST",
                },
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def repo_path(*parts: str) -> Path:
    return REPO_ROOT.joinpath(*parts)
