"""A setting that does not parse is reported in our words: the variable and the form it expects,
never pydantic's wording ("Value error, ...", "Input should be ...") and never the value itself."""

from __future__ import annotations

import pytest

from tasksync.config import SyncSettings
from tasksync.errors import InvalidInput


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CREATE_MISSING_CUSTOMERS", "maybe", "invalid CREATE_MISSING_CUSTOMERS: expected true or false"),
        ("AUTO_RESUME_WEBHOOK", "yes please", "invalid AUTO_RESUME_WEBHOOK: expected true or false"),
        ("SIGNATURE_TOLERANCE_SECONDS", "5m", "invalid SIGNATURE_TOLERANCE_SECONDS: expected a whole number"),
        ("SIGNATURE_TOLERANCE_SECONDS", "-1", "invalid SIGNATURE_TOLERANCE_SECONDS: expected a number of at least 0"),
        ("HTTP_READ_TIMEOUT", "soon", "invalid HTTP_READ_TIMEOUT: expected a number"),
        ("HTTP_READ_TIMEOUT", "0", "invalid HTTP_READ_TIMEOUT: expected a number above 0"),
        ("RETRY_MAX_SECONDS", "99999", "invalid RETRY_MAX_SECONDS: expected a number of at most 43200"),
        (
            "TASK_TYPES",
            " , ",
            "invalid TASK_TYPES: expected comma-separated Close task types, e.g. 'lead' or 'lead,outgoing_call'",
        ),
        ("ASSIGNEE_MAP", "[1]", "invalid ASSIGNEE_MAP: must be a JSON object of Close email to ChartMogul email"),
    ],
)
def test_a_bad_setting_names_the_variable_and_the_expected_form(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        SyncSettings.from_env({name: value})
    assert str(caught.value) == message
    assert "Value error" not in str(caught.value)
    assert "Input should" not in str(caught.value)
