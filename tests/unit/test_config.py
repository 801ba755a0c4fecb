"""SyncSettings: the configuration contract read from the environment."""

from __future__ import annotations

import pytest

from tasksync.config import SyncSettings
from tasksync.errors import InvalidInput


def test_defaults() -> None:
    settings = SyncSettings.from_env({})
    assert settings.close_api_url == "https://api.close.com/api/v1"
    assert settings.chartmogul_api_url == "https://api.chartmogul.com/v1"
    assert settings.task_types == frozenset({"lead"})
    assert settings.reconcile_interval_seconds == 300
    assert not settings.create_missing_customers
    assert not settings.auto_resume_webhook


def test_values_are_parsed_from_strings() -> None:
    settings = SyncSettings.from_env(
        {
            "TASK_TYPES": "lead, missed_call,,",
            "ASSIGNEE_MAP": '{"Ann@Close.example": "ann@cm.example"}',
            "DEFAULT_ASSIGNEE": "cs@cm.example",
            "CREATE_MISSING_CUSTOMERS": "true",
            "AUTO_RESUME_WEBHOOK": "1",
            "CHARTMOGUL_API_URL": "http://127.0.0.1:9/v1/",
            "CLOSE_CUSTOMER_FIELD": "  ",
        }
    )
    assert settings.task_types == frozenset({"lead", "missed_call"})
    assert settings.assignee_map == {"ann@close.example": "ann@cm.example"}
    assert settings.create_missing_customers
    assert settings.auto_resume_webhook
    assert settings.chartmogul_api_url == "http://127.0.0.1:9/v1"
    assert settings.close_customer_field is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ASSIGNEE_MAP", "not json"),
        ("ASSIGNEE_MAP", "[1, 2]"),
        ("TASK_TYPES", " , "),
        ("RECONCILE_INTERVAL_SECONDS", "0"),
        ("CLOSE_API_URL", "ftp://x"),
        ("CREATE_MISSING_CUSTOMERS", "perhaps"),
    ],
)
def test_bad_values_raise_an_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        SyncSettings.from_env({name: value})
    assert caught.value.field == name


def test_secrets_never_show_in_repr_or_errors() -> None:
    settings = SyncSettings.from_env({"CLOSE_API_KEY": "api_SECRET123", "CHARTMOGUL_API_KEY": "cmSECRET456"})
    assert "SECRET" not in repr(settings)
    with pytest.raises(InvalidInput) as caught:
        SyncSettings.from_env({"CLOSE_API_KEY": "api_SECRET123", "RECONCILE_INTERVAL_SECONDS": "SECRET"})
    assert "SECRET" not in str(caught.value)


def test_assignee_rule_map_then_own_email_then_default_for_no_assignee() -> None:
    mapped = SyncSettings.from_env(
        {
            "ASSIGNEE_MAP": '{"ann@close.example": "ann@cm.example"}',
            "DEFAULT_ASSIGNEE": "cs@cm.example",
        }
    )
    assert mapped.chartmogul_assignee_for("Ann@close.example") == "ann@cm.example"
    # An unmapped user keeps their own email: DEFAULT_ASSIGNEE is only a fallback.
    assert mapped.chartmogul_assignee_for("bob@close.example") == "bob@close.example"
    assert mapped.chartmogul_assignee_for(None) == "cs@cm.example"
    no_default = SyncSettings.from_env({})
    assert no_default.chartmogul_assignee_for("bob@close.example") == "bob@close.example"
    assert no_default.chartmogul_assignee_for(None) is None
    given_as_a_dict = SyncSettings.model_validate({"assignee_map": {" Ann@Close.Example": "ann@cm.example"}})
    assert given_as_a_dict.chartmogul_assignee_for("ann@close.example") == "ann@cm.example"


@pytest.mark.parametrize("name", ["CLOSE_API_URL", "CHARTMOGUL_API_URL"])
@pytest.mark.parametrize(
    "url",
    [
        "http://api.close.com/api/v1",
        "http://127.0.0.1.nip.io:8080/v1",
        "http://10.0.0.1/v1",
        "https://user:pass@api.close.com/api/v1",
        "https:///v1",
    ],
)
def test_api_urls_must_be_https_except_on_loopback(name: str, url: str) -> None:
    # The API key is sent with every request: never in clear over a network.
    with pytest.raises(InvalidInput) as caught:
        SyncSettings.from_env({name: url})
    assert caught.value.field == name


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/api/v1", "http://127.1.2.3/v1", "http://localhost:9/v1", "http://[::1]:9/v1"]
)
def test_plain_http_is_accepted_for_loopback_hosts(url: str) -> None:
    assert SyncSettings.from_env({"CLOSE_API_URL": url}).close_api_url == url.rstrip("/")
