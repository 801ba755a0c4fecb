"""Close and ChartMogul models against real payloads (events/payloads/, docs/upstream-apis.md)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from tasksync.errors import InvalidInput
from tasksync.models._parsing import format_utc, parse_model
from tasksync.models.chartmogul import ChartMogulTask, TaskFields, normalize_due_date
from tasksync.models.close import CloseEvent, CloseLead, CloseTask, CloseWebhook, task_snapshot_event
from tasksync.models.queue import QueuedEvent

# A real task.lead created webhook (events/payloads/close-task-created.json; trimmed of nothing we rely on).
F1: dict[str, Any] = {
    "subscription_id": "whsub_1vT2aEze4uUzQlqLIBExYl",
    "event": {
        "id": "ev_34bKnJcMX9UnRJmuGH5Jtr",
        "date_created": "2025-02-28T19:20:45.507000",
        "date_updated": "2025-02-28T19:20:45.507000",
        "organization_id": "orga_0Vf4MtLblgQtq68DQaNmLsVkdaXRpilGNkXNSOOc7zw",
        "user_id": "user_8HHUh3SH67YzD8IMakjKoJ9SWputzlUdaihCG95g7as",
        "object_type": "task.lead",
        "object_id": "task_CIRBr39mOsTfWAc3ErihkSt4cX0PlVBpTovHGNj939w",
        "lead_id": "lead_mtonPqjLkC0X93AW6evKVa1Sbpq7l8opyuaV5olT2Cf",
        "action": "created",
        "changed_fields": [],
        "meta": {"request_path": "/api/v1/task/", "request_method": "POST"},
        "data": {
            "_type": "lead",
            "object_type": None,
            "contact_id": None,
            "is_complete": False,
            "assigned_to_name": "Barbara Pigg",
            "id": "task_CIRBr39mOsTfWAc3ErihkSt4cX0PlVBpTovHGNj939w",
            "is_new": True,
            "date": "2025-03-01",
            "date_updated": "2025-02-28T19:20:45.505000+00:00",
            "is_dateless": False,
            "lead_id": "lead_mtonPqjLkC0X93AW6evKVa1Sbpq7l8opyuaV5olT2Cf",
            "due_date": "2025-03-01",
            "assigned_to": "user_8HHUh3SH67YzD8IMakjKoJ9SWputzlUdaihCG95g7as",
            "text": "Instantly: Test20250227",
            "lead_name": "Test Instantly20250228132044",
            "view": None,
            "date_created": "2025-02-28T19:20:45.505000+00:00",
        },
        "previous_data": {},
    },
}


def test_real_webhook_parses_and_naive_event_timestamps_are_utc() -> None:
    webhook = CloseWebhook.model_validate(F1)
    event = webhook.event
    assert event.date_updated == datetime(2025, 2, 28, 19, 20, 45, 507000, tzinfo=UTC)
    assert event.is_task_event
    assert event.is_relevant
    assert event.task_type == "lead"
    assert event.close_task_id == "task_CIRBr39mOsTfWAc3ErihkSt4cX0PlVBpTovHGNj939w"
    task = event.task()
    assert task is not None
    assert task.date == date(2025, 3, 1)
    assert task.type == "lead"


def test_task_date_may_be_a_datetime_with_an_offset() -> None:
    data = copy.deepcopy(F1["event"]["data"])
    data["date"] = "2025-11-05T00:00:00-08:00"
    task = CloseTask.model_validate(data)
    assert task.date == datetime(2025, 11, 5, 8, 0, tzinfo=UTC)


def test_unknown_fields_are_ignored() -> None:
    raw = copy.deepcopy(F1)
    raw["event"]["brand_new_field"] = {"x": 1}
    raw["event"]["data"]["another"] = [1, 2]
    assert CloseWebhook.model_validate(raw).event.id == "ev_34bKnJcMX9UnRJmuGH5Jtr"


def test_invalid_task_data_raises_a_typed_error_naming_the_field() -> None:
    raw = copy.deepcopy(F1)
    raw["event"]["data"]["date_updated"] = "not a date"
    event = CloseWebhook.model_validate(raw).event
    with pytest.raises(InvalidInput) as caught:
        event.task()
    assert caught.value.field == "event.data.date_updated"


def test_parse_model_names_nested_fields() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_model(CloseWebhook, {"subscription_id": "whsub_1", "event": {"id": "ev"}}, "webhook")
    assert caught.value.field.startswith("webhook.event.")


def test_deleted_event_without_data_still_names_its_task() -> None:
    event = CloseEvent.model_validate(
        {
            "id": "ev_1",
            "object_type": "task.lead",
            "action": "deleted",
            "object_id": "task_9",
            "date_created": "2025-01-01T00:00:00",
            "date_updated": "2025-01-01T00:00:00",
            "data": None,
            "previous_data": {"id": "task_9", "_type": "lead"},
        }
    )
    assert event.close_task_id == "task_9"
    assert event.task() is None


def test_completion_activity_names_the_task_in_data_or_previous_data() -> None:
    created = CloseEvent.model_validate(
        {
            "id": "ev_2",
            "object_type": "activity.task_completed",
            "action": "created",
            "object_id": "acti_1",
            "date_created": "2025-01-01T00:00:00",
            "date_updated": "2025-01-01T00:00:00",
            "data": {
                "id": "acti_1",
                "task_id": "task_9",
                "activity_at": "2025-01-01T10:00:00+00:00",
                "date_created": "2025-01-01T10:00:01+00:00",
            },
        }
    )
    assert created.is_completion_activity
    assert created.close_task_id == "task_9"
    completion = created.completion()
    assert completion is not None
    assert completion.completed_at == datetime(2025, 1, 1, 10, 0, tzinfo=UTC)


def test_lead_collects_flat_custom_fields_and_distinct_emails() -> None:
    lead = CloseLead.model_validate(
        {
            "id": "lead_1",
            "contacts": [
                {"emails": [{"email": "A@x.example", "type": "office"}, {"email": "b@x.example"}]},
                {"emails": [{"email": "a@x.example"}]},
            ],
            "custom.cf_abc": "cus_123",
            "custom": {"Legacy Name": "v"},
        }
    )
    assert lead.emails == ["a@x.example", "b@x.example"]
    assert lead.custom_field("cf_abc") == "cus_123"
    assert lead.custom_field("custom.cf_abc") == "cus_123"
    assert lead.custom_field("Legacy Name") == "v"


def test_snapshot_event_ids_are_stable_per_task_version() -> None:
    task = CloseTask.model_validate(F1["event"]["data"])
    first = task_snapshot_event(task, F1["event"]["data"])
    second = task_snapshot_event(task, F1["event"]["data"])
    assert first["id"] == second["id"]
    assert CloseEvent.model_validate(first).task() == task


@pytest.mark.parametrize("date", ["2025-03-01", "2025-03-01T09:30:00+02:00", None])
def test_a_snapshot_of_a_parsed_task_parses_back_to_the_same_task(date: str | None) -> None:
    # Backfill builds snapshots from the CloseTask the client parsed: no raw JSON left to carry.
    task = CloseTask.model_validate({**F1["event"]["data"], "date": date})
    event = task_snapshot_event(task)
    assert event["id"] == task_snapshot_event(task, F1["event"]["data"])["id"]
    assert CloseEvent.model_validate(event).task() == task


def test_chartmogul_task_parses_a_real_response() -> None:
    task = ChartMogulTask.model_validate(
        {
            "task_uuid": "1aeae108-217b-11f0-b2b4-5b42f025062c",
            "customer_uuid": "cus_9c8cc2bd-762e-4d93-ae34-1cfb53a53f64",
            "task_details": "This is some task details text.",
            "assignee": "keith+test1@chartmogul.com",
            "due_date": "2025-04-30T00:00:00.000Z",
            "completed_at": None,
            "created_at": "2025-04-25T02:15:06.474Z",
            "updated_at": "2025-04-25T02:15:06.474Z",
        }
    )
    assert normalize_due_date(task.due_date) == "2025-04-30"


def test_task_fields_diff_and_fingerprint() -> None:
    before = TaskFields(task_details="a", assignee="x@y", due_date="2025-01-01")
    after = before.model_copy(update={"completed_at": "2025-01-02T00:00:00Z"})
    assert after.changes_from(before) == {"completed_at": "2025-01-02T00:00:00Z"}
    assert after.changes_from(after) == {}
    assert before.fingerprint() != after.fingerprint()
    with pytest.raises(ValueError, match="255"):
        TaskFields(task_details="x" * 256, assignee="x@y", due_date="2025-01-01")


def test_format_utc_sorts_in_time_order() -> None:
    early = format_utc(datetime(2025, 1, 1, 23, 0, tzinfo=UTC))
    late = format_utc(datetime.fromisoformat("2025-01-01T19:00:00-05:00"))
    assert early < late


@pytest.mark.parametrize("moment", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
@pytest.mark.parametrize("field", ["event.date_updated", "event.data.date", "event.data.date_updated"])
def test_a_timestamp_past_the_calendars_edge_in_utc_is_invalid_input(field: str, moment: str) -> None:
    webhook = copy.deepcopy(F1)
    *parents, name = field.split(".")
    target = webhook
    for part in parents:
        target = target[part]
    target[name] = moment
    # In UTC these fall outside year 1..9999: datetime raises OverflowError, which must not
    # escape validation (the receiver, the worker and the reconciler parse events this way).
    # The task in `data` is validated when it is read (event.task()), the event itself at once.
    with pytest.raises(InvalidInput):
        parse_model(CloseWebhook, webhook, "webhook").event.task()
    body = json.dumps({"subscription_id": webhook["subscription_id"], **webhook["event"]})
    with pytest.raises(InvalidInput):
        QueuedEvent.from_message_body(body).event.task()
