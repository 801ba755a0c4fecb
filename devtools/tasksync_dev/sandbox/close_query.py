"""The Close simulator's query parameters: paging, time ranges, event filters and cursors.

Parsed at the edge, before a route reads the stores, with the 400s Close answers when a parameter
is not what it accepts (upstream-apis.md, "Close event log" and "Close tasks"). Apart from the
routes (close_http) so that what Close accepts is readable in one place.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime

from tasksync_dev.sandbox.close_event_log import parse_time

# Filter combinations the event log accepts (upstream-apis.md, "Close event log"). `date_updated` ranges may be
# added to any of them. The empty set (no filter) is the plain newest-first listing.
# Not documented: `object_type` without `action` is not in Close's list, so we answer 400.
EVENT_FILTER_KEYS = ("object_type", "object_id", "action", "lead_id", "user_id", "request_id")
SUPPORTED_EVENT_FILTERS = frozenset(
    frozenset(combo)
    for combo in (
        (),
        ("object_type", "object_id"),
        ("object_type", "action"),
        ("object_id", "action"),
        ("lead_id", "object_type"),
        ("lead_id", "object_type", "action"),
        ("lead_id", "user_id", "object_type"),
        ("lead_id", "user_id", "object_type", "action"),
        ("lead_id", "user_id"),
        ("user_id", "object_id"),
        ("user_id", "object_id", "action"),
        ("user_id", "object_type"),
        ("user_id", "object_type", "action"),
        ("lead_id",),
        ("user_id",),
        ("request_id",),
    )
)


class BadQuery(Exception):
    """A query parameter Close would refuse; the routes answer it with a 400 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def int_param(query: dict[str, str], name: str, default: int, maximum: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(name, "Enter a whole number.") from None
    if value < 0 or (name == "_limit" and value == 0):
        raise BadQuery(name, "Must be a positive number.")
    if value > maximum:
        raise BadQuery(name, f"Ensure this value is less than or equal to {maximum}.")
    return value


def time_filters(query: dict[str, str], field: str) -> list[Callable[[datetime], bool]]:
    """Checks for `field__gte/__gt/__lte/__lt` query parameters."""
    operators: dict[str, Callable[[datetime, datetime], bool]] = {
        "gte": lambda a, b: a >= b,
        "gt": lambda a, b: a > b,
        "lte": lambda a, b: a <= b,
        "lt": lambda a, b: a < b,
    }

    def bound_check(operator: Callable[[datetime, datetime], bool], bound: datetime) -> Callable[[datetime], bool]:
        return lambda moment: operator(moment, bound)

    checks: list[Callable[[datetime], bool]] = []
    for suffix, operator in operators.items():
        name = f"{field}__{suffix}"
        if name not in query:
            continue
        try:
            bound = parse_time(query[name])
        except ValueError:
            raise BadQuery(name, "Enter a valid date/time.") from None
        checks.append(bound_check(operator, bound))
    return checks


def encode_event_cursor(index: int) -> str:
    """An event log cursor: the index to continue below, opaque to the client."""
    return base64.urlsafe_b64encode(f"ev:{index}".encode()).decode().rstrip("=")


def decode_event_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "ev" or not number.isdigit():
            raise ValueError(cursor)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadQuery("_cursor", "Invalid cursor.") from None
