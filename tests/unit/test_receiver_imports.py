"""The receiver's cold start: from HTTP event to SQS message without importing pydantic.

Importing pydantic and the models built on it costs more than the receiver's whole work, and
Close waits for the answer. A fresh process imports the handler, answers one signed delivery
(202, queued through a stand-in SQS client) and then lists what it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.template import REPO_ROOT
from tests.unit.deliveries import SANDBOX_KEY

_PROBE = """
import json, sys, time
import boto3

class Sqs:
    def send_message(self, **kwargs):
        self.sent = kwargs
        return {"MessageId": "m-1"}

real_client = boto3.client
boto3.client = lambda name, **kwargs: Sqs() if name == "sqs" else real_client(name, **kwargs)

import app
from tasksync.logic.signature import sign

class Context:
    function_name = "receiver"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:receiver"
    aws_request_id = "r-1"

event = json.loads(sys.argv[1])
timestamp = str(int(time.time()))
event["headers"]["close-sig-timestamp"] = timestamp
event["headers"]["close-sig-hash"] = sign(sys.argv[2], timestamp, event["body"].encode())
answer = app.lambda_handler(event, Context())
print(json.dumps({"status": answer["statusCode"], "modules": sorted(sys.modules)}))
"""


def test_the_receiver_answers_a_delivery_without_importing_pydantic() -> None:
    event = (REPO_ROOT / "events" / "webhook-task-created.json").read_text("utf-8")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(
            [str(REPO_ROOT / "functions" / "receiver"), str(REPO_ROOT / "layers" / "tasksync")]
        ),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "TaskSyncTest",
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/tasksync-events.fifo",
        "CLOSE_WEBHOOK_SIGNATURE_KEY": SANDBOX_KEY,
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, event, SANDBOX_KEY],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 202
    imported = [name for name in result["modules"] if name.split(".")[0] in ("pydantic", "pydantic_core", "requests")]
    assert imported == []
