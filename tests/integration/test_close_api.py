"""CloseClient against the Close simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from tasksync.config import SyncSettings
from tasksync.dal.close_api import CloseClient
from tasksync.errors import (
    InvalidInput,
    NotFound,
    OutcomeUnknown,
    PermanentApiError,
    RateLimited,
    RetryableApiError,
)
from tasksync.logic.signature import SignatureVerdict, verify
from tasksync.models.close import CloseEvent, CloseTask, CloseWebhook
from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.close import BASE_PATH, CloseSimulator

TASK_SELECTORS = [
    {"object_type": "task.lead", "action": action} for action in ("created", "updated", "completed", "deleted")
]


def _client_for(sim: CloseSimulator, api_key: str | None = None) -> CloseClient:
    return CloseClient(base_url=f"{sim.url}{BASE_PATH}", api_key=api_key or sim.api_key, read_timeout=5.0)


@pytest.fixture
def demo(close_sim: CloseSimulator) -> dict[str, str]:
    return close_sim.seed_demo()


@pytest.fixture
def limited_sim() -> Iterator[CloseSimulator]:
    """A simulator allowing one request per second, so the second quick call gets a 429."""
    simulator = CloseSimulator(rate_limit_per_second=1)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def non_admin_sim() -> Iterator[CloseSimulator]:
    """A simulator whose API key belongs to a non-admin user."""
    simulator = CloseSimulator(admin=False)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def _events(client: CloseClient, **filters: Any) -> list[dict[str, Any]]:
    """Every entry of the event-log scan, raw; each must have parsed."""
    entries = [entry for page in client.event_pages(**filters) for entry in page.entries]
    assert [entry.problem for entry in entries if entry.event is None] == []
    return [entry.raw for entry in entries]


def _raw_get(sim: CloseSimulator, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{sim.url}{BASE_PATH}{path}", params=params, auth=(sim.api_key, ""), timeout=5)


# ===================================================================== tasks, users, leads
def test_get_task_returns_the_parsed_close_task(
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    task = close_sim.create_task(lead_id=demo["acme"], text="Call Acme", assigned_to=demo["alice"], date="2025-03-01")

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
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    task = close_sim.create_task(lead_id=demo["acme"], text="Soon gone")
    close_sim.delete_task(task["id"])

    with pytest.raises(NotFound):
        close_client.get_task(task["id"])
    with pytest.raises(NotFound):
        close_client.get_task("task_doesNotExist")


def test_get_user(close_client: CloseClient, demo: dict[str, str]) -> None:
    user = close_client.get_user(demo["bob"])

    assert (user.id, user.email, user.first_name, user.last_name) == (demo["bob"], "bob@sales.example", "Bob", "Baker")


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
    raw = _raw_get(close_sim, f"/lead/{lead_id}/", _fields="id,custom").json()
    assert set(raw) == {"id", "custom.cf_chartmogul_uuid", "custom.cf_tags"}


def test_an_unparseable_answer_raises_invalid_input_naming_the_field(
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    task = close_sim.create_task(lead_id=demo["acme"], text="Broken", date_updated="last tuesday")

    with pytest.raises(InvalidInput) as caught:
        close_client.get_task(task["id"])

    assert caught.value.field == "close.task.date_updated"


def test_iter_tasks_pages_with_skip_and_filters_types(
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    lead_tasks = [close_sim.create_task(lead_id=demo["acme"], text=f"Task {n}")["id"] for n in range(7)]
    missed = close_sim.create_task(lead_id=demo["globex"], text="Missed call", task_type="missed_call")["id"]

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
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    old = close_sim.create_task(lead_id=demo["acme"], text="Old")["id"]
    close_sim.advance_clock(600)
    cutoff = datetime.now(UTC) + timedelta(seconds=300)
    new = close_sim.create_task(lead_id=demo["acme"], text="New")["id"]

    found = [t.id for t in close_client.iter_tasks(task_types=frozenset({"lead"}), date_updated_gte=cutoff)]

    assert found == [new]
    assert old in close_sim.tasks


def test_task_list_limit_above_100_is_refused(close_sim: CloseSimulator) -> None:
    answer = _raw_get(close_sim, "/task/", _limit=101)

    assert answer.status_code == 400
    assert "_limit" in answer.json()["field-errors"]


# ===================================================================== event log
def test_event_pages_follow_cursors_newest_first(
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    created = [close_sim.create_task(lead_id=demo["initech"], text=f"T{n}")["id"] for n in range(61)]

    events = _events(close_client, object_type="task.lead", action="created", date_updated_gte=since)

    assert [e["object_id"] for e in events] == list(reversed(created))
    stamps = [e["date_updated"] for e in events]
    assert stamps == sorted(stamps, reverse=True)
    calls = close_sim.calls_to("GET", "/event/")
    assert len(calls) == 2
    assert all(int(c.query["_limit"]) <= 50 for c in calls)
    assert "_cursor" not in calls[0].query
    assert calls[1].query["_cursor"]
    # The other filters travel with the cursor.
    assert calls[1].query["object_type"] == "task.lead"
    assert calls[1].query["action"] == "created"


def test_event_pages_respect_date_updated_gte(
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    close_sim.create_task(lead_id=demo["acme"], text="Before")
    close_sim.advance_clock(3600)
    since = datetime.now(UTC) + timedelta(minutes=30)
    after = close_sim.create_task(lead_id=demo["acme"], text="After")["id"]

    events = _events(close_client, object_type="task.lead", action="created", date_updated_gte=since)

    assert [e["object_id"] for e in events] == [after]


@pytest.mark.parametrize(
    "params",
    [
        {"object_type": "task.lead"},  # UNVERIFIED combination: the simulator refuses it
        {"action": "created"},
        {"object_type": "task.lead", "action": "created", "request_id": "req_x"},
        {"object_type": "task.lead", "action": "created", "_limit": 51},
        {"object_type": "task.lead", "action": "created", "_cursor": "not-a-cursor"},
    ],
)
def test_event_log_refuses_what_close_refuses(close_sim: CloseSimulator, params: dict[str, Any]) -> None:
    answer = _raw_get(close_sim, "/event/", **params)

    assert answer.status_code == 400
    assert answer.json()["error"]


def test_completing_reopening_and_deleting_log_closes_cascade(
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    task = close_sim.create_task(lead_id=demo["acme"], text="Follow up", assigned_to=demo["alice"])
    close_sim.complete_task(task["id"])
    close_sim.reopen_task(task["id"])
    close_sim.delete_task(task["id"])

    log = [(e["object_type"], e["action"]) for e in close_sim.events if e["lead_id"] == demo["acme"]]
    assert log == [
        ("lead", "created"),
        ("task.lead", "created"),
        ("task.lead", "updated"),
        ("task.lead", "completed"),
        ("activity.task_completed", "created"),
        ("task.lead", "updated"),
        ("activity.task_completed", "deleted"),
        ("task.lead", "deleted"),
    ]
    events = [CloseEvent.model_validate(e) for e in close_sim.events if e["lead_id"] == demo["acme"]][1:]
    assert all(e.close_task_id == task["id"] for e in events)
    created, completing, completed, activity, reopening, unactivity, deleted = events
    assert created.changed_fields == []
    assert created.previous_data == {}
    assert "is_complete" in completing.changed_fields
    assert completing.previous_data is not None
    assert completing.previous_data["is_complete"] is False
    assert completing.data is not None
    assert completing.data["is_complete"] is True
    completed_task = completed.task()
    assert completed_task is not None
    assert completed_task.is_complete
    completion = activity.completion()
    assert completion is not None
    assert completion.task_id == task["id"]
    assert reopening.previous_data == {
        "is_complete": True,
        "date_updated": completing.data["date_updated"],
    }
    assert unactivity.data is None
    assert unactivity.previous_data is not None
    assert unactivity.previous_data["id"] == activity.object_id
    assert deleted.data is None
    assert deleted.previous_data is not None
    assert deleted.previous_data["text"] == "Follow up"
    # Event timestamps are naive UTC, like Close's; they parse as UTC.
    assert "+" not in close_sim.events[-1]["date_created"]
    assert deleted.date_created.tzinfo is not None

    over_http = _events(close_client, object_type="activity.task_completed", action="created", date_updated_gte=since)
    assert [e["data"]["task_id"] for e in over_http] == [task["id"]]
    assert close_sim.deleted_task_ids == {task["id"]}


def test_reassign_move_and_delete_lead(close_sim: CloseSimulator, demo: dict[str, str]) -> None:
    task = close_sim.create_task(lead_id=demo["acme"], text="Hand over", assigned_to=demo["alice"])
    close_sim.reassign_task(task["id"], demo["bob"])
    close_sim.move_task(task["id"], demo["globex"])
    close_sim.delete_lead(demo["globex"])

    reassigned, moved, deleted = [e for e in close_sim.events if e["object_id"] == task["id"]][1:]
    assert {"assigned_to", "assigned_to_name"} <= set(reassigned["changed_fields"])
    assert reassigned["previous_data"]["assigned_to"] == demo["alice"]
    assert reassigned["data"]["assigned_to_name"] == "Bob Baker"
    assert {"lead_id", "lead_name"} <= set(moved["changed_fields"])
    assert moved["previous_data"]["lead_id"] == demo["acme"]
    assert moved["lead_id"] == demo["globex"]
    assert (deleted["action"], deleted["data"]) == ("deleted", None)
    assert close_sim.events[-1]["object_type"] == "lead"
    assert close_sim.events[-1]["action"] == "deleted"
    assert task["id"] not in close_sim.tasks


def test_date_updated_strictly_increases_per_task(close_sim: CloseSimulator, demo: dict[str, str]) -> None:
    task = close_sim.create_task(lead_id=demo["acme"], text="v0")
    versions = [task["date_updated"]]
    for n in range(1, 200):
        versions.append(close_sim.update_task(task["id"], text=f"v{n}")["date_updated"])

    parsed = [datetime.fromisoformat(v) for v in versions]
    assert all(later > earlier for earlier, later in itertools.pairwise(parsed))


def test_non_admin_key_sees_no_data_on_events_older_than_an_hour(non_admin_sim: CloseSimulator) -> None:
    sim = non_admin_sim
    lead = sim.add_lead("Old Co")["id"]
    old = sim.create_task(lead_id=lead, text="Old")["id"]
    sim.advance_clock(3601)
    new = sim.create_task(lead_id=lead, text="New")["id"]
    client = _client_for(sim)

    events = _events(
        client, object_type="task.lead", action="created", date_updated_gte=datetime.now(UTC) - timedelta(days=1)
    )

    assert [(e["object_id"], e["data"] is not None) for e in events] == [(new, True), (old, False)]
    # An admin key sees the data of the same old event.
    sim.admin = True
    events = _events(
        client, object_type="task.lead", action="created", date_updated_gte=datetime.now(UTC) - timedelta(days=1)
    )
    assert all(e["data"] is not None for e in events)


# ===================================================================== failures
def test_wrong_key_is_permanent_and_never_echoed(close_sim: CloseSimulator) -> None:
    secret = "wrong-key-0123456789abcdef"
    client = _client_for(close_sim, api_key=secret)

    with pytest.raises(PermanentApiError) as caught:
        client.get_user("user_x")

    assert caught.value.status == 401
    assert not isinstance(caught.value, NotFound)
    assert secret not in str(caught.value)
    assert secret not in caught.value.body
    assert close_sim.api_key not in str(caught.value)


def test_rate_limited_write_raises_with_the_header_wait(limited_sim: CloseSimulator) -> None:
    client = _client_for(limited_sim)
    deadline = time.monotonic() + 5
    with pytest.raises(RateLimited) as caught:  # noqa: PT012 - loop until the window fills
        while time.monotonic() < deadline:
            client.create_webhook(url=f"https://hooks.example/{time.monotonic_ns()}", events=TASK_SELECTORS)

    # Close sends both headers; the wait is the larger: a decimal reset <= 1 s, retry-after 1 s.
    assert caught.value.retry_after == 1.0
    assert caught.value.status == 429
    refused = limited_sim.calls[-1]
    assert (refused.method, refused.status) == ("POST", 429)
    assert len(limited_sim.calls_to("POST", "/webhook/")) == len(limited_sim.subscriptions) + 1


def test_429_carries_ratelimit_and_retry_after_headers(limited_sim: CloseSimulator) -> None:
    answers = [_raw_get(limited_sim, "/webhook/") for _ in range(3)]

    assert "RateLimit" in answers[0].headers  # also on successful answers
    limited = next(a for a in answers if a.status_code == 429)
    header = limited.headers["RateLimit"]
    assert header.startswith("limit=1, remaining=0, reset=")
    assert 0 < float(header.rsplit("=", 1)[1]) <= 1
    assert limited.headers["retry-after"] == "1"


def test_rate_limited_get_is_retried_once_after_the_wait(limited_sim: CloseSimulator) -> None:
    client = _client_for(limited_sim)
    limited_sim.seed_demo()
    user_id = next(iter(limited_sim.users))

    client.get_user(user_id)
    user = client.get_user(user_id)  # 429, then one retry after the advised wait

    assert user.id == user_id
    assert [c.status for c in limited_sim.calls_to("GET", "/user/")] == [200, 429, 200]
    assert client.calls == 3


def test_a_get_still_limited_after_its_one_retry_raises(
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    close_sim.inject(FaultPlan(rate_limit_rate=1.0, methods=frozenset({"GET"})))

    with pytest.raises(RateLimited) as caught:
        close_client.get_user(demo["alice"])

    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 1.0
    assert len(close_sim.calls_to("GET", "/user/")) == 2


def test_injected_server_error_is_retryable(
    close_sim: CloseSimulator, close_client: CloseClient, demo: dict[str, str]
) -> None:
    close_sim.inject(FaultPlan(error_rate=1.0, seed=7))

    with pytest.raises(RetryableApiError) as caught:
        close_client.get_lead(demo["acme"])

    assert not isinstance(caught.value, RateLimited)
    assert caught.value.status is not None
    assert caught.value.status >= 500
    assert len(close_sim.calls_to("GET", "/lead/")) == 1  # 5xx is the queue's to retry


def test_lost_response_on_a_write_is_outcome_unknown(close_sim: CloseSimulator, close_client: CloseClient) -> None:
    close_sim.inject(FaultPlan(lose_response_rate=1.0, methods=frozenset({"POST"})))

    with pytest.raises(OutcomeUnknown):
        close_client.create_webhook(url="https://hooks.example/lost", events=TASK_SELECTORS)

    # The write happened even though the client never heard back.
    assert [s["url"] for s in close_sim.subscriptions.values()] == ["https://hooks.example/lost"]


# ===================================================================== webhook subscriptions
def test_webhook_subscription_lifecycle(close_sim: CloseSimulator, close_client: CloseClient) -> None:
    created = close_client.create_webhook(url="https://hooks.example/close", events=TASK_SELECTORS)

    assert created.id.startswith("whsub_")
    assert created.signature_key is not None
    key = created.signature_key.get_secret_value()
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key not in repr(created)
    assert [(e.object_type, e.action) for e in created.events] == [
        (s["object_type"], s["action"]) for s in TASK_SELECTORS
    ]
    assert close_client.get_webhook(created.id).url == "https://hooks.example/close"
    assert [w.id for w in close_client.list_webhooks()] == [created.id]

    paused = close_client.update_webhook(created.id, status="paused")
    assert paused.is_paused
    assert paused.pause_reason == "api"
    resumed = close_client.update_webhook(created.id, status="active")
    assert not resumed.is_paused
    assert resumed.pause_reason is None

    close_sim.pause_subscription(created.id)
    seen = close_client.get_webhook(created.id)
    assert (seen.status, seen.pause_reason) == ("paused", "failures")

    close_client.delete_webhook(created.id)
    with pytest.raises(NotFound):
        close_client.get_webhook(created.id)
    with pytest.raises(NotFound):
        close_client.delete_webhook(created.id)


def test_duplicate_active_subscription_is_refused_with_its_id(close_client: CloseClient) -> None:
    first = close_client.create_webhook(url="https://hooks.example/dup", events=TASK_SELECTORS)

    with pytest.raises(PermanentApiError) as caught:
        close_client.create_webhook(url="https://hooks.example/dup", events=TASK_SELECTORS)

    assert caught.value.status == 400
    assert "Duplicate active subscription" in caught.value.body
    assert first.id in caught.value.body


def test_invalid_subscription_body_names_the_field(close_sim: CloseSimulator) -> None:
    answer = requests.post(
        f"{close_sim.url}{BASE_PATH}/webhook/",
        json={"url": "ftp://nope", "events": []},
        auth=(close_sim.api_key, ""),
        timeout=5,
    )

    assert answer.status_code == 400
    assert set(answer.json()["field-errors"]) == {"url", "events"}


def test_signed_delivery_verifies_with_the_subscription_key(close_sim: CloseSimulator, demo: dict[str, str]) -> None:
    subscription = close_sim.create_subscription("https://hooks.example/signed", TASK_SELECTORS)
    close_sim.create_task(lead_id=demo["acme"], text="Deliver me")
    (event,) = close_sim.events_matching(subscription["id"])

    body, headers = close_sim.signed_delivery(event, subscription["id"])

    verdict = verify(
        signature_key_hex=subscription["signature_key"],
        timestamp=headers["close-sig-timestamp"],
        signature=headers["close-sig-hash"],
        body=body,
        now=time.time(),
        tolerance_seconds=300,
    )
    assert verdict is SignatureVerdict.VALID
    assert headers["content-type"] == "application/json"
    envelope = CloseWebhook.model_validate_json(body)
    assert envelope.subscription_id == subscription["id"]
    assert envelope.event.id == event["id"]
    tampered = verify(
        signature_key_hex=subscription["signature_key"],
        timestamp=headers["close-sig-timestamp"],
        signature=headers["close-sig-hash"],
        body=body.replace(b"Deliver me", b"Deliver you"),
        now=time.time(),
        tolerance_seconds=300,
    )
    assert tampered is SignatureVerdict.MISMATCH
    _, fixed = close_sim.signed_delivery(event, subscription["id"], timestamp=1_700_000_000)
    assert fixed["close-sig-timestamp"] == "1700000000"


def test_client_from_settings(close_sim: CloseSimulator, demo: dict[str, str]) -> None:
    settings = SyncSettings.from_env({"CLOSE_API_URL": f"{close_sim.url}{BASE_PATH}/", "HTTP_READ_TIMEOUT": "4"})
    client = CloseClient.from_settings(settings, close_sim.api_key)

    assert client.timeout == (3.05, 4.0)
    assert client.get_user(demo["alice"]).email == "alice@sales.example"
