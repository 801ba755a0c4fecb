"""Tables, queues and secrets built from template.yaml behave as the template declares.

Against the real engines: DynamoDB Local for tables, the moto server for SQS and Secrets Manager.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.aws import REGION, Queues, Secrets
from tests.support.dynamodb import StateTables
from tests.support.template import create_secrets, queue_definitions, table_definitions

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


def test_tables_have_the_template_keys_index_and_ttl(state_tables: StateTables) -> None:
    client = state_tables.client
    assert set(state_tables.names) == set(table_definitions())
    state = client.describe_table(TableName=state_tables.state)["Table"]
    assert state["TableStatus"] == "ACTIVE"
    assert state["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert [index["IndexName"] for index in state.get("GlobalSecondaryIndexes", [])] == ["ParkedIndex"]
    ttl = client.describe_time_to_live(TableName=state_tables.state)["TimeToLiveDescription"]
    assert ttl.get("TimeToLiveStatus") == "ENABLED"
    assert ttl.get("AttributeName") == "expires_at"
    idempotency_ttl = client.describe_time_to_live(TableName=state_tables.idempotency)["TimeToLiveDescription"]
    assert idempotency_ttl.get("AttributeName") == "expiration"


def test_parked_index_is_sparse(state_tables: StateTables) -> None:
    client, table = state_tables.client, state_tables.state
    client.put_item(TableName=table, Item={"pk": {"S": "task#a"}, "state": {"S": "active"}})
    client.put_item(
        TableName=table,
        Item={"pk": {"S": "task#b"}, "state": {"S": "parked"}, "parked_pk": {"S": "parked"}, "retry_at": {"N": "5"}},
    )
    found = client.query(
        TableName=table,
        IndexName="ParkedIndex",
        KeyConditionExpression="parked_pk = :p AND retry_at <= :now",
        ExpressionAttributeValues={":p": {"S": "parked"}, ":now": {"N": "10"}},
    )["Items"]
    assert [item["pk"]["S"] for item in found] == ["task#b"]


def test_queues_have_the_template_attributes_and_redrive(queues: Queues) -> None:
    definitions = queue_definitions()
    assert set(queues.urls) == set(definitions)
    assert queues.events_url.endswith(".fifo")
    events = queues.client.get_queue_attributes(QueueUrl=queues.events_url, AttributeNames=["All"])["Attributes"]
    dlq = queues.client.get_queue_attributes(QueueUrl=queues.dlq_url, AttributeNames=["All"])["Attributes"]
    declared = definitions["EventQueue"]["attributes"]
    assert events["FifoQueue"] == "true"
    assert events["VisibilityTimeout"] == str(declared["VisibilityTimeout"])
    assert events["MessageRetentionPeriod"] == str(declared["MessageRetentionPeriod"])
    redrive = json.loads(events["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == definitions["EventQueue"]["redrive"]["max_receive_count"]  # type: ignore[index]
    assert dlq["MessageRetentionPeriod"] == str(definitions["EventDLQ"]["attributes"]["MessageRetentionPeriod"])


def test_event_queue_needs_explicit_deduplication_ids(queues: Queues) -> None:
    # ContentBasedDeduplication is off: the receiver must set MessageDeduplicationId itself.
    with pytest.raises(queues.client.exceptions.ClientError):
        queues.client.send_message(QueueUrl=queues.events_url, MessageBody="{}", MessageGroupId="task_1")
    queues.client.send_message(
        QueueUrl=queues.events_url, MessageBody="{}", MessageGroupId="task_1", MessageDeduplicationId="ev_1"
    )
    queues.client.send_message(
        QueueUrl=queues.events_url, MessageBody="{}", MessageGroupId="task_1", MessageDeduplicationId="ev_1"
    )
    attributes = queues.client.get_queue_attributes(
        QueueUrl=queues.events_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"


def test_the_moto_server_keeps_sqs_time_and_visibility(queues: Queues) -> None:
    # Our moto child process reads the clock its own faster way (tasksync_dev.local.moto_server):
    # timestamps must still be now, and a received message must stay hidden until released.
    client, url = queues.client, queues.events_url
    before = time.time() * 1000
    client.send_message(QueueUrl=url, MessageBody="{}", MessageGroupId="task_1", MessageDeduplicationId="ev_1")
    [message] = client.receive_message(QueueUrl=url, AttributeNames=["All"], VisibilityTimeout=60)["Messages"]
    after = time.time() * 1000
    assert before - 1000 <= int(message["Attributes"]["SentTimestamp"]) <= after + 1000
    assert "Messages" not in client.receive_message(QueueUrl=url, VisibilityTimeout=60)
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    [again] = client.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert again["MessageId"] == message["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_secrets_helper_round_trips_a_value(secrets: Secrets) -> None:
    arn = secrets.put("close-api-key", "api_key_value")
    assert secrets.client.get_secret_value(SecretId=arn)["SecretString"] == "api_key_value"


def test_secrets_from_template_use_given_values_else_a_random_one(secrets: Secrets) -> None:
    template = {
        "Resources": {
            "CloseApiKeySecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Description": "Close"}},
            "SigningKeysSecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
            "StateTable": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        }
    }
    arns = secrets.from_template({"CloseApiKeySecret": "api_key_value"}, template)
    assert set(arns) == {"CloseApiKeySecret", "SigningKeysSecret"}
    assert secrets.client.get_secret_value(SecretId=arns["CloseApiKeySecret"])["SecretString"] == "api_key_value"
    generated = secrets.client.get_secret_value(SecretId=arns["SigningKeysSecret"])["SecretString"]
    assert len(generated) >= 32
    assert secrets.client.describe_secret(SecretId=arns["CloseApiKeySecret"])["Description"] == "Close"


def test_create_secrets_refuses_a_logical_id_the_template_lacks(secrets_client: SecretsManagerClient) -> None:
    with pytest.raises(ValueError, match="NoSuchSecret"):
        create_secrets(secrets_client, f"t{uuid.uuid4().hex[:8]}", {"NoSuchSecret": "x"})


def test_the_moto_server_loses_no_delivery_when_receives_deletes_and_visibility_changes_overlap(
    queues: Queues, moto_server: str
) -> None:
    # moto's SQS models take no lock. A delete rebuilt the queue's list from a copy, and a message
    # sent meanwhile was lost; a receive that read the set of in-flight messages while a delete
    # or a visibility change edited it failed with a 500 after marking messages received, which
    # then sat out their whole visibility timeout, their group's later messages behind them. SQS
    # loses no delivery, so the local moto serialises those changes.
    client = boto3.client(
        "sqs", endpoint_url=moto_server, region_name=REGION, config=Config(retries={"max_attempts": 1})
    )
    url = queues.events_url
    groups, per_group = 60, 6
    bodies = [f"{g}:{n}" for n in range(per_group) for g in range(groups)]  # groups interleaved

    def send(chunk: list[str]) -> None:
        client.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": b, "MessageGroupId": b.split(":")[0], "MessageDeduplicationId": b}
                for i, b in enumerate(chunk)
            ],
        )

    def send_all(chunks: list[list[str]]) -> None:
        for chunk in chunks:
            try:
                send(chunk)
            except ClientError as exc:
                errors.append(repr(exc))

    chunks = [bodies[start : start + 10] for start in range(0, len(bodies), 10)]
    half = len(chunks) // 2
    errors: list[str] = []
    send_all(chunks[:half])  # the rest is sent while the consumers delete
    handled: dict[str, list[str]] = {str(g): [] for g in range(groups)}
    put_back: set[str] = set()
    lock = threading.Lock()
    deadline = time.monotonic() + 20  # a lost delivery stays hidden for 30 s

    def consume() -> None:
        while time.monotonic() < deadline and sum(map(len, handled.values())) < len(bodies):
            try:
                answer = client.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=30
                )
                returned: set[str] = set()  # groups put back: their later messages in this batch follow
                for message in answer.get("Messages", []):
                    body, handle = message["Body"], message["ReceiptHandle"]
                    group = body.split(":")[0]
                    with lock:
                        again = group in returned or (body not in put_back and len(put_back) < len(bodies) // 2)
                        put_back.add(body)
                    if again:  # the first delivery of half the messages goes back at once
                        returned.add(group)
                        client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
                        continue
                    client.delete_message(QueueUrl=url, ReceiptHandle=handle)
                    with lock:
                        handled[group].append(body)
            except ClientError as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=consume) for _ in range(6)]
    threads.append(threading.Thread(target=send_all, args=(chunks[half:],)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert handled == {str(g): [f"{g}:{n}" for n in range(per_group)] for g in range(groups)}


def test_the_moto_server_hands_out_a_fifo_group_in_order_after_its_visibility_ends(queues: Queues) -> None:
    # Two messages of one group received together and never deleted come back together once
    # their visibility ends: SQS hands out the older one first. moto dropped each from its
    # in-flight set only as its scan reached it, so the older one still saw the newer one in
    # flight, was skipped, and the newer one came first.
    client, url = queues.client, queues.events_url
    for n in (1, 2):
        client.send_message(
            QueueUrl=url, MessageBody=f"m{n}", MessageGroupId="task_1", MessageDeduplicationId=f"ev_{n}"
        )
    both = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]
    assert [m["Body"] for m in both] == ["m1", "m2"]
    time.sleep(1.5)  # the visibility timeout itself is what is under test
    [first] = client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    assert first["Body"] == "m1"
