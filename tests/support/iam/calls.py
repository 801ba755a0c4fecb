"""AWS calls, as IAM sees them: (action, resource) pairs in terms of template.yaml's logical ids.

A recorded call names a concrete resource (a table name, a queue URL, a secret ARN). The tests
build every resource from template.yaml under a per-run prefix (tasksync_dev.local.template's
`local_*_name`): `<prefix>-StateTable`, `<prefix>-EventQueue.fifo`, `<prefix>/CloseApiKeySecret`
(an ARN adds `-` and six random characters). So the logical id is the name's last segment.
A name that is not a template resource maps to `?<name>`, which no grant matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# IAM has no action of its own for these operations: each is authorised as the action named
# here (per entry in the request). DynamoDB: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
# SQS batch actions: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html
_BATCH_ACTIONS = {
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
}
_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_SECRET_ARN_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


@dataclass(frozen=True, order=True)
class Permission:
    """One IAM action on one resource, the resource named by its logical id (plus a sub-path)."""

    action: str  # "dynamodb:Query"
    resource: str  # "StateTable/index/ParkedIndex", "EventQueue", "CloseApiKeySecret", "*"

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}"


def logical_id(name: str, known: frozenset[str]) -> str:
    """The template logical id a test resource name stands for, or `?<name>`."""
    last = re.split(r"[-/:]", name.removesuffix(".fifo"))[-1]
    if last in known:
        return last
    # A secret ARN: .../secret:<prefix>/<LogicalId>-AbCdEf
    unsuffixed = _SECRET_ARN_SUFFIX.sub("", name)
    last = re.split(r"[-/:]", unsuffixed)[-1]
    return last if last in known else f"?{name}"


def _dynamodb(operation: str, params: Mapping[str, Any], known: frozenset[str]) -> Iterator[Permission]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        for item in params.get("TransactItems", []):
            for kind, body in item.items():
                yield Permission(f"dynamodb:{_TRANSACT_ITEM_ACTIONS[kind]}", logical_id(body["TableName"], known))
        return
    if operation in ("BatchGetItem", "BatchWriteItem"):
        for table in params.get("RequestItems", {}):
            yield Permission(f"dynamodb:{operation}", logical_id(table, known))
        return
    table = logical_id(str(params.get("TableName", "*")), known)
    index = params.get("IndexName")
    yield Permission(f"dynamodb:{operation}", f"{table}/index/{index}" if index else table)


def permissions_of_call(
    service: str, operation: str, params: Mapping[str, Any], known: frozenset[str]
) -> list[Permission]:
    """The IAM permissions one API call needs (service = the signing name: dynamodb, sqs, ...)."""
    if service == "dynamodb":
        return list(_dynamodb(operation, params, known))
    action = f"{service}:{_BATCH_ACTIONS.get((service, operation), operation)}"
    if service == "sqs" and "QueueUrl" in params:
        return [Permission(action, logical_id(urlsplit(str(params["QueueUrl"])).path.rstrip("/"), known))]
    if service == "secretsmanager" and "SecretId" in params:
        return [Permission(action, logical_id(str(params["SecretId"]), known))]
    return [Permission(action, "*")]
