"""The data resources in template.yaml have the shape the engine's code relies on."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.template import (
    load_template,
    local_queue_name,
    queue_definitions,
    secret_definitions,
    table_definitions,
)

FOURTEEN_DAYS = 14 * 24 * 3600
# SAM's documented default when neither the function nor Globals sets a Timeout.
SAM_DEFAULT_TIMEOUT_SECONDS = 3


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _index(definition: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [index for index in definition.get("GlobalSecondaryIndexes", []) if index["IndexName"] == name]
    assert len(matches) == 1, f"expected one GSI named {name}"
    index: dict[str, Any] = matches[0]
    return index


def test_state_table_is_keyed_by_pk_with_ttl_expires_at(template: dict[str, Any]) -> None:
    state = table_definitions(template)["StateTable"]
    create = state["create_table"]
    assert create["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert create["BillingMode"] == "PAY_PER_REQUEST"
    assert state["ttl_attribute"] == "expires_at"
    types = {d["AttributeName"]: d["AttributeType"] for d in create["AttributeDefinitions"]}
    assert types == {"pk": "S", "parked_pk": "S", "retry_at": "N"}


def test_state_table_has_sparse_parked_index(template: dict[str, Any]) -> None:
    create = table_definitions(template)["StateTable"]["create_table"]
    parked = _index(create, "ParkedIndex")
    assert parked["KeySchema"] == [
        {"AttributeName": "parked_pk", "KeyType": "HASH"},
        {"AttributeName": "retry_at", "KeyType": "RANGE"},
    ]
    # Sparse: only items that carry parked_pk appear, so parked_pk must not be the table key.
    assert all(key["AttributeName"] != "parked_pk" for key in create["KeySchema"])
    assert parked["Projection"]["ProjectionType"] == "ALL"


def test_idempotency_table_matches_powertools_defaults(template: dict[str, Any]) -> None:
    idempotency = table_definitions(template)["IdempotencyTable"]
    assert idempotency["create_table"]["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert idempotency["ttl_attribute"] == "expiration"


def test_event_queue_is_fifo_with_a_fifo_dead_letter_queue(template: dict[str, Any]) -> None:
    queues = queue_definitions(template)
    events = queues["EventQueue"]
    assert events["fifo"] is True
    assert events["attributes"]["ContentBasedDeduplication"] is False
    assert events["attributes"]["DeduplicationScope"] == "messageGroup"
    assert events["attributes"]["FifoThroughputLimit"] == "perMessageGroupId"
    redrive = events["redrive"]
    assert redrive is not None
    assert redrive["max_receive_count"] >= 1
    dlq = queues[redrive["dead_letter_queue"]]
    # A FIFO queue's dead-letter queue must be FIFO too.
    assert dlq["fifo"] is True
    assert dlq["attributes"]["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert dlq["redrive"] is None
    # Messages must outlive their retries in the source queue.
    assert events["attributes"]["MessageRetentionPeriod"] <= dlq["attributes"]["MessageRetentionPeriod"]


def _function_timeout(template: dict[str, Any], logical_id: str) -> int:
    props = template["Resources"][logical_id].get("Properties") or {}
    globals_timeout = ((template.get("Globals") or {}).get("Function") or {}).get("Timeout")
    timeout = props.get("Timeout", globals_timeout)
    return int(timeout) if timeout is not None else SAM_DEFAULT_TIMEOUT_SECONDS


def _functions_consuming(template: dict[str, Any], queue_id: str) -> set[str]:
    consumers = set()
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            continue
        events = (resource.get("Properties") or {}).get("Events") or {}
        for event in events.values():
            queue = (event.get("Properties") or {}).get("Queue")
            if event.get("Type") == "SQS" and queue in ({"Fn::GetAtt": [queue_id, "Arn"]}, {"Ref": queue_id}):
                consumers.add(logical_id)
    return consumers


def test_event_queue_visibility_covers_six_worker_timeouts(template: dict[str, Any]) -> None:
    visibility = queue_definitions(template)["EventQueue"]["attributes"]["VisibilityTimeout"]
    workers = _functions_consuming(template, "EventQueue")
    if "WorkerFunction" in template["Resources"]:
        workers.add("WorkerFunction")
        assert _functions_consuming(template, "EventQueue") == {"WorkerFunction"}, (
            "WorkerFunction is the queue's worker"
        )
    # Without a worker in the template, only the queue's own setting can be checked.
    assert isinstance(visibility, int)
    assert visibility > 0
    for worker in workers:
        timeout = _function_timeout(template, worker)
        assert visibility >= 6 * timeout, f"{worker}: VisibilityTimeout {visibility} < 6 x Timeout {timeout}"


def test_secret_definitions_lists_only_secrets(template: dict[str, Any]) -> None:
    declared = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::SecretsManager::Secret"
    }
    assert set(secret_definitions(template)) == declared


def test_loader_reads_cloudformation_short_tags(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        textwrap.dedent(
            """
            Conditions:
              IsProd: !Equals [!Ref Stage, prod]
              NotProd: !Not [!Condition IsProd]
            Resources:
              Thing:
                Type: Custom::Thing
                Properties:
                  Arn: !GetAtt Queue.Arn
                  Nested: !GetAtt [Queue, QueueName]
                  Name: !Sub "${AWS::StackName}-x"
                  Pair: !Sub ["${A}-y", {A: !Ref B}]
                  Maybe: !If [IsProd, !Ref Real, !Ref "AWS::NoValue"]
                  Joined: !Join [",", [a, b]]
                  First: !Select [0, !Split [",", "a,b"]]
                  Encoded: !Base64 text
            """
        ),
        encoding="utf-8",
    )
    loaded = load_template(path)
    props = loaded["Resources"]["Thing"]["Properties"]
    assert loaded["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert loaded["Conditions"]["NotProd"] == {"Fn::Not": [{"Condition": "IsProd"}]}
    assert props["Arn"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert props["Nested"] == {"Fn::GetAtt": ["Queue", "QueueName"]}
    assert props["Name"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert props["Pair"] == {"Fn::Sub": ["${A}-y", {"A": {"Ref": "B"}}]}
    assert props["Maybe"] == {"Fn::If": ["IsProd", {"Ref": "Real"}, {"Ref": "AWS::NoValue"}]}
    assert props["Joined"] == {"Fn::Join": [",", ["a", "b"]]}
    assert props["First"] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert props["Encoded"] == {"Fn::Base64": "text"}


def test_loader_rejects_a_file_that_is_not_a_template(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("just: data\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no Resources"):
        load_template(path)


def test_local_queue_names_keep_the_fifo_suffix() -> None:
    assert local_queue_name("t1", "EventQueue", fifo=True) == "t1-EventQueue.fifo"
    assert local_queue_name("t1", "Plain", fifo=False) == "t1-Plain"
