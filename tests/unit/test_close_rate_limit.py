"""How long the Close client waits after a 429, from the `RateLimit` and `retry-after` headers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from tasksync.dal.close_api import parse_rate_limit_wait


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # Close's documented example (docs/upstream-apis.md).
        ({"RateLimit": "limit=100, remaining=50, reset=5"}, 5.0),
        # A decimal reset: the official client's `reset=(\d+)` regex misses this one.
        ({"RateLimit": "limit=20, remaining=0, reset=0.5"}, 0.5),
        # Fields in another order, and no spaces.
        ({"RateLimit": "reset=1.25,limit=20,remaining=0"}, 1.25),
        # Both headers: the larger wait wins, whichever carries it.
        ({"RateLimit": "limit=20, remaining=0, reset=0.5", "retry-after": "3"}, 3.0),
        ({"RateLimit": "limit=20, remaining=0, reset=4.5", "Retry-After": "1"}, 4.5),
        # retry-after alone.
        ({"retry-after": "7"}, 7.0),
        # An HTTP-date retry-after is legal (RFC 7231) but ignored; the reset still counts.
        ({"RateLimit": "limit=20, remaining=0, reset=0.75", "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.75),
        # The newer IETF draft spelling.
        ({"RateLimit": '"default";r=0;t=2.5'}, 2.5),
        # The older separate header some endpoints may still send.
        ({"RateLimit-Reset": "3"}, 3.0),
    ],
)
def test_wait_comes_from_the_headers(headers: dict[str, str], expected: float) -> None:
    assert parse_rate_limit_wait(headers) == pytest.approx(expected)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Type": "application/json"},
        {"RateLimit": "limit=100, remaining=0"},
        {"RateLimit": "garbage"},
        {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},
        {"retry-after": "nan"},
        {"retry-after": "inf"},
        {"retry-after": "-5"},
        {"retry-after": ""},
    ],
)
def test_no_usable_header_means_no_wait(headers: dict[str, str]) -> None:
    assert parse_rate_limit_wait(headers) is None


def test_header_names_are_case_insensitive_for_any_mapping() -> None:
    raw = {"RATELIMIT": "limit=1, remaining=0, reset=0.2", "RETRY-AFTER": "1"}
    assert parse_rate_limit_wait(raw) == 1.0
    assert parse_rate_limit_wait(CaseInsensitiveDict(raw)) == 1.0


def test_a_remaining_or_limit_value_is_not_mistaken_for_the_reset() -> None:
    assert parse_rate_limit_wait({"RateLimit": "limit=600, remaining=300, reset=0.1"}) == pytest.approx(0.1)


@given(
    reset=st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False, allow_infinity=False),
    retry_after=st.integers(min_value=0, max_value=10_000),
)
def test_the_wait_is_the_larger_of_both_headers(reset: Decimal, retry_after: int) -> None:
    headers = {"RateLimit": f"limit=100, remaining=0, reset={reset}", "retry-after": str(retry_after)}
    assert parse_rate_limit_wait(headers) == pytest.approx(max(float(reset), retry_after))
