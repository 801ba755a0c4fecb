"""What template.yaml grants each function: its SAM-generated role, as (action, resource) grants.

The role comes from tests/support/iam/sam_roles.py (samtranslator in the SAM venv), so SAM
policy templates are expanded by SAM itself, never by a copy of its tables. Resources are read
back to logical ids: `!GetAtt EventQueue.Arn` and `!Ref CloseApiKeySecret` are `EventQueue` and
`CloseApiKeySecret`; `arn:...:table/${tableName}/index/*` with tableName = `!Ref StateTable` is
`StateTable/index/*`. Anything else is `?<what was written>`, which matches no call.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.iam.calls import Permission
from tests.support.template import REPO_ROOT, TEMPLATE_PATH

SAM_PYTHON = REPO_ROOT / ".venv-sam" / "bin" / "python"

# The managed policies SAM attaches by itself. Their grants are for AWS's own work on the
# function's behalf, not for our code, so no test call needs to use them; any other managed
# policy fails the check until it is listed here with its reason. Contents from the AWS Managed
# Policy Reference (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/).
AWS_SERVICE_POLICIES: dict[str, tuple[str, tuple[str, ...]]] = {
    # Every function: Lambda writes the function's logs to CloudWatch Logs.
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": (
        "CloudWatch Logs for the function's own log output",
        ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"),
    ),
    # `Tracing: Active` (Globals): Lambda sends the invocation's trace segments to X-Ray.
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": (
        "X-Ray active tracing",
        (
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries",
        ),
    ),
    # The SQS event source: Lambda's poller receives, deletes (on success) and inspects the queue.
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": (
        "the SQS event source mapping's poller",
        (
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ),
    ),
}


# Inline grants no test call uses, each kept on purpose: (function, action, resource) -> why.
NEEDED_BUT_NOT_CALLED_IN_TESTS: dict[tuple[str, str, str], str] = {
    # Powertools idempotency reads the existing record with GetItem when a conditional put fails
    # without returning the item; DynamoDB Local (and DynamoDB, since ReturnValuesOnCondition-
    # CheckFailure) return it, so the tests never take that path. It is in Powertools' documented
    # IAM set for the persistence layer.
    ("WorkerFunction", "dynamodb:GetItem", "IdempotencyTable"): "Powertools idempotency's fallback read",
    # The reconciler dead-letters an event-log entry it can never enqueue (a poison event). That
    # path is tested on the Reconciler itself (tests/integration/test_reconciler.py, through its
    # harness), not through the handler, so no recorded call uses it. A handler-level test of a
    # poison event would make this entry unnecessary: then remove it.
    ("ReconcilerFunction", "sqs:SendMessage", "EventDLQ"): "poison event-log entries, tested below the handler",
}


@dataclass(frozen=True)
class Grant:
    """An Allow of one action pattern on one resource pattern (fnmatch: `*`, `?`)."""

    action: str
    resource: str
    source: str  # "inline" or the managed policy ARN

    def allows(self, permission: Permission) -> bool:
        return fnmatch.fnmatchcase(permission.action, self.action) and (
            self.resource == "*" or fnmatch.fnmatchcase(permission.resource, self.resource)
        )

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}"


def _logical_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def resource_pattern(value: Any) -> str:
    """A statement's Resource entry as a logical-id pattern (see the module docstring)."""
    if value == "*":
        return "*"
    logical = _logical_of(value)
    if logical is not None:
        return logical
    if isinstance(value, Mapping) and "Fn::Sub" in value:
        body = value["Fn::Sub"]
        text, variables = (body[0], body[1]) if isinstance(body, list) else (body, {})
        for name, bound in variables.items():
            text = text.replace("${" + name + "}", _logical_of(bound) or "?")
        # Pseudo parameters hold colons (${AWS::Region}); the resource part is what matters.
        text = re.sub(r"\$\{AWS::\w+\}", "-", text)
        # "${EventQueue.Arn}" -> EventQueue
        text = re.sub(r"\$\{(\w+)\.Arn\}", r"\1", text)
        if not text.startswith("arn:"):
            return text if "$" not in text else f"?{text}"
        value = text
    if isinstance(value, str) and value.startswith("arn:"):
        resource = value.split(":", 5)[-1]
        return resource.removeprefix("table/")
    return f"?{json.dumps(value, sort_keys=True)}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resources(value: Any) -> list[Any]:
    """Resources (or statements): both branches of an `!If` count (one of them is deployed), and
    `!Ref AWS::NoValue` (the branch that grants nothing) is dropped."""
    found: list[Any] = []
    for item in _as_list(value):
        if isinstance(item, Mapping) and "Fn::If" in item:
            found += _resources(item["Fn::If"][1:])
        elif item != {"Ref": "AWS::NoValue"}:
            found.append(item)
    return found


def grants_of_role(role: Mapping[str, Any]) -> tuple[list[Grant], list[str]]:
    """(grants, problems) for one function's role as sam_roles.py prints it."""
    grants: list[Grant] = []
    problems: list[str] = []
    for statement in _resources(role["statements"]):  # a statement under `!If` counts too
        unsupported = sorted({"Condition", "NotAction", "NotResource"} & set(statement))
        if statement.get("Effect") != "Allow" or unsupported:
            problems.append(f"a statement this check cannot reason about ({unsupported or statement.get('Effect')})")
            continue
        grants += [
            Grant(action, resource_pattern(resource), "inline")
            for action in _as_list(statement["Action"])
            for resource in _resources(statement["Resource"])
        ]
    for arn in role["managed"]:
        if arn not in AWS_SERVICE_POLICIES:
            problems.append(f"managed policy {arn} is not in AWS_SERVICE_POLICIES (list it, with why)")
            continue
        grants += [Grant(action, "*", arn) for action in AWS_SERVICE_POLICIES[arn][1]]
    return grants, problems


def function_roles(template: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Each function's role from the SAM transform (needs the SAM venv, `make setup`)."""
    script = Path(__file__).with_name("sam_roles.py")
    finished = subprocess.run(
        [str(SAM_PYTHON), str(script), str(template)], capture_output=True, text=True, check=False, timeout=120
    )
    if finished.returncode != 0:
        sys.stderr.write(finished.stderr)
        raise RuntimeError(f"the SAM transform failed (exit {finished.returncode}); see its output above")
    roles: dict[str, Any] = json.loads(finished.stdout)
    return roles


@dataclass
class Coverage:
    """The comparison, per function: calls without a grant, and inline grants without a call."""

    missing: list[str]
    unused: list[str]
    problems: list[str]


def compare(recorded: Mapping[str, set[Permission]], roles: Mapping[str, Any]) -> Coverage:
    coverage = Coverage([], [], [])
    for function in sorted(set(recorded) - set(roles)):
        coverage.problems.append(f"{function}: recorded calls but template.yaml has no such function")
    for function, role in sorted(roles.items()):
        grants, problems = grants_of_role(role)
        coverage.problems += [f"{function}: {problem}" for problem in problems]
        # A call on a resource the template does not declare (a test of a misconfigured
        # environment, e.g. a queue URL that does not exist) is nothing a grant could cover.
        calls = {p for p in recorded.get(function, set()) if not p.resource.startswith("?")}
        coverage.missing += [
            f"{function}: {permission}" for permission in sorted(calls) if not any(g.allows(permission) for g in grants)
        ]
        coverage.unused += [
            f"{function}: {grant}"
            for grant in grants
            if grant.source == "inline"
            and (function, grant.action, grant.resource) not in NEEDED_BUT_NOT_CALLED_IN_TESTS
            and not any(grant.allows(permission) for permission in calls)
        ]
    return coverage
