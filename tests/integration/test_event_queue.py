"""EventQueue, WebhookQueue, the signature keys secret and the receiver's Lambda handler, against moto (SQS,
Secrets Manager) on 127.0.0.1, with the queues and secrets declared in template.yaml."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from tasksync.dal.event_message import WebhookQueue
from tasksync.dal.queue import EventQueue
from tasksync.dal.signature_keys import SecretSignatureKeys
from tasksync.errors import SignatureKeysUnavailable
from tasksync.models.envelope import parse_event
from tasksync.models.queue import QueuedEvent
from tasksync.models.queue_message import MAX_MESSAGE_BYTES
from tests.support.aws import Queues, Secrets
from tests.support.handlers import lambda_context, load_handler, signed_now
from tests.support.log_capture import LogTap

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
SANDBOX_KEY = "4163f715a56509cf31c5fb4e5ea975c2dc88e6d61ad41c28eab5b9b12c83d548"
# The subscription of events/webhook-task-created.json.
CREATED_SUBSCRIPTION = "whsub_1vT2aEze4uUzQlqLIBExYl"


def raw_event(index: int = 0, **changes: Any) -> dict[str, Any]:
    envelope = json.loads((EVENTS / "payloads" / "close-task-created.json").read_text("utf-8"))
    event: dict[str, Any] = envelope["event"]
    if index:
        event["id"] = f"ev_{index:04d}"
        event["object_id"] = f"task_{index:04d}"
        event["data"]["id"] = event["object_id"]
    event.update(changes)
    return event


def drain(client: SQSClient, url: str, expected: int, deadline_seconds: float = 10.0) -> list[dict[str, Any]]:
    """Receive (and delete) until ``expected`` messages arrived or the deadline passed."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + deadline_seconds
    while len(received) < expected and time.monotonic() < deadline:
        answer = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], WaitTimeSeconds=0
        )
        for message in answer.get("Messages", []):
            received.append(dict(message))
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return received


def test_the_receiver_queue_sets_the_group_and_deduplication_ids_the_model_would(queues: Queues) -> None:
    queue = WebhookQueue(queues.client, queues.events_url)
    queued = QueuedEvent.from_raw(raw_event(), "whsub_1")
    message_id = queue.enqueue(parse_event(raw_event()), raw_event(), subscription_id="whsub_1")

    [message] = drain(queues.client, queues.events_url, 1)
    assert message["MessageId"] == message_id
    assert message["Attributes"]["MessageGroupId"] == "task_CIRBr39mOsTfWAc3ErihkSt4cX0PlVBpTovHGNj939w"
    assert message["Attributes"]["MessageDeduplicationId"] == queued.deduplication_id
    assert QueuedEvent.from_message_body(message["Body"]) == QueuedEvent(queued.event, raw_event(), "whsub_1")


def test_the_same_event_version_twice_is_queued_once(queues: Queues) -> None:
    # A webhook and the reconciler's catch-up of the same event version: one message.
    EventQueue(queues.client, queues.events_url).enqueue_many([QueuedEvent.from_raw(raw_event())])
    queue = WebhookQueue(queues.client, queues.events_url)
    queue.enqueue(parse_event(raw_event()), raw_event())
    newer = raw_event(date_updated="2025-02-28T19:21:00.000000")
    queue.enqueue(parse_event(newer), newer)

    messages = drain(queues.client, queues.events_url, 3, deadline_seconds=2.0)
    dates = sorted(json.loads(m["Body"])["date_updated"] for m in messages)
    assert dates == ["2025-02-28T19:20:45.507000", "2025-02-28T19:21:00.000000"]


def test_enqueue_many_sends_every_event_in_batches_of_ten(queues: Queues) -> None:
    queue = EventQueue(queues.client, queues.events_url)
    events = [QueuedEvent.from_raw(raw_event(i)) for i in range(1, 24)]
    report = queue.enqueue_many(events)

    assert report.ok
    assert [event_id for event_id, _ in report.sent] == [e.event.id for e in events]
    received = drain(queues.client, queues.events_url, 23)
    assert sorted(json.loads(m["Body"])["id"] for m in received) == sorted(e.event.id for e in events)


