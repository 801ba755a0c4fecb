"""When the worker asks SQS to deliver a failed record again (tasksync.worker.backoff_seconds)."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from tasksync.errors import ConcurrentUpdate, LeaseHeld, RetryableApiError
from tasksync.worker import MAX_VISIBILITY_SECONDS, backoff_seconds


def top(receive_count: int, error: Exception, **kwargs: float) -> int:
    """The longest delay the jitter can give."""
    return backoff_seconds(receive_count, error, base=5, cap=900, rng=lambda: 1.0, **kwargs)


def server_error(retry_after: float | None = None) -> RetryableApiError:
    return RetryableApiError("chartmogul", "POST", "/tasks", 429 if retry_after else 503, retry_after=retry_after)


def test_the_guess_doubles_with_each_delivery_up_to_the_cap() -> None:
    assert [top(n, server_error()) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 640, 900]


def test_equal_jitter_never_goes_below_half_the_step() -> None:
    lowest = backoff_seconds(4, ConcurrentUpdate("race"), base=5, cap=900, rng=lambda: 0.0)
    assert lowest == 20  # half of 40


@pytest.mark.parametrize(
    ("error", "extra", "expected"),
    [
        (LeaseHeld("task_1", seconds_left=100), {}, 101),
        (IdempotencyAlreadyInProgressError("in progress"), {"in_progress_seconds": 30.0}, 31),
        (server_error(retry_after=60), {}, 60),
    ],
)
def test_a_known_wait_beats_a_short_cap(error: Exception, extra: dict[str, float], expected: int) -> None:
    # RETRY_MAX_SECONDS=5 caps the guess; retrying before a known wait ends would only spend
    # one of the record's deliveries, so the known wait wins.
    delay = backoff_seconds(1, error, base=1, cap=5, rng=lambda: 1.0, **extra)
    assert delay == expected


def test_an_in_progress_record_with_no_known_bound_falls_back_to_the_guess() -> None:
    assert top(2, IdempotencyAlreadyInProgressError("in progress")) == 10


def test_a_wait_longer_than_sqs_allows_is_cut_to_its_maximum() -> None:
    assert top(1, LeaseHeld("task_1", seconds_left=10**9)) == MAX_VISIBILITY_SECONDS


def test_no_cap_means_retry_at_once_unless_a_wait_is_known() -> None:
    assert backoff_seconds(5, server_error(), base=0, cap=0) == 0
    assert backoff_seconds(5, LeaseHeld("task_1", seconds_left=9), base=0, cap=0) == 10
