"""Load the Lambda handlers the way Lambda does: from their files, after the environment is set.

Every handler module is called `app`, and each builds its clients at first use from the
environment, so tests import a fresh copy under a unique name once they have set the env.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.template import REPO_ROOT

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
    data: dict[str, Any] = json.loads((REPO_ROOT / "events" / name).read_text())
    return data


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
