"""How a Close event becomes an SQS FIFO message (tasksync.dal.queue), without SQS."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tasksync.errors import InvalidInput
from tasksync.models.queue import QueuedEvent, deduplication_id
from tasksync.models.queue_message import MAX_MESSAGE_BYTES

EVENTS = Path(__file__).resolve().parents[2] / "events"
TASK_ID = "task_CIRBr39mOsTfWAc3ErihkSt4cX0PlVBpTovHGNj939w"


def raw_created() -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads((EVENTS / "payloads" / "close-task-created.json").read_text("utf-8"))
    event: dict[str, Any] = envelope["event"]
    return event


def test_deduplication_id_is_sha256_of_event_id_and_version() -> None:
    queued = QueuedEvent.from_raw(raw_created())
    expected = hashlib.sha256(b"ev_34bKnJcMX9UnRJmuGH5Jtr|2025-02-28T19:20:45.507000+00:00").hexdigest()
    assert queued.deduplication_id == expected
    assert len(expected) <= 128


def test_a_consolidated_event_is_a_new_message_and_a_redelivery_is_not() -> None:
    first = QueuedEvent.from_raw(raw_created())
    again = QueuedEvent.from_raw(raw_created())
    consolidated_raw = {**raw_created(), "date_updated": "2025-02-28T19:20:47.001000"}
    consolidated = QueuedEvent.from_raw(consolidated_raw)
    assert first.deduplication_id == again.deduplication_id
    assert consolidated.deduplication_id != first.deduplication_id
    assert deduplication_id(consolidated.event) == consolidated.deduplication_id


def test_task_events_are_grouped_by_task() -> None:
    assert QueuedEvent.from_raw(raw_created()).group_id == TASK_ID
    deleted = {**raw_created(), "action": "deleted", "data": None, "previous_data": raw_created()["data"]}
    assert QueuedEvent.from_raw(deleted).group_id == TASK_ID


def test_a_completion_activity_is_grouped_with_its_task() -> None:
    activity = {
        "id": "ev_1",
        "object_type": "activity.task_completed",
        "action": "created",
        "object_id": "acti_1",
        "date_created": "2025-03-01T09:12:03.114000",
        "date_updated": "2025-03-01T09:12:03.114000",
        "data": {"id": "acti_1", "task_id": TASK_ID, "date_created": "2025-03-01T09:12:03.114000+00:00"},
    }
    assert QueuedEvent.from_raw(activity).group_id == TASK_ID


def test_without_a_task_id_the_group_falls_back_to_the_object_then_the_event() -> None:
    base = {"id": "ev_9", "object_type": "lead", "action": "created", "date_created": "2025-01-01T00:00:00"}
    base["date_updated"] = base["date_created"]
    assert QueuedEvent.from_raw({**base, "object_id": "lead_1"}).group_id == "lead_1"
    assert QueuedEvent.from_raw(base).group_id == "ev_9"


def test_a_group_id_sqs_would_refuse_is_hashed_consistently() -> None:
    odd = {**raw_created(), "object_id": "task with spaces é"}
    group = QueuedEvent.from_raw(odd).group_id
    assert group == hashlib.sha256("task with spaces é".encode()).hexdigest()
    assert QueuedEvent.from_raw(odd).group_id == group


def test_the_body_is_the_raw_event_plus_the_subscription_and_round_trips() -> None:
    queued = QueuedEvent.from_raw(raw_created(), "whsub_1")
    body = queued.message_body()
    assert json.loads(body) == {**raw_created(), "subscription_id": "whsub_1"}
    back = QueuedEvent.from_message_body(body)
    assert dict(back.raw_event) == raw_created()
    assert back.subscription_id == "whsub_1"
    assert back.event == queued.event


def test_events_without_a_subscription_carry_null() -> None:
    body = QueuedEvent.from_raw(raw_created()).message_body()
    assert json.loads(body)["subscription_id"] is None
    assert QueuedEvent.from_message_body(body).subscription_id is None


def test_non_ascii_text_stays_utf8_so_the_message_is_not_inflated() -> None:
    raw = raw_created()
    raw["data"]["text"] = "Rückruf vereinbaren – 日本"
    body = QueuedEvent.from_raw(raw).message_body()
    assert "Rückruf vereinbaren – 日本" in body


@pytest.mark.parametrize("text", ["\ud800 lone surrogate", "bad \ufffe char", "bell \x07"])
def test_characters_sqs_refuses_are_escaped(text: str) -> None:
    raw = raw_created()
    raw["data"]["text"] = text
    body = QueuedEvent.from_raw(raw).message_body()
    body.encode("utf-8")  # a lone surrogate would raise here
    for char in body:
        code = ord(char)
        assert code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000
    assert QueuedEvent.from_message_body(body).raw_event["data"]["text"] == text


def test_an_event_too_large_for_sqs_is_refused() -> None:
    raw = raw_created()
    raw["data"]["text"] = "x" * MAX_MESSAGE_BYTES
    with pytest.raises(InvalidInput, match="SQS takes at most"):
        QueuedEvent.from_raw(raw).message_body()


@pytest.mark.parametrize("body", ["not json", "[]", '{"id": "ev_1"}'])
def test_a_bad_message_body_is_invalid_input(body: str) -> None:
    with pytest.raises(InvalidInput):
        QueuedEvent.from_message_body(body)


def test_the_sample_sqs_event_is_what_the_receiver_would_queue() -> None:
    record = json.loads((EVENTS / "sqs-task-created.json").read_text("utf-8"))["Records"][0]
    queued = QueuedEvent.from_message_body(record["body"])
    assert record["attributes"]["MessageGroupId"] == queued.group_id == TASK_ID
    assert record["attributes"]["MessageDeduplicationId"] == queued.deduplication_id