def test_enqueue_many_reports_an_oversized_event_and_sends_the_rest(queues: Queues) -> None:
    queue = EventQueue(queues.client, queues.events_url)
    huge = raw_event(2)
    huge["data"]["text"] = "x" * MAX_MESSAGE_BYTES
    report = queue.enqueue_many([QueuedEvent.from_raw(raw_event(1)), QueuedEvent.from_raw(huge)])

    assert [event_id for event_id, _ in report.sent] == ["ev_0001"]
    assert [(f.event_id, f.sender_fault) for f in report.failures] == [("ev_0002", True)]
    assert len(drain(queues.client, queues.events_url, 1)) == 1


def test_enqueue_many_reports_a_failed_call_instead_of_raising(queues: Queues) -> None:
    missing = queues.events_url.rsplit("/", 1)[0] + "/no-such-queue.fifo"
    report = EventQueue(queues.client, missing).enqueue_many([QueuedEvent.from_raw(raw_event(i)) for i in (1, 2)])
    assert report.sent == []
    assert [f.event_id for f in report.failures] == ["ev_0001", "ev_0002"]
    assert not report.ok


# --- signature keys secret ------------------------------------------------------------------------


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_come_from_the_template_secret(secrets: Secrets, secrets_client: SecretsManagerClient) -> None:
    arns = secrets.from_template({"SignatureKeysSecret": json.dumps({"whsub_1": SANDBOX_KEY})})
    keys = SecretSignatureKeys(arns["SignatureKeysSecret"], secrets_client=secrets_client)
    assert keys.key_for("whsub_1") == SANDBOX_KEY
    assert keys.key_for("whsub_unknown") is None
    assert keys.all_keys() == [SANDBOX_KEY]
    assert keys.subscription_ids() == ["whsub_1"]
    assert SANDBOX_KEY not in repr(keys)


def test_the_template_starts_with_an_empty_key_map(secrets: Secrets, secrets_client: SecretsManagerClient) -> None:
    arns = secrets.from_template({})
    keys = SecretSignatureKeys(arns["SignatureKeysSecret"], secrets_client=secrets_client)
    assert keys.all_keys() == []
    assert keys.key_for("whsub_1") is None


def test_a_newly_registered_subscription_is_found_without_waiting_for_the_cache(
    secrets: Secrets, secrets_client: SecretsManagerClient
) -> None:
    arn = secrets.put("keys", json.dumps({"whsub_1": SANDBOX_KEY}))
    clock = SteppedClock()
    keys = SecretSignatureKeys(arn, secrets_client=secrets_client, clock=clock)
    assert keys.key_for("whsub_1") == SANDBOX_KEY  # now cached for 5 minutes

    second, third = "bb" * 32, "cc" * 32
    secrets_client.put_secret_value(SecretId=arn, SecretString=json.dumps({"whsub_1": SANDBOX_KEY, "whsub_2": second}))
    assert keys.key_for("whsub_2") == second  # an unknown id forces one fresh read

    secrets_client.put_secret_value(SecretId=arn, SecretString=json.dumps({"whsub_3": third}))
    assert keys.key_for("whsub_3") is None  # at most one forced read per minute...
    clock.now += 61
    assert keys.key_for("whsub_3") == third  # ...then the next unknown id reads again


@pytest.mark.parametrize("value", ["not json", "[1, 2]", '{"whsub_1": 5}', '{"whsub_1": ""}', '{"whsub_1": "0xab"}'])
def test_a_malformed_key_secret_is_unavailable_not_empty(
    value: str, secrets: Secrets, secrets_client: SecretsManagerClient
) -> None:
    keys = SecretSignatureKeys(secrets.put(f"bad-{uuid.uuid4().hex[:6]}", value), secrets_client=secrets_client)
    with pytest.raises(SignatureKeysUnavailable):
        keys.key_for("whsub_1")


def test_a_missing_key_secret_is_unavailable(secrets_client: SecretsManagerClient) -> None:
    keys = SecretSignatureKeys("tasksync/no-such-secret", secrets_client=secrets_client)
    with pytest.raises(SignatureKeysUnavailable):
        keys.all_keys()


# --- the Lambda handler ---------------------------------------------------------------------------


@pytest.fixture
def receiver_app(queues: Queues, secrets: Secrets, moto_server: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """functions/receiver/app.py loaded fresh, configured as template.yaml configures it."""
    # Each sample comes from a different Close subscription; all are signed with the sandbox key.
    subscriptions = {
        json.loads(path.read_text("utf-8"))["subscription_id"]: SANDBOX_KEY
        for path in (EVENTS / "payloads").glob("*.json")
    }
    arns = secrets.from_template({"SignatureKeysSecret": json.dumps(subscriptions)})
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_server)
    monkeypatch.setenv("QUEUE_URL", queues.events_url)
    monkeypatch.setenv("SIGNATURE_KEYS_SECRET_ARN", arns["SignatureKeysSecret"])
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "tasksync-test")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TaskSyncTest")
    monkeypatch.delenv("CLOSE_WEBHOOK_SIGNATURE_KEY", raising=False)
    return load_handler("receiver")


