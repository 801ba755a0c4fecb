"""The assignee rule's decisions (AssigneeResolver), with in-memory stand-ins for Close and DynamoDB."""

from __future__ import annotations

from typing import Any

import pytest

from tasksync.config import SyncSettings
from tasksync.errors import NotFound
from tasksync.logic.assignees import REFUSED_ASSIGNEE_TTL_SECONDS, AssigneeResolver
from tasksync.models.close import CloseUser

USERS = {"user_ann": "Ann@Close.Example", "user_bob": "bob@close.example", "user_noemail": ""}


class Close:
    calls = 0

    def get_user(self, user_id: str) -> CloseUser:
        self.calls += 1
        if user_id not in USERS:
            raise NotFound("close", "GET", f"/user/{user_id}/", 404, '{"error": "Not found"}')
        return CloseUser.model_validate({"id": user_id, "email": USERS[user_id]})


class Memory:
    """User emails and refusals, as the StateCache keeps them (without expiry)."""

    def __init__(self) -> None:
        self.emails: dict[str, str] = {}
        self.refusals: dict[str, tuple[str, int]] = {}

    def get_user_email(self, user_id: str) -> str | None:
        return self.emails.get(user_id)

    def put_user_email(self, user_id: str, email: str, ttl_seconds: int) -> None:
        self.emails[user_id] = email

    def assignee_refusal(self, email: str) -> str | None:
        entry = self.refusals.get(email.lower())
        return entry[0] if entry else None

    def note_assignee_refusal(self, email: str, refusal: str, ttl_seconds: int) -> None:
        self.refusals[email.lower()] = (refusal, ttl_seconds)

    # The rest of the LookupCache port, unused here.
    def get_customer(self, lead_id: str) -> str | None:
        return None

    def put_customer(self, lead_id: str, customer_uuid: str, ttl_seconds: int) -> None:
        pass

    def forget_customer(self, lead_id: str) -> None:
        pass


def resolver(**settings: Any) -> tuple[AssigneeResolver, Memory]:
    memory = Memory()
    close: Any = Close()
    return AssigneeResolver(SyncSettings.model_validate(settings), close, memory, refusals=memory), memory


def test_map_first_then_the_own_email() -> None:
    assignees, _ = resolver(assignee_map={"ann@close.example": "ann@cm.example"}, default_assignee="ops@cm.example")
    assert assignees.choose("user_ann").email == "ann@cm.example"
    bob = assignees.choose("user_bob")
    assert (bob.email, bob.reason) == ("bob@close.example", None)


@pytest.mark.parametrize(
    ("user", "why"),
    [(None, "no assignee"), ("user_gone", "cannot be read (404)"), ("user_noemail", "has no email")],
)
def test_the_default_is_the_fallback_for_nobody_to_name(user: str | None, why: str) -> None:
    assignees, _ = resolver(default_assignee="ops@cm.example")
    choice = assignees.choose(user)
    assert choice.email == "ops@cm.example"
    assert why in (choice.reason or "")


def test_a_refusal_is_remembered_for_a_day_and_sends_the_next_task_to_the_default() -> None:
    assignees, memory = resolver(default_assignee="ops@cm.example")
    instead = assignees.refused("bob@close.example", "HTTP 422")
    assert instead.email == "ops@cm.example"
    assert memory.refusals == {"bob@close.example": ("HTTP 422", REFUSED_ASSIGNEE_TTL_SECONDS)}
    again = assignees.choose("user_bob")
    assert again.email == "ops@cm.example"
    assert "bob@close.example" in (again.reason or "")


def test_without_a_default_nobody_is_named_and_the_reason_names_the_email() -> None:
    assignees, _ = resolver()
    refused = assignees.refused("bob@close.example", "HTTP 400")
    assert refused.email is None
    assert "bob@close.example" in (refused.reason or "")
    assert "ASSIGNEE_MAP" in (refused.reason or "")
    assert assignees.choose("user_bob").email is None
    assert assignees.choose(None).email is None


def test_a_refused_default_is_not_tried_again() -> None:
    assignees, _ = resolver(default_assignee="ops@cm.example")
    assert assignees.refused("OPS@cm.example", "HTTP 422").email is None


def test_without_a_default_a_mirrored_task_keeps_its_assignee() -> None:
    assignees, _ = resolver()
    assert assignees.choose(None, keep="ann@cm.example").email == "ann@cm.example"
    assert assignees.refused("bob@close.example", "HTTP 422", keep="ann@cm.example").email == "ann@cm.example"
    # Never "keep" the very email that was refused.
    assert assignees.refused("ann@cm.example", "HTTP 422", keep="Ann@CM.example").email is None
