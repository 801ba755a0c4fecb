"""The functions' IAM policies against the AWS calls their code made in this test session.

moto and DynamoDB Local enforce no IAM, so a missing grant passes every other test and fails
only in AWS (AccessDenied). Here every call a handler made during the integration and e2e tests
(tests/support/iam/recording.py) must be granted by its role in template.yaml, and every inline
grant must be used by some call. What AWS itself needs (logs, X-Ray, the SQS poller) is granted
by SAM's managed policies, listed with their reasons in tests/support/iam/grants.py.

This module runs last (the recording plugin orders it so). A partial run (-k, one folder) still
checks that every recorded call is granted; "granted but never called" needs the whole
recording and is skipped without it, except under `make test`, where it fails instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.iam.grants import SAM_PYTHON, compare, function_roles
from tests.support.iam.recording import REQUIRED_VARIABLE, coverage_required, recorded, recording_gaps


def _skip_or_fail(reason: str) -> None:
    if coverage_required():
        pytest.fail(f"{reason} ({REQUIRED_VARIABLE}=required)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def roles() -> dict[str, Any]:
    if not SAM_PYTHON.exists():
        _skip_or_fail("the SAM venv (.venv-sam) is not installed: run `make setup`")
    return function_roles()


def test_the_template_holds_only_statements_the_check_understands(roles: dict[str, Any]) -> None:
    assert compare({}, roles).problems == []


def test_every_aws_call_a_function_made_is_granted_to_it(roles: dict[str, Any]) -> None:
    missing = compare(recorded(), roles).missing
    assert missing == [], "calls the template does not grant (AccessDenied in AWS):\n" + "\n".join(missing)


def test_every_grant_is_used_by_a_call_of_its_function(roles: dict[str, Any]) -> None:
    gaps = recording_gaps()
    if gaps:
        _skip_or_fail("the recording is incomplete: " + "; ".join(gaps))
    calls = recorded()
    assert calls, "no function made any AWS call: is the recording plugin loaded?"
    unused = compare(calls, roles).unused
    assert unused == [], "granted but never called (remove, or explain in AWS_SERVICE_POLICIES):\n" + "\n".join(unused)
