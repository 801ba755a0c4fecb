"""The receiver's dict-level envelope check against the pydantic model the worker parses with.

Properties, for Close-shaped envelopes with fields replaced, removed or added:
- whatever the dict-level check accepts, `CloseWebhook` accepts too (else the receiver would
  queue a message the worker can only dead-letter);
- for an accepted event, the queue message (body, group id, deduplication id) the receiver
  builds is byte for byte the one `QueuedEvent` builds from the model;
- the relevance rule and the task id agree.

With TASKSYNC_CHAOS=full it runs 10,000 cases; by default a few hundred.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tasksync.errors import InvalidInput
from tasksync.models import queue_message
from tasksync.models._parsing import parse_model
from tasksync.models.close import CloseWebhook
from tasksync.models.envelope import parse_envelope
from tasksync.models.queue import QueuedEvent

FULL = os.environ.get("TASKSYNC_CHAOS", "").strip().lower() == "full"
EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = [
    json.loads((EVENTS / "payloads" / name).read_text("utf-8"))
    for name in ("close-task-created.json", "close-lead-created.json", "close-task-created-by-sequence.json")
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
timestamps = st.one_of(
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.isoformat(timespec="seconds") + "Z"),
    st.builds(
        lambda moment, hours, minutes, sign: f"{moment.isoformat()}{sign}{hours:02d}:{minutes:02d}",
        st.datetimes(),
        st.integers(0, 25),
        st.integers(0, 59),
        st.sampled_from("+-"),
    ),
    st.sampled_from(
        [
            "2025-02-28",
            "2025-02-28 19:20:45",
            "2025-02-28T19:20",
            "2025-02-28T19:20:45.1234567",
            "2025-02-30T19:20:45",
            "2025-02-28T19:20:60",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "1740770445",
        ]
    ),
)
field_values = json_values | timestamps | st.sampled_from(["task.lead", "activity.task_completed", "created", ""])
ids = st.none() | st.text(max_size=12) | st.sampled_from(["task_1", "task with spaces", "x" * 200])


# Built once: a strategy made inside the composite is looked up again on every draw.
booleans = st.booleans()
SAMPLE_INDEXES = st.sampled_from(range(len(SAMPLES)))
# Which fields of each sample's event to replace or remove: its own, and some it may lack.
EXTRA_FIELDS = {"object_id", "date_created", "date_updated", "changed_fields", "meta", "previous_data"}
CHANGED_FIELDS = [
    st.lists(st.sampled_from(sorted({*sample["event"], *EXTRA_FIELDS})), max_size=3, unique=True) for sample in SAMPLES
]
OBJECT_TYPES = st.sampled_from(["task.lead", "task.email", "activity.task_completed", "lead"])
ACTIONS = st.sampled_from(["created", "updated", "completed", "deleted", "snapshot", "merged"])
TASK_IDS = ids | json_values
ONE_IN_10 = st.integers(0, 9)
ONE_IN_20 = st.integers(0, 19)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    index = draw(SAMPLE_INDEXES)
    envelope: dict[str, Any] = json.loads(json.dumps(SAMPLES[index]))
    event = envelope["event"]
    for name in draw(CHANGED_FIELDS[index]):
        if draw(booleans):
            event.pop(name, None)
        else:
            event[name] = draw(field_values)
    if draw(booleans):
        event["object_type"] = draw(OBJECT_TYPES)
        event["action"] = draw(ACTIONS)
    for source in ("data", "previous_data"):
        if isinstance(event.get(source), dict) and draw(booleans):
            event[source]["id" if draw(booleans) else "task_id"] = draw(TASK_IDS)
    if draw(booleans):
        event["object_id"] = draw(ids)
    if draw(ONE_IN_10) == 0:
        envelope["subscription_id"] = draw(json_values)
    if draw(ONE_IN_20) == 0:
        envelope["event"] = draw(json_values)
    return envelope


@settings(max_examples=10_000 if FULL else 500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelope=envelopes())
def test_what_the_receiver_accepts_the_worker_parses_into_the_same_message(envelope: dict[str, Any]) -> None:
    try:
        checked = parse_envelope(envelope)
    except InvalidInput as exc:
        event(f"refused {exc.field}")
        return
    model = parse_model(CloseWebhook, envelope, "body")
    event("accepted, relevant" if checked.event.is_relevant else "accepted, ignored")
    webhook_event = checked.event
    assert webhook_event.id == model.event.id
    assert webhook_event.is_relevant == model.event.is_relevant
    assert webhook_event.close_task_id == model.event.close_task_id
    queued = QueuedEvent(model.event, envelope["event"], model.subscription_id)
    assert (
        queue_message.group_id(webhook_event.close_task_id, webhook_event.object_id, webhook_event.id)
        == queued.group_id
    )
    assert queue_message.deduplication_id(webhook_event.id, webhook_event.date_updated) == queued.deduplication_id
    assert queue_message.message_body(checked.raw_event, checked.subscription_id) == queued.message_body()


@pytest.mark.parametrize("sample", SAMPLES, ids=["task", "lead", "sequence-task"])
def test_close_samples_pass_both_checks(sample: dict[str, Any]) -> None:
    checked = parse_envelope(sample)
    assert parse_model(CloseWebhook, sample, "body").event.id == checked.event.id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subscription_id": ""}, "body.subscription_id"),
        ({"event": None}, "body.event"),
        ({"event": {"id": "ev_1"}}, "body.event.object_type"),
    ],
)
def test_a_refusal_names_the_field(change: dict[str, Any], field: str) -> None:
    envelope = {**SAMPLES[0], **change}
    with pytest.raises(InvalidInput) as caught:
        parse_envelope(envelope)
    assert caught.value.field == field


def test_a_timestamp_whose_utc_form_overflows_is_refused_not_raised() -> None:
    envelope = json.loads(json.dumps(SAMPLES[0]))
    envelope["event"]["date_updated"] = "0001-01-01T00:00:00+01:00"
    with pytest.raises(InvalidInput) as caught:
        parse_envelope(envelope)
    assert caught.value.field == "body.event.date_updated"
