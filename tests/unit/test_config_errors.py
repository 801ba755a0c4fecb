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


@pytest.mark.parametrize("value", ["bogus", "leads", "lead,missedcall"])
def test_task_types_are_checked_against_closes_task_types(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        SyncSettings.from_env({"TASK_TYPES": value})
    message = str(caught.value)
    assert message.startswith("invalid TASK_TYPES: 1 of the ")
    assert " names are not Close task types; expected some of: answered_detached_call, email_followup," in message
    assert value.rsplit(",", maxsplit=1)[-1] not in message  # never echoed: it may be a key pasted in the wrong place


def test_every_documented_task_type_is_accepted() -> None:
    every = "lead, incoming_email,email_followup,missed_call,answered_detached_call,voicemail,opportunity_due"
    settings = SyncSettings.from_env({"TASK_TYPES": every + ",incoming_sms,outgoing_call"})
    assert len(settings.task_types) == 9


def test_the_template_refuses_what_the_settings_refuse() -> None:
    import re

    from tasksync.config import CLOSE_TASK_TYPES
    from tasksync_dev.local.template import load_template

    pattern = load_template()["Parameters"]["TaskTypes"]["AllowedPattern"]
    assert re.fullmatch(pattern, "lead, outgoing_call")
    assert re.fullmatch(pattern, ",".join(sorted(CLOSE_TASK_TYPES)))
    for bad in ("leads", "lead,", "bogus", ""):
        assert not re.fullmatch(pattern, bad), bad