def invoke(app: ModuleType, name: str, *, as_filed: bool = False) -> dict[str, Any]:
    """Deliver an events/ file, re-signed with the current time unless ``as_filed``."""
    event = json.loads((EVENTS / name).read_text("utf-8"))
    event = event if as_filed else signed_now(event)
    answer: dict[str, Any] = app.lambda_handler(event, lambda_context("tasksync-ReceiverFunction"))
    return answer


def test_the_handler_queues_a_signed_task_event(receiver_app: ModuleType, queues: Queues) -> None:
    answer = invoke(receiver_app, "webhook-task-created.json")
    assert answer["statusCode"] == 202
    assert json.loads(answer["body"]) == {"event_id": "ev_34bKnJcMX9UnRJmuGH5Jtr"}
    [message] = drain(queues.client, queues.events_url, 1)
    assert json.loads(message["Body"])["id"] == "ev_34bKnJcMX9UnRJmuGH5Jtr"


def test_the_handler_rejects_and_ignores_without_queueing(receiver_app: ModuleType, queues: Queues) -> None:
    assert invoke(receiver_app, "webhook-bad-signature.json")["statusCode"] == 401
    assert invoke(receiver_app, "webhook-ignored-event.json")["statusCode"] == 200
    assert drain(queues.client, queues.events_url, 1, deadline_seconds=0.5) == []


def test_the_handler_answers_503_when_the_queue_is_gone(
    receiver_app: ModuleType, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEUE_URL", queues.events_url.rsplit("/", 1)[0] + "/no-such-queue.fifo")
    answer = invoke(receiver_app, "webhook-task-created.json")
    assert answer["statusCode"] == 503
    assert "Traceback" not in answer["body"]


def test_the_handler_without_configuration_answers_503_without_details(
    capsys: pytest.CaptureFixture[str], receiver_app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIGNATURE_KEYS_SECRET_ARN")
    answer = invoke(receiver_app, "webhook-task-created.json")
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"]) == {"message": "receiver is not configured"}
    assert '"WebhooksMisconfigured"' in capsys.readouterr().out


def test_a_stale_but_authentic_delivery_is_answered_200_counted_and_not_queued(
    capsys: pytest.CaptureFixture[str], receiver_app: ModuleType, queues: Queues
) -> None:
    answer = invoke(receiver_app, "webhook-task-created.json", as_filed=True)  # signed in 2025
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"status": "stale"}
    assert drain(queues.client, queues.events_url, 1, deadline_seconds=0.5) == []
    assert '"WebhooksStale"' in capsys.readouterr().out


def test_a_malformed_key_in_the_secret_is_503_and_counted_as_misconfigured(
    capsys: pytest.CaptureFixture[str],
    receiver_app: ModuleType,
    secrets: Secrets,
    queues: Queues,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pasted = secrets.put(f"pasted-{uuid.uuid4().hex[:6]}", json.dumps({CREATED_SUBSCRIPTION: f'"{SANDBOX_KEY}"'}))
    monkeypatch.setenv("SIGNATURE_KEYS_SECRET_ARN", pasted)
    answer = invoke(receiver_app, "webhook-task-created.json")
    assert answer["statusCode"] == 503
    assert SANDBOX_KEY not in answer["body"]
    printed = capsys.readouterr().out
    assert '"WebhooksMisconfigured"' in printed
    assert SANDBOX_KEY not in printed
    assert drain(queues.client, queues.events_url, 1, deadline_seconds=0.5) == []


def test_an_unexpected_exception_is_500_logged_with_its_traceback_and_counted(
    capsys: pytest.CaptureFixture[str], receiver_app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(**_: Any) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("tasksync.receiver.verify", crash)
    tap = LogTap().attach()  # the handler's logger may write to an earlier test's stdout
    try:
        answer = invoke(receiver_app, "webhook-task-created.json")
    finally:
        tap.detach()
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"]) == {"message": "internal error"}
    assert "Traceback" in tap.text
    assert "ZeroDivisionError" in tap.text
    assert '"WebhooksFailed"' in capsys.readouterr().out
