"""Each function reads a settings model of only what it uses, validated when it is built."""

from __future__ import annotations

from typing import Any

import pytest

from tasksync import wiring
from tasksync.config import ReconcilerSettings, SyncSettings, WorkerSettings
from tasksync.errors import InvalidInput
from tests.support.template import load_template

SETTINGS_BY_FUNCTION: dict[str, type[WorkerSettings] | type[ReconcilerSettings]] = {
    "WorkerFunction": WorkerSettings,
    "ReconcilerFunction": ReconcilerSettings,
}


def _function_environment(logical_id: str) -> set[str]:
    template = load_template()
    resource: dict[str, Any] = template["Resources"][logical_id]
    return set(resource["Properties"].get("Environment", {}).get("Variables", {}))


@pytest.mark.parametrize("logical_id", sorted(SETTINGS_BY_FUNCTION))
def test_the_template_gives_each_function_only_variables_its_settings_read(logical_id: str) -> None:
    given = {name for name in _function_environment(logical_id) if not name.startswith("POWERTOOLS_")}
    unread = given - SETTINGS_BY_FUNCTION[logical_id].variables()
    assert not unread, f"{logical_id} is given variables its settings model never reads: {sorted(unread)}"


# The deployment wiring each function needs from the template (the rest have working defaults).
WIRING_BY_FUNCTION = {
    "WorkerFunction": {
        "STATE_TABLE",
        "IDEMPOTENCY_TABLE",
        "QUEUE_URL",
        "DLQ_URL",
        "CLOSE_API_KEY_SECRET_ARN",
        "CHARTMOGUL_API_KEY_SECRET_ARN",
    },
    "ReconcilerFunction": {
        "STATE_TABLE",
        "QUEUE_URL",
        "DLQ_URL",
        "CLOSE_API_KEY_SECRET_ARN",
    },
}


@pytest.mark.parametrize("logical_id", sorted(WIRING_BY_FUNCTION))
def test_the_template_gives_each_function_its_wiring(logical_id: str) -> None:
    assert WIRING_BY_FUNCTION[logical_id] <= SETTINGS_BY_FUNCTION[logical_id].variables()
    missing = WIRING_BY_FUNCTION[logical_id] - _function_environment(logical_id)
    assert not missing, f"{logical_id} is not given {sorted(missing)}"


def test_the_reconciler_reads_nothing_of_the_engine_or_the_worker() -> None:
    assert not ReconcilerSettings.variables() & {"ASSIGNEE_MAP", "IDEMPOTENCY_TABLE", "RETRY_MAX_SECONDS"}


def test_the_full_model_reads_every_functions_variables() -> None:
    assert WorkerSettings.variables() | ReconcilerSettings.variables() <= SyncSettings.variables()


@pytest.mark.parametrize(
    ("model", "name", "value"),
    [
        (WorkerSettings, "RETRY_MAX_SECONDS", "-1"),
        (WorkerSettings, "ASSIGNEE_MAP", "not json"),
        (ReconcilerSettings, "AUTO_RESUME_WEBHOOK", "perhaps"),
        (ReconcilerSettings, "TASK_TYPES", " , "),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(
    model: type[WorkerSettings] | type[ReconcilerSettings], name: str, value: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        model.from_env({name: value})
    assert caught.value.field == name


def test_a_function_ignores_a_bad_value_of_a_variable_it_does_not_read() -> None:
    assert ReconcilerSettings.from_env({"ASSIGNEE_MAP": "not json", "RETRY_MAX_SECONDS": "-1"}).state_table
    assert WorkerSettings.from_env({"AUTO_RESUME_WEBHOOK": "perhaps"}).state_table


@pytest.fixture
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients are only built here, never called."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("offline_aws")
def test_the_reconciler_is_built_without_any_chartmogul_setting() -> None:
    scheduled = wiring.reconciler(
        {"CLOSE_API_KEY": "close-key", "QUEUE_URL": "https://sqs.example/1/events.fifo", "STATE_TABLE": "state"}
    )
    assert scheduled.reconciler.settings.state_table == "state"


@pytest.mark.usefixtures("offline_aws")
def test_the_reconciler_needs_chartmogul_only_for_the_sync_back() -> None:
    environ = {"CLOSE_API_KEY": "close-key", "QUEUE_URL": "https://sqs.example/1/events.fifo"}
    assert wiring.reconciler(environ).reconciler is not None
    with pytest.raises(InvalidInput) as caught:
        wiring.reconciler({**environ, "SYNC_COMPLETION_BACK": "true"})
    assert caught.value.field == "CHARTMOGUL_API_KEY"


@pytest.mark.usefixtures("offline_aws")
def test_the_reconciler_without_a_queue_names_the_variable() -> None:
    with pytest.raises(InvalidInput) as caught:
        wiring.reconciler({"CLOSE_API_KEY": "close-key"})
    assert caught.value.field == "QUEUE_URL"


@pytest.mark.usefixtures("offline_aws")
def test_the_worker_without_its_chartmogul_key_names_the_variable() -> None:
    with pytest.raises(InvalidInput) as caught:
        wiring.worker({"CLOSE_API_KEY": "close-key"}, sink=None)  # type: ignore[arg-type]
    assert caught.value.field == "CHARTMOGUL_API_KEY"
