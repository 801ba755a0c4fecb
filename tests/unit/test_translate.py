"""Translation from a Close task to ChartMogul fields (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tasksync.logic.translate import completed_at, due_date, summary, task_fields, trim_details
from tasksync.models.close import CloseTask

CREATED = "2025-02-28T19:20:45.505000+00:00"


def close_task(**overrides: Any) -> CloseTask:
    data: dict[str, Any] = {
        "_type": "lead",
        "id": "task_1",
        "lead_id": "lead_1",
        "lead_name": "Acme",
        "text": "Call the CFO about renewal",
        "date": "2025-03-01",
        "is_complete": False,
        "date_created": CREATED,
        "date_updated": CREATED,
        "assigned_to": "user_1",
    }
    data.update(overrides)
    return CloseTask.model_validate(data)


class TestTrimDetails:
    def test_short_text_is_kept_with_whitespace_collapsed(self) -> None:
        assert trim_details("  Call   the\nCFO ") == "Call the CFO"

    def test_long_text_is_cut_at_a_word_boundary_and_ends_with_an_ellipsis(self) -> None:
        text = " ".join(["renewal"] * 60)  # 479 characters
        trimmed = trim_details(text)
        assert len(trimmed) <= 255
        assert trimmed.endswith("…")
        assert trimmed[:-1].split(" ")[-1] == "renewal"

    def test_a_single_huge_word_is_cut_hard(self) -> None:
        trimmed = trim_details("x" * 400)
        assert len(trimmed) == 255
        assert trimmed == "x" * 254 + "…"

    def test_exactly_255_characters_is_not_cut(self) -> None:
        assert trim_details("a" * 255) == "a" * 255


class TestSummary:
    def test_lead_task_uses_its_text(self) -> None:
        assert summary(close_task()) == "Call the CFO about renewal"

    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            (
                {"_type": "missed_call", "phone_formatted": "+1 415-555-0100", "contact_name": "Ann"},
                "Missed call from +1 415-555-0100 (Ann)",
            ),
            (
                {"_type": "voicemail", "phone": "+14155550100", "contact_name": None, "lead_name": None},
                "Voicemail from +14155550100",
            ),
            ({"_type": "email_followup", "subject": "Pricing"}, "Follow up: Pricing"),
            ({"_type": "incoming_email", "subject": "Re: contract"}, "Reply to email: Re: contract"),
            ({"_type": "incoming_sms", "remote_phone": "+1555", "text": "call me"}, "Reply to SMS from +1555: call me"),
            ({"_type": "opportunity_due", "text": "Q3 upsell"}, "Opportunity due: Q3 upsell"),
            ({"_type": "outgoing_call", "contact_name": "Bruce", "text": "Qualify"}, "Call Bruce: Qualify"),
            ({"_type": "something_new", "text": None, "subject": None}, "Close something new task"),
        ],
    )
    def test_other_types_get_a_readable_summary(self, fields: dict[str, Any], expected: str) -> None:
        assert summary(close_task(**fields)) == expected

    def test_empty_lead_text_falls_back_to_the_lead_name(self) -> None:
        assert summary(close_task(text="   ")) == "Close task on Acme"


class TestDueDate:
    def test_date_only_stays_a_date(self) -> None:
        assert due_date(close_task(date="2025-03-01")) == "2025-03-01"

    def test_datetime_with_offset_becomes_utc(self) -> None:
        assert due_date(close_task(date="2025-03-01T09:30:00-05:00")) == "2025-03-01T14:30:00Z"

    def test_dateless_task_uses_its_creation_date(self) -> None:
        assert due_date(close_task(date=None, is_dateless=True)) == "2025-02-28"

    def test_is_dateless_wins_over_a_leftover_date(self) -> None:
        assert due_date(close_task(date="2030-01-01", is_dateless=True)) == "2025-02-28"


class TestCompletedAt:
    event_time = datetime(2025, 3, 2, 10, 0, tzinfo=UTC)

    def test_open_task_has_none_even_when_it_was_completed_before(self) -> None:
        task = close_task(is_complete=False)
        assert (
            completed_at(
                task, completion_hint=None, event_time=self.event_time, previously_completed_at="2025-03-01T00:00:00Z"
            )
            is None
        )

    def test_completion_activity_time_wins(self) -> None:
        hint = datetime(2025, 3, 2, 9, 59, 58, tzinfo=UTC)
        assert (
            completed_at(
                close_task(is_complete=True),
                completion_hint=hint,
                event_time=self.event_time,
                previously_completed_at=None,
            )
            == "2025-03-02T09:59:58Z"
        )

    def test_without_activity_the_event_time_is_used(self) -> None:
        assert (
            completed_at(
                close_task(is_complete=True),
                completion_hint=None,
                event_time=self.event_time,
                previously_completed_at=None,
            )
            == "2025-03-02T10:00:00Z"
        )

    def test_an_edit_of_a_completed_task_keeps_its_completion_time(self) -> None:
        assert (
            completed_at(
                close_task(is_complete=True),
                completion_hint=None,
                event_time=self.event_time,
                previously_completed_at="2025-03-01T08:00:00Z",
            )
            == "2025-03-01T08:00:00Z"
        )


def test_task_fields_combine_everything() -> None:
    fields = task_fields(
        close_task(is_complete=True),
        assignee="rep@cm.example",
        completion_hint=None,
        event_time=datetime(2025, 3, 2, tzinfo=UTC),
        previously_completed_at=None,
    )
    assert fields.model_dump() == {
        "task_details": "Call the CFO about renewal",
        "assignee": "rep@cm.example",
        "due_date": "2025-03-01",
        "completed_at": "2025-03-02T00:00:00Z",
    }
