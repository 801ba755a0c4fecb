"""No API key or signature key ever reaches a log line, a metric or an error message.

Unit tier: the configuration's error messages and repr, and the receiver's Lambda handler run
in-process (its SQS endpoint is a closed local port, so queue writes fail and get logged with
their exception), with every line it prints (Powertools JSON logs and EMF metrics) scanned.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from tasksync.config import SyncSettings
from tasksync.errors import InvalidInput
from tasksync.logic.signature import sign
from tasksync_dev.local.options import settings_variables
from tests.support.handlers import FakeLambdaContext, load_event, load_handler
from tests.support.log_capture import leaked

CLOSE_KEY = "api_5ecretCl0seKeyThatMustNeverBeLogged0000"
CHARTMOGUL_KEY = "cm5ecretChartMogulKeyThatMustNeverBeLogged"
SIGNATURE_KEY = "5e" * 32
SECRETS = (CLOSE_KEY, CHARTMOGUL_KEY, SIGNATURE_KEY)
SECRET_VARIABLES = ("CLOSE_API_KEY", "CHARTMOGUL_API_KEY", "CLOSE_WEBHOOK_SIGNATURE_KEY")
PASTED_KEY = "cmPastedIntoTheWrongVariable0123456789"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("variable", sorted(settings_variables()))
def test_a_key_put_in_any_setting_is_never_echoed_by_the_configuration(variable: str) -> None:
    # An operator pastes a key into the wrong variable: the error names the variable, not the value.
    environ = {
        **dict(zip(SECRET_VARIABLES, SECRETS, strict=True)),
        variable: PASTED_KEY,
    }
    try:
        settings = SyncSettings.from_env(environ)
    except InvalidInput as exc:
        message = f"{exc} {exc!r} {exc.field} {exc.message}"
    else:
        message = ""
    assert leaked(message, [*SECRETS, PASTED_KEY]) == []
    if message:
        return
    # The secret fields print masked (a key pasted into a plain field is that field's value).
    assert leaked(f"{settings!r} {settings}", [environ[name] for name in SECRET_VARIABLES if name != variable]) == []


@pytest.fixture
def receiver_environment(monkeypatch: pytest.MonkeyPatch) -> str:
    port = closed_port()
    environment = {
        "CLOSE_WEBHOOK_SIGNATURE_KEY": SIGNATURE_KEY,
        "CLOSE_API_KEY": CLOSE_KEY,
        "CHARTMOGUL_API_KEY": CHARTMOGUL_KEY,
        "QUEUE_URL": f"http://127.0.0.1:{port}/123456789012/events.fifo",
        "AWS_ENDPOINT_URL_SQS": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "tasksync-secrets-test",
        "POWERTOOLS_METRICS_NAMESPACE": "TaskSyncTest",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SIGNATURE_KEYS_SECRET_ARN", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    return SIGNATURE_KEY


def signed_event(body: bytes, key: str = SIGNATURE_KEY) -> dict[str, Any]:
    event = load_event("webhook-task-created.json")
    stamp = str(int(time.time()))
    event["body"] = body.decode()
    event["isBase64Encoded"] = False
    event["headers"] = {"close-sig-timestamp": stamp, "close-sig-hash": sign(key, stamp, body)}
    return event


def test_the_receiver_handler_logs_and_counts_without_a_key(
    receiver_environment: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    envelope = json.loads(load_event("webhook-task-created.json")["body"])
    body = json.dumps(envelope).encode()
    cases = [
        signed_event(body),  # authentic: the queue write fails -> 503, logged with its exception
        signed_event(body, key="77" * 32),  # forged -> 401
        {**signed_event(body), "body": "{" + body.decode()},  # signature over other bytes -> 401
        signed_event(b'{"subscription_id": 1, "event": {}}'),  # authentic but not an event -> 400
    ]
    receiver = load_handler("receiver")  # loaded under capture: its logger writes to it
    answers = [receiver.lambda_handler(event, FakeLambdaContext()) for event in cases]
    monkeypatch.delenv("QUEUE_URL")
    misconfigured = load_handler("receiver").lambda_handler(cases[0], FakeLambdaContext())
    printed = capsys.readouterr()
    text = printed.out + printed.err + json.dumps([*answers, misconfigured])
    assert [a["statusCode"] for a in answers] == [503, 401, 401, 400]
    assert misconfigured["statusCode"] == 500
    # The scan saw real output: the failure with its exception, and the EMF metrics blobs.
    assert "webhook not queued" in text
    assert "receiver is misconfigured" in text
    assert '"WebhooksRejected"' in text
    assert "Traceback" in text  # logged (exc_info), as it should be, and still no key in it
    assert leaked(text, SECRETS) == []
