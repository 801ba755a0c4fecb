"""The IAM coverage check's own tables: calls to IAM permissions, template resources to patterns."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.iam.calls import Permission, logical_id, permissions_of_call
from tests.support.iam.grants import AWS_SERVICE_POLICIES, Grant, compare, grants_of_role, resource_pattern

KNOWN = frozenset({"StateTable", "IdempotencyTable", "EventQueue", "EventDLQ", "CloseApiKeySecret"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("t0123abcd-StateTable", "StateTable"),
        ("/123456789012/tasksync-a1b2c3-EventDLQ.fifo", "EventDLQ"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:t01/CloseApiKeySecret-AbC123", "CloseApiKeySecret"),
        ("t01/CloseApiKeySecret", "CloseApiKeySecret"),
        ("t01-OtherTable", "?t01-OtherTable"),
    ],
)
def test_a_test_resource_name_maps_to_its_template_logical_id(name: str, expected: str) -> None:
    assert logical_id(name, KNOWN) == expected


def test_batch_and_transaction_calls_need_the_actions_of_their_entries() -> None:
    transact = {
        "TransactItems": [
            {"Put": {"TableName": "t-StateTable"}},
            {"ConditionCheck": {"TableName": "t-StateTable"}},
            {"Update": {"TableName": "t-IdempotencyTable"}},
        ]
    }
    assert permissions_of_call("dynamodb", "TransactWriteItems", transact, KNOWN) == [
        Permission("dynamodb:PutItem", "StateTable"),
        Permission("dynamodb:ConditionCheckItem", "StateTable"),
        Permission("dynamodb:UpdateItem", "IdempotencyTable"),
    ]
    batch = {"QueueUrl": "http://127.0.0.1:1/123456789012/t-EventQueue.fifo", "Entries": []}
    assert permissions_of_call("sqs", "SendMessageBatch", batch, KNOWN) == [Permission("sqs:SendMessage", "EventQueue")]
    query = {"TableName": "t-StateTable", "IndexName": "ParkedIndex"}
    assert permissions_of_call("dynamodb", "Query", query, KNOWN) == [
        Permission("dynamodb:Query", "StateTable/index/ParkedIndex")
    ]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ({"Fn::GetAtt": ["EventQueue", "Arn"]}, "EventQueue"),
        ({"Ref": "CloseApiKeySecret"}, "CloseApiKeySecret"),
        (
            {
                "Fn::Sub": [
                    "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${tableName}/index/*",
                    {"tableName": {"Ref": "StateTable"}},
                ]
            },
            "StateTable/index/*",
        ),
        ({"Fn::Sub": "${EventDLQ.Arn}"}, "EventDLQ"),
        ("*", "*"),
        ({"Fn::ImportValue": "x"}, '?{"Fn::ImportValue": "x"}'),
    ],
)
def test_a_statement_resource_reads_back_to_a_logical_id_pattern(written: Any, expected: str) -> None:
    assert resource_pattern(written) == expected


def test_a_grant_matches_by_action_and_resource_pattern() -> None:
    grant = Grant("dynamodb:Query", "StateTable/index/*", "inline")
    assert grant.allows(Permission("dynamodb:Query", "StateTable/index/ParkedIndex"))
    assert not grant.allows(Permission("dynamodb:Query", "StateTable"))
    assert not grant.allows(Permission("dynamodb:Scan", "StateTable/index/ParkedIndex"))


def _role(*statements: dict[str, Any], managed: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"managed": list(managed), "statements": list(statements)}


def test_the_comparison_fails_both_ways_and_spares_only_the_listed_managed_policies() -> None:
    poller = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
    roles = {
        "Worker": _role(
            {
                "Effect": "Allow",
                "Action": ["sqs:ChangeMessageVisibility"],
                "Resource": {"Fn::GetAtt": ["EventQueue", "Arn"]},
            },
            {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": {"Fn::GetAtt": ["StateTable", "Arn"]}},
            managed=(poller,),
        )
    }
    recorded = {
        "Worker": {
            Permission("sqs:ChangeMessageVisibility", "EventQueue"),
            Permission("sqs:SendMessage", "EventDLQ"),
            Permission("sqs:DeleteMessage", "EventQueue"),  # granted by the poller's managed policy
            Permission("sqs:SendMessage", "?/1/t-EventQueue.fifo-missing"),  # not a template resource
        }
    }
    coverage = compare(recorded, roles)
    assert coverage.missing == ["Worker: sqs:SendMessage on EventDLQ"]
    assert coverage.unused == ["Worker: dynamodb:Scan on StateTable"]
    assert coverage.problems == []
    assert poller in AWS_SERVICE_POLICIES


def test_statements_the_check_cannot_read_are_problems_not_grants() -> None:
    role = _role(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*", "Condition": {"Bool": {}}},
        {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": "*"},
        managed=("arn:aws:iam::aws:policy/AdministratorAccess",),
    )
    grants, problems = grants_of_role(role)
    assert grants == []
    assert len(problems) == 3


def test_a_conditional_resource_grants_its_branch_and_no_value_grants_nothing() -> None:
    role = _role(
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [
                {"Ref": "CloseApiKeySecret"},
                {"Fn::If": ["SyncsCompletionBack", {"Ref": "ChartMogulApiKeySecret"}, {"Ref": "AWS::NoValue"}]},
            ],
        }
    )
    grants, problems = grants_of_role(role)
    assert [g.resource for g in grants] == ["CloseApiKeySecret", "ChartMogulApiKeySecret"]
    assert problems == []


def test_a_conditional_statement_grants_its_branch() -> None:
    scan = {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": {"Fn::GetAtt": ["StateTable", "Arn"]}}
    grants, problems = grants_of_role(_role({"Fn::If": ["SyncsCompletionBack", scan, {"Ref": "AWS::NoValue"}]}))
    assert [str(g) for g in grants] == ["dynamodb:Scan on StateTable"]
    assert problems == []
