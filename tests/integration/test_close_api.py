"""CloseClient against the Close simulator over real HTTP on 127.0.0.1: tasks, users and leads, and the
client's settings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tasksync.config import SyncSettings
from tasksync.dal.close_api import CloseClient
from tasksync.errors import InvalidInput, NotFound
from tasksync.models.close import CloseTask
from tasksync_dev.sandbox.close import BASE_PATH, CloseSimulator
from tests.support.close_sandbox import raw_close_get


# ===================================================================== tasks, users, leads
def test_get_task_returns_the_parsed_close_task(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    task = close_sim.create_task(
        lead_id=close_demo["acme"], text="Call Acme", assigned_to=close_demo["alice"], date="2025-03-01"
    )

    fetched = close_client.get_task(task["id"])

    assert fetched == CloseTask.model_validate(task)
    assert fetched.id == task["id"]
    assert fetched.id.startswith("task_")
    assert fetched.type == "lead"
    assert fetched.lead_name == "Acme Corp"
    assert fetched.assigned_to_name == "Alice Archer"
    assert fetched.date == date(2025, 3, 1)
    assert fetched.is_dateless is False
    assert fetched.date_updated.tzinfo is not None
    assert close_client.calls == 1


def test_unknown_and_deleted_tasks_are_not_found(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    task = close_sim.create_task(lead_id=close_demo["acme"], text="Soon gone")
    close_sim.delete_task(task["id"])

    with pytest.raises(NotFound):
        close_client.get_task(task["id"])
    with pytest.raises(NotFound):
        close_client.get_task("task_doesNotExist")


def test_get_user(close_client: CloseClient, close_demo: dict[str, str]) -> None:
    user = close_client.get_user(close_demo["bob"])

    assert (user.id, user.email, user.first_name, user.last_name) == (
        close_demo["bob"],
        "bob@sales.example",
        "Bob",
        "Baker",
    )


def test_get_lead_has_contact_emails_and_custom_fields(close_sim: CloseSimulator, close_client: CloseClient) -> None:
    lead_id = close_sim.add_lead(
        "Umbrella",
        emails=["Ops@Umbrella.example", "cfo@umbrella.example"],
        custom={"cf_chartmogul_uuid": "cus_123", "cf_tags": ["a", "b"]},
    )["id"]

    lead = close_client.get_lead(lead_id)

    assert lead.id == lead_id
    assert lead.display_name == "Umbrella"
    assert lead.emails == ["ops@umbrella.example", "cfo@umbrella.example"]
    assert lead.custom_field("cf_chartmogul_uuid") == "cus_123"
    assert lead.custom_field("custom.cf_tags") == ["a", "b"]
    (call,) = close_sim.calls_to("GET", "/lead/")
    assert call.query["_fields"] == "id,name,display_name,date_created,contacts,custom"
    # The simulator honours `_fields`: only the asked-for keys come back.
    raw = raw_close_get(close_sim, f"/lead/{lead_id}/", _fields="id,custom").json()
    assert set(raw) == {"id", "custom.cf_chartmogul_uuid", "custom.cf_tags"}


def test_an_unparseable_answer_raises_invalid_input_naming_the_field(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    task = close_sim.create_task(lead_id=close_demo["acme"], text="Broken", date_updated="last tuesday")

    with pytest.raises(InvalidInput) as caught:
        close_client.get_task(task["id"])

    assert caught.value.field == "close.task.date_updated"


def test_iter_tasks_pages_with_skip_and_filters_types(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    lead_tasks = [close_sim.create_task(lead_id=close_demo["acme"], text=f"Task {n}")["id"] for n in range(7)]
    missed = close_sim.create_task(lead_id=close_demo["globex"], text="Missed call", task_type="missed_call")["id"]

    paged = [task.id for task in close_client.iter_tasks(task_types=frozenset({"lead"}), limit=3)]

    assert paged == lead_tasks  # oldest first, each exactly once
    calls = close_sim.calls_to("GET", "/task/$")
    assert [(c.query["_skip"], c.query["_limit"], c.query["_type"]) for c in calls] == [
        ("0", "3", "lead"),
        ("3", "3", "lead"),
        ("6", "3", "lead"),
    ]

    both = {task.id for task in close_client.iter_tasks(task_types=frozenset({"lead", "missed_call"}))}
    assert both == {*lead_tasks, missed}
    assert close_sim.calls_to("GET", "/task/$")[-1].query["_type__in"] == "lead,missed_call"
    assert {t.id for t in close_client.iter_tasks(task_types=frozenset({"all"}))} == both


def test_iter_tasks_date_updated_filter(
    close_sim: CloseSimulator, close_client: CloseClient, close_demo: dict[str, str]
) -> None:
    old = close_sim.create_task(lead_id=close_demo["acme"], text="Old")["id"]
    close_sim.advance_clock(600)
    cutoff = datetime.now(UTC) + timedelta(seconds=300)
    new = close_sim.create_task(lead_id=close_demo["acme"], text="New")["id"]

    found = [t.id for t in close_client.iter_tasks(task_types=frozenset({"lead"}), date_updated_gte=cutoff)]

    assert found == [new]
    assert old in close_sim.tasks


def test_task_list_limit_above_100_is_refused(close_sim: CloseSimulator) -> None:
    answer = raw_close_get(close_sim, "/task/", _limit=101)

    assert answer.status_code == 400
    assert "_limit" in answer.json()["field-errors"]


def test_client_from_settings(close_sim: CloseSimulator, close_demo: dict[str, str]) -> None:
    settings = SyncSettings.from_env({"CLOSE_API_URL": f"{close_sim.url}{BASE_PATH}/", "HTTP_READ_TIMEOUT": "4"})
    client = CloseClient.from_settings(settings, close_sim.api_key)

    assert client.timeout == (3.05, 4.0)
    assert client.get_user(close_demo["alice"]).email == "alice@sales.example"
